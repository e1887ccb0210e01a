"""Routing one Air Inc. business event (account or case event): :class:`EventsHandler`.

Per record, inside the worker's exactly-once transaction (the caller holds it open):

1. decode (:func:`~streams.routing.handlers.decode.decode_or_dead_letter`);
2. a keyed record must be keyed by its ``customer_id`` (else ``KEY_MISMATCH``) and sit in its
   key's murmur2 partition (else ``WRONG_PARTITION``, :mod:`streams.routing.partitioning`):
   joined elsewhere it would meet another partition's preferences and state. An unkeyed one is
   accepted (routed by its customer id); the join then holds only while one worker holds every
   partition;
3. decide with :func:`~streams.domain.routing.route_indexed`: the customer's preference in force
   at the record's timestamp (:func:`~streams.routing.preference_versions.value_as_of`), their
   suppression entries, and a :class:`~streams.domain.reference_index.ReferenceIndex` built
   once per version of the rules and templates (never per event); a rejection is dead-lettered;
4. send the commands (each registered with delivery tracking), alerts and audit records, then
   write the customer's suppression entries when they changed.

Outputs are byte-identical to :func:`~streams.domain.routing.route_event` called per event with
the tables' decoded values (``tests/routing/handlers/test_events.py`` checks it). Preferences
and suppression entries are kept decoded between events (:mod:`.decoded_state`), checked
against the tables' current bytes at every look-up: the tables stay the source of truth and
the suppression changelog values are the ones always written (:mod:`streams.codec.state`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.codec.state import decode_suppression, encode_suppression
from streams.domain.records import (
    AlignmentAlert,
    AuditRecord,
    BusinessEvent,
    CommRule,
    CompositionCommand,
    Preference,
    TemplateVersion,
)
from streams.domain.reference_index import ReferenceIndex
from streams.domain.routing import route_indexed
from streams.domain.suppression import SuppressionEntry
from streams.routing.handlers.decode import decode_or_dead_letter, key_mismatch
from streams.routing.handlers.decoded_state import DecodedValues
from streams.routing.handlers.ports import (
    Decisions,
    Decode,
    InputRecord,
    ReadTable,
    StateTable,
    timestamp_ms,
)
from streams.routing.partitioning import WRONG_PARTITION, partition_problem
from streams.routing.preference_versions import value_as_of


class EventOutputs(Protocol):
    """Where a routed event's records go, all in the transaction of the record being handled."""

    async def send_command(self, key: bytes, value: bytes) -> None: ...

    async def send_alert(self, key: bytes, value: bytes) -> None: ...

    async def register(self, record: InputRecord, command: CompositionCommand) -> None:
        """Start delivery tracking of ``command`` (:mod:`streams.routing.tracking`)."""
        ...

    async def send_audit(self, audit: AuditRecord, key: bytes | None) -> None:
        """Chain ``audit`` into the audit trail."""
        ...

    async def dead_letter(self, record: InputRecord, error_type: str, reason: str) -> None: ...


class EventCounters(Protocol):
    """The worker's running totals (:class:`~streams.routing.app.Counters` is one)."""

    events: int
    commands: int
    suppressed: int
    alerts: int


@dataclass(frozen=True, slots=True)
class ReferenceSource:
    """The rules and templates as the worker's reference views hold them now."""

    version: Callable[[], Hashable]
    """Changes whenever either view applied a change (e.g. both views' version counters)."""
    rules: Callable[[], Sequence[CommRule]]
    templates_by_id: Callable[[], Mapping[str, Sequence[TemplateVersion]]]


class IndexCache:
    """The :class:`ReferenceIndex` of the reference data's current version, rebuilt only when
    that version changes."""

    __slots__ = ("_index", "_source", "_version", "builds")

    def __init__(self, source: ReferenceSource) -> None:
        self._source = source
        self._version: Hashable | None = None
        self._index: ReferenceIndex | None = None
        self.builds = 0

    def current(self) -> ReferenceIndex:
        version = self._source.version()
        if self._index is None or version != self._version:
            self._index = ReferenceIndex(self._source.rules(), self._source.templates_by_id())
            self._version = version
            self.builds += 1
        return self._index


@dataclass(frozen=True, slots=True, kw_only=True)
class EventCodecs:
    """How the handler reads its state and writes its records."""

    preference: Decode[Preference]
    """The preferences table's values (single-object encoding, no headers)."""
    command: Callable[[CompositionCommand], bytes]
    alert: Callable[[AlignmentAlert], bytes]


class EventsHandler:
    """Routes account and case events (see the module docstring). One instance serves every
    events topic of a worker; records are handled one at a time (under the worker's commit
    lock), never concurrently."""

    def __init__(
        self,
        *,
        preferences: ReadTable,
        suppression: StateTable,
        reference: ReferenceSource,
        outputs: EventOutputs,
        codecs: EventCodecs,
        counters: EventCounters,
        metrics: Decisions,
        partition_counts: Mapping[str, int],
        suppression_grace_ms: int,
        registry_wait_s: float,
    ) -> None:
        self._preferences = preferences
        self._suppression = suppression
        self._index = IndexCache(reference)
        self._outputs = outputs
        self._codecs = codecs
        self._counters = counters
        self._metrics = metrics
        self._partition_counts = partition_counts
        self._grace_ms = suppression_grace_ms
        self._wait_s = registry_wait_s
        preference_codec = codecs.preference
        self.decoded_preferences: DecodedValues[Preference] = DecodedValues(
            lambda raw: preference_codec(raw)
        )
        self.decoded_suppression: DecodedValues[dict[str, SuppressionEntry]] = DecodedValues(
            decode_suppression
        )

    @property
    def index_builds(self) -> int:
        """How often the reference index was built (once per reference data version used)."""
        return self._index.builds

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the decoded state of revoked ``partitions``."""
        revoked = set(partitions)
        self.decoded_preferences.forget(revoked)
        self.decoded_suppression.forget(revoked)

    async def handle(
        self, record: InputRecord, *, decode: Decode[BusinessEvent], source_topic: str
    ) -> None:
        """Route ``record`` (an event of ``source_topic`` as ``decode`` reads it)."""
        outputs = self._outputs
        event = await decode_or_dead_letter(
            decode, record, outputs.dead_letter, wait_s=self._wait_s
        )
        if event is None:
            return
        key = event.customer_id.encode()
        if record.key is not None:
            if record.key != key:
                await outputs.dead_letter(
                    record, "KEY_MISMATCH", key_mismatch(record.key, event.customer_id)
                )
                return
            counts = self._partition_counts[record.topic]
            misplaced = partition_problem(key, record.partition, counts)
            if misplaced is not None:
                await outputs.dead_letter(record, WRONG_PARTITION, misplaced)
                return
        partition = record.partition
        # the version in force at the event's timestamp (a later change may be applied already)
        pref_raw = value_as_of(self._preferences.get(key), timestamp_ms(record))
        preference = self.decoded_preferences.get(partition, key, pref_raw) if pref_raw else None
        raw_state = self._suppression.get(key)
        state = self.decoded_suppression.get(partition, key, raw_state) if raw_state else {}
        outcome = route_indexed(
            event,
            source_topic=source_topic,
            preference=preference,
            index=self._index.current(),
            suppression_state=state,
            now_ms=event.occurred_at - self._grace_ms,
        )
        counters, metrics = self._counters, self._metrics
        counters.events += 1
        if outcome.rejection is not None:
            metrics.decided("event", "rejected")
            await outputs.dead_letter(record, outcome.rejection.code, outcome.rejection.reason)
            return
        encode_command, encode_alert = self._codecs.command, self._codecs.alert
        for command in outcome.commands:
            await outputs.send_command(key, encode_command(command))
            await outputs.register(record, command)
        for alert in outcome.alerts:
            await outputs.send_alert(
                (alert.rule_id or alert.template_id).encode(), encode_alert(alert)
            )
        for entry in outcome.audit:
            await outputs.send_audit(entry, key)
        counters.commands += len(outcome.commands)
        counters.suppressed += len(outcome.suppressed) + len(outcome.undeliverable)
        counters.alerts += len(outcome.alerts)
        metrics.decided("event", "command", len(outcome.commands))
        metrics.decided("event", "suppressed", len(outcome.suppressed))
        metrics.decided("event", "undeliverable", len(outcome.undeliverable))
        metrics.decided("event", "alert", len(outcome.alerts))
        if outcome.suppression_updates or outcome.expired_keys:
            # forgotten while it changes: a failure before the put leaves no half-applied state
            self.decoded_suppression.discard(partition, key)
            outcome.apply_to(state)
            value = encode_suppression(state)
            await self._suppression.put(record, key, value)
            self.decoded_suppression.keep(partition, key, value, state)
