"""Helpers shared by the end-to-end and fault tests: publishing a dataset's reference data,
reading the emulator's ledger and telling which event a dead letter holds."""

from __future__ import annotations

import urllib.request
from typing import Any

import orjson

from streams.codec import DecodeError, codec_for
from streams.domain.records import AccountEvent, CaseEvent, DeadLetter
from streams.emulator.synced import publish_synced_templates
from streams.simulator.generator import Dataset
from streams.simulator.publish import PublishReport, publish_reference
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
