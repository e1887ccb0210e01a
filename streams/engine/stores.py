"""In-memory partitioned key-value stores backed by changelog topics (pure: no Kafka).

Values live in a dict per partition. Puts are visible to ``get`` at once and are buffered as the
last value per key until the engine takes them (:meth:`MemoryStore.take_changes`) to produce
them to the changelog partition of the same number in the transaction being committed. A
partition's state is loaded from its changelog (:meth:`MemoryStore.load`) before it is used and
forgotten when it is revoked (:meth:`MemoryStore.drop`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from streams.engine.errors import NotInTransaction, PartitionNotHeld


class Change(NamedTuple):
    """One changelog record to produce: ``value`` None is a tombstone (a NamedTuple: a third of
    a frozen dataclass's cost, per key per transaction)."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


class MemoryStore:
    """A :class:`streams.engine.api.Store` kept in memory."""

    def __init__(
        self,
        name: str,
        *,
        changelog_topic: str,
        partitions: int,
        in_transaction: Callable[[], bool] = lambda: True,
    ) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self.partition_count = partitions
        self._in_transaction = in_transaction
        self._state: dict[int, dict[bytes, bytes]] = {}
        self._changes: dict[int, dict[bytes, bytes | None]] = {}

    # ---- the handlers' side (api.Store)

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key``; None when absent or the partition is not held."""
        state = self._state.get(partition)
        return None if state is None else state.get(key)

    def find(self, key: bytes, first: int | None = None) -> bytes | None:
        state = self._state
        if first is not None:
            held = state.get(first)
            value = None if held is None else held.get(key)
            if value is not None:
                return value
        for partition, values in state.items():  # no set built: a miss is common (a new key)
            if partition != first:
                value = values.get(key)
                if value is not None:
                    return value
        return None

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        if not self._in_transaction():
            raise NotInTransaction(f"store {self.name}: put outside a handler or timer")
        state = self._state.get(partition)
        if state is None:
            raise PartitionNotHeld(
                f"store {self.name}: partition {partition} is not held by this process"
            )
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
        self._changes.setdefault(partition, {})[key] = value

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        return iter(list(self._state.get(partition, {}).items()))

    def partitions(self) -> frozenset[int]:
        return frozenset(self._state)

    # ---- the engine's side

    def load(self, partition: int, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Apply changelog records in offset order to ``partition``'s state (held from now on);
        a None value deletes its key, a record without a key is ignored."""
        state = self._state.setdefault(partition, {})
        for key, value in records:
            if key is None:
                continue
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value

    def take_changes(self) -> list[Change]:
        """The last value per key put since the last call, to produce in the transaction being
        committed; the buffer is empty afterwards."""
        out = [
            Change(self.changelog_topic, partition, key, value)
            for partition, changes in self._changes.items()
            for key, value in changes.items()
        ]
        self._changes.clear()
        return out

    def discard_changes(self) -> None:
        """Forget buffered puts (their transaction was aborted)."""
        self._changes.clear()

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the state and buffered puts of ``partitions`` (revoked)."""
        for partition in partitions:
            self._state.pop(partition, None)
            self._changes.pop(partition, None)
