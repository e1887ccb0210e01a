"""Plain fakes of the handlers' ports (streams/routing/handlers/ports.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.domain.records import AuditRecord, CompositionCommand
from streams.routing.handlers.ports import InputRecord


@dataclass(frozen=True, slots=True)
class Record:
    """An input record as the worker receives it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = None
    timestamp: float = 1_700_000_000.0


@dataclass
class Table:
    """A table: ``put`` stores at once and remembers the write (the changelog record)."""

    data: dict[bytes, bytes] = field(default_factory=dict)
    writes: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    fail_next_put: bool = False

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    async def put(self, record: InputRecord, key: bytes, value: bytes | None) -> None:
        if self.fail_next_put:
            self.fail_next_put = False
            raise RuntimeError("the transaction failed")
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.writes.append((record.partition, key, value))


@dataclass
class Outputs:
    """Every record a handler sent, in order, as ``(kind, key, payload)``."""

    sent: list[tuple[str, bytes | None, Any]] = field(default_factory=list)

    async def send_command(self, key: bytes, value: bytes) -> None:
        self.sent.append(("command", key, value))

    async def send_alert(self, key: bytes, value: bytes) -> None:
        self.sent.append(("alert", key, value))

    async def register(self, record: InputRecord, command: CompositionCommand) -> None:
        self.sent.append(("register", record.key, command.communication_id))

    async def send_audit(self, audit: AuditRecord, key: bytes | None) -> None:
        self.sent.append(("audit", key, audit))

    async def dead_letter(self, record: InputRecord, error_type: str, reason: str) -> None:
        self.sent.append(("dead_letter", record.key, (record.offset, error_type, reason)))

    def of(self, kind: str) -> list[Any]:
        return [payload for k, _, payload in self.sent if k == kind]


@dataclass
class EventTotals:
    events: int = 0
    commands: int = 0
    suppressed: int = 0
    alerts: int = 0
    preferences: int = 0


@dataclass
class Metrics:
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def decided(self, flow: str, outcome: str, count: int = 1) -> None:
        self.decisions[(flow, outcome)] += count
