"""The handlers' ports (:mod:`streams.routing.handlers.ports`) over the Faust worker's tables and
topics, the only place that knows how a handler's writes reach a transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.audit.chain import ChainHead
from streams.audit.signing import AuditSigning
from streams.domain.records import AuditRecord, CompositionCommand
from streams.routing.faust_compat import committed_offset, end_offset
from streams.routing.handlers.ports import InputRecord


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
