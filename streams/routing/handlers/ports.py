"""What a handler needs from the worker, as small ``Protocol``s a test satisfies with plain fakes.

The worker implements them over the engine's records, stores and outputs
(:mod:`streams.routing.engine_adapters`, :mod:`streams.routing.adapters`); nothing here imports
Kafka.

Guarantees every implementation must keep (the handlers rely on them):

- every write a port makes while a record is handled (records sent, table values put) belongs
  to that record's transaction: committed with its offset, or aborted with it;
- :meth:`StateTable.put` makes the new value visible to :meth:`StateTable.get` at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)


class InputRecord(Protocol):
    """The Kafka record being handled (:class:`streams.engine.api.Record` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Any: ...
    @property
    def timestamp(self) -> float:
        """Seconds since the epoch."""
        ...


def timestamp_ms(record: InputRecord) -> int:
    """A record's Kafka timestamp in milliseconds."""
    return round(float(record.timestamp) * 1000)


class ReadTable(Protocol):
    """A table read by key (the worker's table of ``bytes`` keys and values)."""

    def get(self, key: bytes) -> bytes | None: ...


class StateTable(ReadTable, Protocol):
    """A table the handler writes: ``put`` while ``record`` is handled goes into its
    transaction (its changelog record is in ``record``'s partition). ``None`` deletes."""

    async def put(self, record: InputRecord, key: bytes, value: bytes | None) -> None: ...


class Decode(Protocol[T_co]):
    """A codec's ``decode``: raises :class:`~streams.codec.CodecError` on bad bytes."""

    def __call__(self, data: bytes | None, headers: Any = None, /) -> T_co: ...


DeadLetter = Callable[[InputRecord, str, str], Awaitable[None]]
"""``dead_letter(record, error_type, reason)``: the record to its ``.dlq`` topic with the reason,
and a DEAD_LETTER audit record."""


class Decisions(Protocol):
    """Decision metrics (:class:`~streams.routing.metrics.RoutingMetrics` is one)."""

    def decided(self, flow: str, outcome: str, count: int = 1) -> None: ...
