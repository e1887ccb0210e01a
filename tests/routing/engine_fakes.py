"""Plain fakes of the engine's contract (streams/engine/api.py) for the engine worker's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from streams.engine.api import Headers, PartitionsChanged, Record, Timer


@dataclass
class Sent:
    topic: str
    value: bytes | None
    key: bytes | None
    partition: int | None
    headers: Headers | None


@dataclass
class FakeOutputs:
    """Every ``send``, in order."""

    sent: list[Sent] = field(default_factory=list)

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.sent.append(Sent(topic, value, key, partition, headers))

    def to(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]


@dataclass
class FakeStore:
    """A store holding ``held`` partitions; every put remembered as ``(partition, key, value)``."""

    name: str
    held: set[int] = field(default_factory=lambda: set(range(6)))
    data: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    puts: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get(partition, {}).get(key)

    def find(self, key: bytes, first: int | None = None) -> bytes | None:
        order = sorted(self.held, key=lambda p: p != first)
        return next((v for p in order if (v := self.get(p, key)) is not None), None)

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        part = self.data.setdefault(partition, {})
        if value is None:
            part.pop(key, None)
        else:
            part[key] = value
        self.puts.append((partition, key, value))

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self.data.get(partition, {}).items()))

    def size(self, partition: int) -> int:
        return len(self.data.get(partition, {}))

    def partitions(self) -> frozenset[int]:
        return frozenset(self.held)


@dataclass
class FakeEngine:
    """Records what the worker registers; ``handle`` runs an input's handler on one record."""

    outputs: FakeOutputs = field(default_factory=FakeOutputs)
    inputs: dict[str, Callable[[Record], Awaitable[None]]] = field(default_factory=dict)
    stores: dict[str, tuple[FakeStore, str, int]] = field(default_factory=dict)
    timers: list[tuple[float, Timer]] = field(default_factory=list)
    revoked: list[PartitionsChanged] = field(default_factory=list)
    assigned: list[PartitionsChanged] = field(default_factory=list)
    committed: list[Callable[[float], None]] = field(default_factory=list)
    ran: bool = False

    def input(self, topic: str, handler: Callable[[Record], Awaitable[None]]) -> None:
        assert topic not in self.inputs
        self.inputs[topic] = handler

    def store(self, name: str, *, changelog_topic: str, partitions: int) -> FakeStore:
        store = FakeStore(name)
        self.stores[name] = (store, changelog_topic, partitions)
        return store

    def timer(self, interval_s: float, timer: Timer) -> None:
        self.timers.append((interval_s, timer))

    def on_assigned(self, fn: PartitionsChanged) -> None:
        self.assigned.append(fn)

    def on_revoked(self, fn: PartitionsChanged) -> None:
        self.revoked.append(fn)

    def on_committed(self, fn: Callable[[float], None]) -> None:
        self.committed.append(fn)

    def positions(self) -> dict[tuple[str, int], int]:
        return {}

    def end_offsets(self) -> dict[tuple[str, int], int]:
        return {}

    async def run(self, stop: asyncio.Event) -> None:
        self.ran = True
        await stop.wait()

    async def handle(self, record: Record) -> None:
        await self.inputs[record.topic](record)
