"""The handlers' ports (:mod:`streams.routing.handlers.ports`) over the Faust worker's tables and
topics, the only place that knows how a handler's writes reach a transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from faust.streams import current_event
from faust.types import TP

from streams.audit.chain import ChainHead
from streams.audit.signing import AuditSigning
from streams.deadletter.letters import dead_letter_headers, dead_letter_of
from streams.domain.ids import audit_id
from streams.domain.records import AlignmentAlert, AuditKind, AuditRecord, CompositionCommand
from streams.routing.faust_compat import committed_offset, end_offset
from streams.routing.handlers.audit import AuditChains, dead_letter_audit
from streams.routing.handlers.ports import InputRecord
from streams.routing.metrics import RoutingMetrics
from topology import names

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuardedTable:
    """A Faust table written through the worker's
    :class:`~streams.routing.faust_compat.CommitGuard`: a put is in the store at once and its
    changelog record in the handled record's transaction."""

    guard: Any
    table: Any

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.get(key)
        return value

    async def put(self, record: InputRecord, key: bytes, value: bytes | None) -> None:
        await self.guard.put(self.table, record, key, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicEventOutputs:
    """:class:`~streams.routing.handlers.events.EventOutputs` over the worker's Faust topics
    (sent in the current record's transaction by the commit guard)."""

    commands_topic: Any
    alerts_topic: Any
    registrar: Callable[[Any, CompositionCommand], Awaitable[None]]
    audit: Callable[[AuditRecord, bytes | None], Awaitable[None]]
    letters: Callable[[Any, str, str], Awaitable[None]]

    async def send_command(self, key: bytes, value: bytes) -> None:
        await self.commands_topic.send(key=key, value=value)

    async def send_alert(self, key: bytes, value: bytes) -> None:
        await self.alerts_topic.send(key=key, value=value)

    async def register(self, record: InputRecord, command: CompositionCommand) -> None:
        await self.registrar(record, command)

    async def send_audit(self, audit: AuditRecord, key: bytes | None) -> None:
        await self.audit(audit, key)

    async def dead_letter(self, record: InputRecord, error_type: str, reason: str) -> None:
        await self.letters(record, error_type, reason)


@dataclass(frozen=True, slots=True)
class TopicChainedAudit:
    """:class:`~streams.routing.handlers.audit.ChainedAudit` over the audit Faust topic."""

    topic: Any

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        await self.topic.send(key=key, value=value, partition=partition)


@dataclass(frozen=True, slots=True)
class TopicCheckpoints:
    """:class:`~streams.routing.handlers.audit.Checkpoints`: the worker's signing, its
    checkpoint records sent to the checkpoints Faust topic (in the current transaction)."""

    signing: AuditSigning
    topic: Any

    async def after_append(self, partition: int, head: ChainHead) -> None:
        await self.signing.after_append(partition, head, self.topic.send)


@dataclass(frozen=True, slots=True)
class ConsumerPositions:
    """:class:`~streams.routing.handlers.join.TablePositions` of ``topic`` as the Faust app's
    consumer knows them."""

    app: Any
    topic: str

    def end_offset(self, partition: int) -> int | None:
        return end_offset(self.app, TP(self.topic, partition))

    def committed_offset(self, partition: int) -> int | None:
        return committed_offset(self.app, TP(self.topic, partition))


@dataclass(frozen=True, slots=True)
class ConsumerGenerations:
    """:class:`~streams.routing.handlers.join.Generations` over Faust messages (each carries
    the generation it was fetched in) and the app's consumer."""

    app: Any

    def is_current(self, record: Any) -> bool:
        return bool(record.generation_id == self.app.consumer_generation_id)

    def leave_for_reread(self, record: Any) -> None:
        # acked without telling the consumer: no commit of the new generation moves past it
        record.acked = True


class DeadLetterCounters(Protocol):
    """The worker's running totals (:class:`~streams.routing.app.Counters` is one)."""

    dead_letters: int


def _current_message() -> Any | None:
    """The Faust message whose handler is running (None in a timer or outside any agent)."""
    event = current_event()
    return None if event is None else event.message


def _now_ms() -> int:
    return int(time.time() * 1000)


class WorkerOutputs:
    """The two outputs every handler shares: :meth:`send_audit` and :meth:`dead_letter`.

    Both send in the transaction of the record being handled (the commit guard's), so a dead
    letter, its audit record and the record's offset are committed together or not at all.
    """

    def __init__(
        self,
        *,
        app: Any,
        chains: AuditChains,
        intake_topic: Any,
        intake_name: str,
        encode_intake: Callable[[AuditRecord], bytes],
        chain_directly: bool,
        dlq_topic: Callable[[str], Any],
        letter_codec: Callable[[str], Any],
        counters: DeadLetterCounters,
        metrics: RoutingMetrics,
        current_message: Callable[[], Any | None] = _current_message,
        now_ms: Callable[[], int] = _now_ms,
    ) -> None:
        """``chain_directly``: the audit topic has as many partitions as the intake (else every
        audit record goes through the intake). ``dlq_topic(name)`` makes the Faust topic of a
        ``.dlq`` topic, ``letter_codec(name)`` its codec."""
        self._app = app
        self._chains = chains
        self._intake = intake_topic
        self._intake_name = intake_name
        self._encode_intake = encode_intake
        self._chain_directly = chain_directly
        self._dlq_topic = dlq_topic
        self._letter_codec = letter_codec
        self._counters = counters
        self._metrics = metrics
        self._current = current_message
        self._now_ms = now_ms
        self._dlq_topics: dict[str, Any] = {}

    def same_transactions_as_intake(self, topic_name: str) -> bool:
        """True when ``topic_name``'s partition p is processed in the transaction of intake
        partition p (faust gives co-partitioned topics one transactional id per partition), so
        that audit partition p keeps a single writer and one chain."""
        if not self._chain_directly:
            return False
        try:
            group = self._app.assignor.group_for_topic(topic_name)
            return bool(group == self._app.assignor.group_for_topic(self._intake_name))
        except KeyError:  # not assigned to this worker
            return False

    async def send_audit(self, record: AuditRecord, key: bytes | None) -> None:
        """Chain ``record`` into the audit topic: directly, in the partition of the record being
        processed, when that keeps one writer per chain; else through the audit intake topic
        and the audit writer (rule and template alerts, the SLA timer)."""
        msg = self._current()
        if msg is not None and self.same_transactions_as_intake(msg.topic):
            await self._chains.append(msg, key or b"", record)
            return
        await self._intake.send(key=key or b"", value=self._encode_intake(record))

    async def dead_letter(self, msg: InputRecord, error_type: str, reason: str) -> None:
        """``msg`` to ``<topic>.dlq`` with the reason (headers too), and its DEAD_LETTER audit
        record. ``reason`` must not contain personal data."""
        letter = dead_letter_of(msg, error_type=error_type, reason=reason, failed_at=self._now_ms())
        dlq_name = names.dlq(msg.topic)
        dlq = self._dlq_topics.get(msg.topic)
        if dlq is None:
            dlq = self._dlq_topics[msg.topic] = self._dlq_topic(dlq_name)
        await dlq.send(
            key=msg.key,
            value=self._letter_codec(dlq_name).encode(letter),
            headers=dead_letter_headers(letter),
        )
        self._counters.dead_letters += 1
        self._metrics.dead_letters.labels(msg.topic, error_type).inc()
        await self.send_audit(dead_letter_audit(msg, error_type, reason, letter.failed_at), msg.key)
        log.warning("dead-lettered %s/%d/%d: %s", msg.topic, msg.partition, msg.offset, error_type)


class AlertCounters(Protocol):
    alerts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicAlerts:
    """Sends an alignment alert of a rule or template change (keyed by its rule, else its
    template) and its ALIGNMENT_ALERT audit record, in the handled record's transaction."""

    topic: Any
    encode: Callable[[AlignmentAlert], bytes]
    counters: AlertCounters
    send_audit: Callable[[AuditRecord, bytes | None], Awaitable[None]]

    async def emit(self, alert: AlignmentAlert) -> None:
        key = (alert.rule_id or alert.template_id).encode()
        await self.topic.send(key=key, value=self.encode(alert))
        self.counters.alerts += 1
        await self.send_audit(
            AuditRecord(
                audit_id=audit_id(AuditKind.ALIGNMENT_ALERT, alert.alert_id),
                kind=AuditKind.ALIGNMENT_ALERT,
                occurred_at=alert.raised_at,
                summary=alert.message[:200],
                details={"alert_id": alert.alert_id, "kind": alert.kind},
            ),
            key,
        )
