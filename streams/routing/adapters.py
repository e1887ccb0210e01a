"""Handler ports (:mod:`streams.routing.handlers.ports`) over topics: anything with an awaitable
``send(key=, value=, partition=, headers=)`` (:class:`~streams.routing.engine_adapters.EngineTopic`
sends in the engine's current transaction). The table ports and the shared dead-letter and audit
outputs are in :mod:`streams.routing.engine_adapters`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streams.audit.chain import ChainHead
from streams.audit.signing import AuditSigning
from streams.domain.ids import audit_id
from streams.domain.records import AlignmentAlert, AuditKind, AuditRecord, CompositionCommand
from streams.routing.handlers.ports import InputRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicEventOutputs:
    """:class:`~streams.routing.handlers.events.EventOutputs` over the worker's topics (sent
    in the current record's transaction)."""

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
    """:class:`~streams.routing.handlers.audit.ChainedAudit` over the audit topic."""

    topic: Any

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        await self.topic.send(key=key, value=value, partition=partition)


@dataclass(frozen=True, slots=True)
class TopicCheckpoints:
    """:class:`~streams.routing.handlers.audit.Checkpoints`: the worker's signing, its
    checkpoint records sent to the checkpoints topic (in the current transaction)."""

    signing: AuditSigning
    topic: Any

    async def after_append(self, partition: int, head: ChainHead) -> None:
        await self.signing.after_append(partition, head, self.topic.send)


class DeadLetterCounters(Protocol):
    """The worker's running totals (:class:`~streams.routing.counters.Counters` is one)."""

    dead_letters: int


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
