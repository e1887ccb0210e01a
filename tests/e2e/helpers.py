"""Helpers shared by the end-to-end and fault tests: publishing a dataset's reference data,
reading the emulator's ledger and telling which event a dead letter holds."""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.codec import DecodeError, codec_for
from streams.domain.records import (
    AccountEvent,
    CaseEvent,
    CompositionCommand,
    DeadLetter,
    Preference,
)
from streams.emulator.synced import publish_synced_templates
from streams.routing.partitioning import murmur2_partition
from streams.simulator.generator import Dataset, SimEvent
from streams.simulator.publish import PublishReport, publish_events, publish_reference
from topology.model import Topology


def publish_reference_and_templates(
    dataset: Dataset, topology: Topology, conf: dict[str, str]
) -> PublishReport:
    """Rules and preferences as the simulator publishes them, and the templates as the template
    sync would (the simulator no longer publishes templates: they come from Exstream)."""
    report = publish_reference(dataset, topology, conf)
    publish_synced_templates(dataset.templates, topology, conf)
    return report


def ledger_of(url: str) -> dict[str, Any]:
    """The Exstream emulator's ledger (``GET /_emulator/ledger``): documents per communication."""
    with urllib.request.urlopen(f"{url}/_emulator/ledger", timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = orjson.loads(response.read())
        return result


def event_id_of(letter: DeadLetter, account_topic: str) -> str | None:
    """The event id of a semantically invalid record; None for byte-level garbage."""
    headers = [(k, v.encode()) for k, v in letter.original_headers.items()]
    try:
        if letter.source_topic == account_topic:
            return codec_for(AccountEvent).decode(letter.original_value, headers).event_id
        return codec_for(CaseEvent).decode(letter.original_value, headers).event_id
    except DecodeError:
        return None


def changed_preference(p: Preference, i: int) -> Preference:
    """``p`` changed so that it routes differently (the backlog and state-recovery tests):
    every electronic channel opted out, paperless and email consent flipped, or another
    language with web consent flipped."""
    if i % 3 == 0:
        return dataclasses.replace(
            p,
            paperless=True,
            email_consent=False,
            sms_consent=False,
            push_consent=False,
            web_consent=False,
            updated_at=p.updated_at + 1,
        )
    if i % 3 == 1:
        return dataclasses.replace(
            p,
            paperless=not p.paperless,
            email_consent=not p.email_consent,
            email=f"{p.customer_id}@example.com",
            updated_at=p.updated_at + 1,
        )
    language = "fr" if p.language != "fr" else "es"
    return dataclasses.replace(
        p, language=language, web_consent=not p.web_consent, updated_at=p.updated_at + 1
    )


def _by_partition(commands: Iterable[CompositionCommand]) -> dict[int, int]:
    """How many of ``commands`` fall on each partition of the customer key (a whole partition
    missing points at state lost for that partition, e.g. a table's recovery)."""
    counts = Counter(murmur2_partition(c.customer_id.encode(), 6) for c in commands)
    return dict(sorted(counts.items()))


def assert_commands_match(
    produced: Iterable[CompositionCommand], expected: Mapping[str, CompositionCommand]
) -> None:
    """``produced`` (as read, read_committed) is exactly ``expected`` (communication id ->
    command of the independent reference): each once, none missing, none more, none different."""
    produced = list(produced)
    ids = Counter(c.communication_id for c in produced)
    twice = [i for i, n in ids.items() if n > 1]
    assert twice == [], f"{len(twice)} commands written twice, e.g. {twice[:3]}"
    by_id = {c.communication_id: c for c in produced}
    missing = sorted(set(expected) - set(by_id))
    unexpected = sorted(set(by_id) - set(expected))
    assert missing == [], (
        f"{len(missing)} expected commands missing, e.g. {missing[:3]}; by the customer's "
        f"partition (of 6): {_by_partition(expected[i] for i in missing)}; customers: "
        f"{len({expected[i].customer_id for i in missing})}; first: {expected[missing[0]]!r}"
    )
    assert unexpected == [], (
        f"{len(unexpected)} unexpected commands, e.g. {unexpected[:3]}; by the customer's "
        f"partition (of 6): {_by_partition(by_id[i] for i in unexpected)}"
    )
    differing = [i for i, c in by_id.items() if c != expected[i]]
    assert differing == [], (
        f"{len(differing)} commands differ from the reference, e.g. {differing[:3]}"
    )


class PacedPublisher:
    """Publishes events from a thread, held to about ``per_s`` events a second: a worker that
    routes faster than that meets a kill with events still to come, however fast it is."""

    def __init__(
        self,
        events: list[SimEvent],
        topology: Topology,
        conf: Mapping[str, str],
        *,
        seed: int,
        per_s: float = 500.0,
    ) -> None:
        self._failures: list[BaseException] = []
        self._sent = 0
        self._per_s = per_s

        def publish() -> None:
            try:
                publish_events(events, topology, conf, seed=seed, progress=self._progress)
            except BaseException as exc:  # noqa: BLE001 - raised again by join()
                self._failures.append(exc)

        self._thread = threading.Thread(target=publish, name="paced-publisher")

    def _progress(self, n: int) -> None:
        self._sent += n
        if self._sent % 50 == 0:
            time.sleep(50 / self._per_s)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float = 120.0) -> None:
        """Wait until every event was published; fails if that took longer than ``timeout_s``
        or the publisher failed."""
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"the events were not published in {timeout_s} s"
        assert not self._failures, self._failures
