"""The handlers' ports (:mod:`streams.routing.handlers.ports`) over the engine
(:mod:`streams.engine.api`); the topic adapters are in :mod:`.adapters`.

Everything a port writes goes through the engine's :class:`~streams.engine.api.Outputs` and
:class:`~streams.engine.api.Store` while a handler runs, so it is in the transaction of the
record being handled (the engine commits it with that record's offset, or aborts it).

- :class:`HandledRecord` knows which record is being handled (the engine hands one at a time),
  for the ports that write to its partition;
- :class:`StoreTable` is a :class:`~streams.routing.handlers.ports.StateTable` over a store;
- :class:`EngineTopic` gives a topic name an awaitable ``send``, so the
  topic adapters (:class:`~.adapters.TopicEventOutputs`, :class:`~.adapters.TopicAlerts`,
  :class:`~.adapters.TopicChainedAudit`, :class:`~.adapters.TopicCheckpoints`) serve unchanged;
- :class:`EngineOutputs` sends audit records (chained directly, or through the intake) and dead
  letters;
- :class:`ReferenceAdmission`: the engine orders preferences before later events of their
  partition itself, so an event only waits for the rules and templates published before it
  (:func:`~streams.routing.alignment.reference_covers`, bounded by the gate); when a view has
  applied everything it knows of, the event asks it to observe the ends at once rather than
  wait for its next empty fetch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.deadletter.letters import dead_letter_headers, dead_letter_of
from streams.domain.records import AuditRecord
from streams.engine.api import Headers, Outputs, Record, Store
from streams.routing.adapters import DeadLetterCounters
from streams.routing.alignment import (
    ReferencePartition,
    ReferenceProgress,
    Verdict,
    covered_through,
    reference_covers,
)
from streams.routing.handlers.audit import AuditChains, dead_letter_audit
from streams.routing.handlers.ports import InputRecord, timestamp_ms
from streams.routing.join_gate import JoinGate
from streams.routing.metrics import RoutingMetrics
from topology import names

log = logging.getLogger(__name__)


class HandledRecord:
    """The record whose handler runs now (None in a timer or between records)."""

    __slots__ = ("record",)

    def __init__(self) -> None:
        self.record: Record | None = None

    def wrap(
        self,
        handler: Callable[[Record], Awaitable[None]],
        *,
        record_in: Callable[[str], None] | None = None,
    ) -> Callable[[Record], Awaitable[None]]:
        """``handler`` with this holder set to its record while it runs; with ``record_in``,
        each record it handled is counted by topic (``records_in_total``; not one whose
        handler raised). One wrapper: it runs once per record handed over."""
        if record_in is None:

            async def handle(record: Record) -> None:
                self.record = record
                try:
                    await handler(record)
                finally:
                    self.record = None

            return handle
        count = record_in

        async def handle_counted(record: Record) -> None:
            self.record = record
            try:
                await handler(record)
            finally:
                self.record = None
            count(record.topic)

        return handle_counted


@dataclass(frozen=True, slots=True)
class CountedOutputs:
    """The engine's outputs counting each record sent by topic (``records_out_total``)."""

    outputs: Outputs
    record_out: Callable[[str], None]

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.outputs.send(topic, value, key=key, partition=partition, headers=headers)
        self.record_out(topic)


@dataclass(frozen=True, slots=True)
class StoreTable:
    """A :class:`~streams.routing.handlers.ports.StateTable` over an engine store.

    ``put`` goes to the partition of the record being handled (so its changelog record is in
    that partition). ``get`` looks in that partition first, then in the other partitions this
    process holds: one table over every partition of the worker (a key lives in one partition
    only)."""

    store: Store
    current: HandledRecord

    def get(self, key: bytes) -> bytes | None:
        record = self.current.record
        return self.store.find(key, None if record is None else record.partition)

    async def put(self, record: InputRecord, key: bytes, value: bytes | None) -> None:
        self.store.put(record.partition, key, value)

    def entries(self) -> int:
        """How many keys this process holds (the table size metric; read without reading the
        values: an on-disk store answers its own estimate)."""
        return sum(self.store.size(p) for p in self.store.partitions())

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) this process holds, of every partition."""
        return [kv for p in sorted(self.store.partitions()) for kv in self.store.items(p)]


class StoreGuard:
    """The table writes :mod:`streams.routing.tracking` makes, over :class:`StoreTable`s: all in
    the engine's current transaction (a timer's ``put_outside`` too: the engine runs timers in a
    transaction of their own)."""

    async def put(
        self, table: StoreTable, msg: InputRecord, key: bytes, value: bytes | None
    ) -> None:
        table.store.put(msg.partition, key, value)

    async def delete(self, table: StoreTable, msg: InputRecord, key: bytes) -> None:
        table.store.put(msg.partition, key, None)

    async def put_outside(
        self, table: StoreTable, partition: int, key: bytes, value: bytes
    ) -> None:
        table.store.put(partition, key, value)


@dataclass(frozen=True, slots=True)
class EngineTopic:
    """A topic the handlers' topic adapters send to (``await topic.send(key=, value=)``),
    sent with the engine's outputs in the current transaction."""

    outputs: Outputs
    name: str

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.outputs.send(self.name, value, key=key, partition=partition, headers=headers)


class EngineOutputs:
    """The two outputs every handler shares, on the engine: :meth:`send_audit` and
    :meth:`dead_letter`.

    Audit records of a record whose topic has as many partitions as the audit intake are
    chained directly into the audit partition of that record: partition p of every such topic
    is assigned to the same process as intake partition p (the engine's consumer uses the
    range assignor), and its one transactional producer writes both, so each chain keeps a
    single writer. Every other audit record (rules and templates have one partition; timers
    handle no record) goes through the intake and the audit writer."""

    def __init__(
        self,
        *,
        outputs: Outputs,
        current: HandledRecord,
        chains: AuditChains,
        intake_name: str,
        encode_intake: Callable[[AuditRecord], bytes],
        partition_counts: dict[str, int],
        letter_codec: Callable[[str], Any],
        counters: DeadLetterCounters,
        metrics: RoutingMetrics,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """``partition_counts``: the partitions of each input topic, the audit topic and the
        intake included; ``letter_codec(name)``: the codec of the ``.dlq`` topic ``name``."""
        self._outputs = outputs
        self._current = current
        self._chains = chains
        self._intake = intake_name
        self._encode_intake = encode_intake
        self._counts = partition_counts
        self._letter_codec = letter_codec
        self._counters = counters
        self._metrics = metrics
        self._now_ms = now_ms

    def chained_directly(self, topic: str) -> bool:
        """True when ``topic``'s partition p has the owner of intake (and audit) partition p."""
        intake = self._counts.get(self._intake)
        return intake is not None and self._counts.get(topic) == intake

    async def send_audit(self, audit: AuditRecord, key: bytes | None) -> None:
        record = self._current.record
        if record is not None and self.chained_directly(record.topic):
            await self._chains.append(record, key or b"", audit)
            return
        self._outputs.send(self._intake, self._encode_intake(audit), key=key or b"")

    async def dead_letter(self, msg: InputRecord, error_type: str, reason: str) -> None:
        """``msg`` to ``<topic>.dlq`` with the reason (headers too), and its DEAD_LETTER audit
        record. ``reason`` must not contain personal data."""
        letter = dead_letter_of(msg, error_type=error_type, reason=reason, failed_at=self._now_ms())
        dlq_name = names.dlq(msg.topic)
        self._outputs.send(
            dlq_name,
            self._letter_codec(dlq_name).encode(letter),
            key=msg.key,
            headers=dead_letter_headers(letter),
        )
        self._counters.dead_letters += 1
        self._metrics.dead_letters.labels(msg.topic, error_type).inc()
        await self.send_audit(dead_letter_audit(msg, error_type, reason, letter.failed_at), msg.key)
        log.warning("dead-lettered %s/%d/%d: %s", msg.topic, msg.partition, msg.offset, error_type)


class ObservableReference(ReferenceProgress, Protocol):
    """A reference view that can be asked to observe its topic's ends now
    (:meth:`~streams.routing.reference.ReferenceView.request_observation`)."""

    def request_observation(self) -> None: ...


def _stale_only(states: Iterable[ReferencePartition]) -> bool:
    """Every partition applied up to the end last observed: only a newer observation of the
    ends is missing (not records on their way, which the view's fetches bring anyway)."""
    return all(
        p.position is not None and p.end_offset is not None and p.position >= p.end_offset
        for p in states
    )


@dataclass(slots=True)
class ReferenceAdmission:
    """Holds an event until every rule and template published before it is in the reference
    views (:func:`~streams.routing.alignment.reference_covers`; the wait is the gate's, bounded
    by ``alignment_max_wait_s``). The preferences side needs no wait here: the engine hands a
    partition's preferences and events over in timestamp order."""

    gate: JoinGate
    rules: ObservableReference
    templates: ObservableReference
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    _proven: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    """Per view (by id): the cutoff its states proved covered for good
    (:func:`~streams.routing.alignment.covered_through`); an event at or below it goes without
    reading the view's states again (a backlog's events all do)."""

    def covered(
        self, view: ObservableReference, event_timestamp_ms: int, arrived_at_ms: int
    ) -> bool:
        """Whether ``view`` has applied every record published before the event; when not and
        it only lacks a newer observation of its ends, it is asked for one."""
        cutoff = min(event_timestamp_ms, arrived_at_ms)
        proven = self._proven.get(id(view))
        if proven is not None and cutoff <= proven:
            return True
        states = view.partition_states()
        through = covered_through(states)
        if through is not None and (proven is None or through > proven):
            self._proven[id(view)] = through
        if reference_covers(
            states, event_timestamp_ms=event_timestamp_ms, arrived_at_ms=arrived_at_ms
        ):
            return True
        if _stale_only(states):
            view.request_observation()
        return False

    def verdict(self, event_timestamp_ms: int, arrived_at_ms: int) -> Verdict:
        covered = True
        for view in (self.rules, self.templates):
            if not self.covered(view, event_timestamp_ms, arrived_at_ms):
                covered = False
        return Verdict.CAUGHT_UP if covered else Verdict.WAIT

    async def await_templates(self, record: InputRecord) -> None:
        """Wait until the templates published before document request ``record`` are in the
        view (the one reference data a request reads)."""
        timestamp, arrived = timestamp_ms(record), self.now_ms()

        def verdict() -> Verdict:
            covered = self.covered(self.templates, timestamp, arrived)
            return Verdict.CAUGHT_UP if covered else Verdict.WAIT

        await self.gate.admit(
            verdict, what=f"the templates published before {record.topic}/{record.partition}"
        )

    def proven_covered(self, cutoff_ms: int) -> bool:
        """Both views proved every record published before ``cutoff_ms`` applied (for good:
        see ``_proven``), so an event with that cutoff goes without reading their states."""
        proven = self._proven
        rules = proven.get(id(self.rules))
        templates = proven.get(id(self.templates))
        return (
            rules is not None
            and templates is not None
            and cutoff_ms <= rules
            and cutoff_ms <= templates
        )

    async def await_reference(self, record: InputRecord) -> None:
        timestamp, arrived = timestamp_ms(record), self.now_ms()
        if self.proven_covered(min(timestamp, arrived)):
            # what :meth:`verdict` would say at once: counted as the gate counts a pass
            self.gate.passed(Verdict.CAUGHT_UP)
            return
        await self.gate.admit(
            lambda: self.verdict(timestamp, arrived),
            what=f"the rules and templates published before {record.topic}/{record.partition}",
        )
