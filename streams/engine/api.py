"""The engine's contract with its handlers: what a handler sees and may do.

Guarantees an engine gives (its tests check each):

- exactly-once: every record a handler sends and every store put made while an input record is
  handled are committed in the same Kafka transaction as that record's consumer offset
  (``send_offsets_to_transaction`` with the consumer group metadata, KIP-447 fencing), or
  aborted with it. A handler that raises aborts the transaction and stops the engine (the records
  are read again by whoever owns the partition next); nothing is half-written. What a handler
  sends is held in memory until its batch's transaction begins, so no Kafka transaction is open
  while a handler runs: a handler may wait longer than the transaction timeout;
- per partition number, the records of co-partitioned inputs (same partition count) are handed
  to handlers in timestamp order across those inputs, as Kafka Streams chooses the next record of
  a task: a partition of the group with nothing fetched yet but not at its end is waited for (up
  to ``max_task_idle_ms``) before a later-stamped record of another input is handed over;
- a store's ``put`` is visible to ``get`` at once; each (store, partition) is restored from its
  changelog (read_committed, to its end) before any record of that partition is handled, and
  forgotten when the partition is revoked and not given back by the next assignment (a state
  kept, or files a clean stop left, is read on from the changelog offset it stands at);
- records of one input partition are handled one at a time, in offset order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

Headers = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record (satisfies :class:`streams.routing.handlers.ports.InputRecord`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp_ms: int

    @property
    def timestamp(self) -> float:
        """Seconds since the epoch (as the handlers' ports read it)."""
        return self.timestamp_ms / 1000.0


class Outputs(Protocol):
    """Sending records in the engine's current transaction."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record in the current transaction (``partition`` None: the producer's
        murmur2 partitioner on ``key``). Only valid while a handler or timer runs."""
        ...


class Store(Protocol):
    """A partitioned key-value state store backed by a changelog topic (one changelog partition
    per input partition number; the last value per key per transaction is written)."""

    name: str

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def find(self, key: bytes, first: int | None = None) -> bytes | None:
        """The value of ``key`` in partition ``first``, else in any partition held (a key lives
        in one partition only); None when absent."""
        ...

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Set (``None``: delete) ``key`` in ``partition``'s state, in the current transaction."""
        ...

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]: ...

    def size(self, partition: int) -> int:
        """How many keys ``partition`` holds, without reading them (on disk: an estimate)."""
        ...

    def partitions(self) -> frozenset[int]:
        """The partitions whose state this process holds (assigned and restored)."""
        ...


Handler = Callable[[Record], Awaitable[None]]
"""Handles one input record inside the current transaction."""

Timer = Callable[[], Awaitable[None]]
"""Runs between records, inside a transaction of its own (it may send and put)."""

PartitionsChanged = Callable[[frozenset[int]], None]
"""Called with partition numbers after they were assigned (stores restored) or revoked (the
open transaction committed first)."""
