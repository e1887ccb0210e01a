"""Partitioned key-value stores backed by changelog topics (pure: no Kafka, no files).

Values live in a dict per partition, or in whatever :class:`PartitionStates` opens instead (e.g.
a RocksDB per partition, :mod:`streams.engine.rocksdb`, for tables larger than memory). Puts are
visible to ``get`` at once and are buffered as the last value per key until the engine takes
them (:meth:`MemoryStore.take_changes`) to produce them to the changelog partition of the same
number in the transaction being committed. A partition's state is opened empty and loaded from
its changelog (:meth:`MemoryStore.load`) before it is used, and forgotten (closed) when it is
revoked (:meth:`MemoryStore.drop`). A rebalance may set a revoked partition's state aside
instead (:meth:`MemoryStore.suspend`): not held, kept as it was, and taken back
(:meth:`MemoryStore.resume`) when the partition comes back in the next assignment, or dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol

from streams.engine.errors import EngineError, NotInTransaction, PartitionNotHeld


class Change(NamedTuple):
    """One changelog record to produce: ``value`` None is a tombstone (a NamedTuple: a third of
    a frozen dataclass's cost, per key per transaction)."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None


class PartitionState(Protocol):
    """One partition's values, as the store uses them: a dict has all of it, and the store's
    per-record calls stay the dict's own (no wrapper on the memory path)."""

    def get(self, key: bytes, /) -> bytes | None: ...

    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...

    def pop(self, key: bytes, default: None, /) -> object:
        """Delete ``key`` if present (the result is not used)."""
        ...

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every (key, value). A dict's view fails when the dict changes under it: the store
        copies a dict's first; any other state's iterator must read a snapshot itself."""
        ...

    def __len__(self) -> int:
        """How many keys (an on-disk state may answer its own estimate)."""
        ...


class PartitionStates(Protocol):
    """Where a store keeps its partitions' values."""

    def open(self, partition: int) -> PartitionState:
        """An empty state for ``partition``, held from now on (its changelog is replayed into
        it next: anything left of an earlier assignment is not kept)."""
        ...

    def close(self, partition: int) -> None:
        """``partition`` is not held any more (revoked, or the engine stopped)."""
        ...

    def reopen(self, partition: int) -> PartitionState | None:
        """What an earlier process left of ``partition``, opened as it is (held from now on);
        None when nothing is left (in memory: never)."""
        ...


class DictStates:
    """The default :class:`PartitionStates`: a dict per partition, nothing to close."""

    def open(self, partition: int) -> PartitionState:
        state: dict[bytes, bytes] = {}
        return state

    def reopen(self, partition: int) -> PartitionState | None:
        return None

    def close(self, partition: int) -> None:
        return None


class MemoryStore:
    """A :class:`streams.engine.api.Store` whose changes are buffered in memory; its values are
    kept where ``states`` says (default: a dict per partition)."""

    def __init__(
        self,
        name: str,
        *,
        changelog_topic: str,
        partitions: int,
        in_transaction: Callable[[], bool] = lambda: True,
        states: PartitionStates | None = None,
    ) -> None:
        self.name = name
        self.changelog_topic = changelog_topic
        self.partition_count = partitions
        self._in_transaction = in_transaction
        self._states: PartitionStates = DictStates() if states is None else states
        self._state: dict[int, PartitionState] = {}
        self._suspended: dict[int, PartitionState] = {}
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
        """The values of ``partition`` as they are now: puts made while iterating are not seen
        (a dict is copied; another state's iterator reads a snapshot of its own)."""
        state = self._state.get(partition)
        if state is None:
            return iter(())
        if isinstance(state, dict):
            return iter(list(state.items()))
        return iter(state.items())

    def size(self, partition: int) -> int:
        """How many keys ``partition`` holds (0 when not held), without reading them."""
        state = self._state.get(partition)
        return 0 if state is None else len(state)

    def partitions(self) -> frozenset[int]:
        return frozenset(self._state)

    # ---- the engine's side

    def load(self, partition: int, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
        """Apply changelog records in offset order to ``partition``'s state (held from now on);
        a None value deletes its key, a record without a key is ignored. A partition not held
        yet gets a new, empty state: the restore calls this first with no records, then once
        per batch, and only that first call opens it."""
        state = self._state.get(partition)
        if state is None:
            if self._suspended.pop(partition, None) is not None:
                self._states.close(partition)  # not resumed: replayed from the beginning
            state = self._state[partition] = self._states.open(partition)
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

    def suspend(self, partitions: Iterable[int]) -> None:
        """Set the states of ``partitions`` (revoked) aside, as they are: not held any more
        (``get`` finds nothing there, ``put`` refuses), kept until :meth:`resume` or
        :meth:`drop`. Only between transactions: a buffered put of theirs is refused."""
        for partition in partitions:
            if self._changes.get(partition):
                raise EngineError(
                    f"store {self.name}: partition {partition} suspended with uncommitted puts"
                )
            state = self._state.pop(partition, None)
            if state is not None:
                self._suspended[partition] = state

    def reopen(self, partition: int) -> bool:
        """Hold what an earlier process left of ``partition`` (on disk), as it is; False when
        nothing is left or the partition is held or suspended already (nothing changes then)."""
        if partition in self._state or partition in self._suspended:
            return False
        state = self._states.reopen(partition)
        if state is None:
            return False
        self._state[partition] = state
        return True

    def suspended(self) -> frozenset[int]:
        """The partitions set aside by :meth:`suspend`."""
        return frozenset(self._suspended)

    def resume(self, partition: int) -> bool:
        """Hold a suspended partition's state again, as it was set aside; False when it was
        not suspended (nothing changes then)."""
        state = self._suspended.pop(partition, None)
        if state is None:
            return False
        self._state[partition] = state
        return True

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the state (held or suspended) and buffered puts of ``partitions``, their
        states closed."""
        for partition in partitions:
            # popped before it is closed: a revocation in the engine's closing thread and the
            # engine's own close (:meth:`close`) may race, and only one of them closes it
            if self._state.pop(partition, None) is not None:
                self._states.close(partition)
            if self._suspended.pop(partition, None) is not None:
                self._states.close(partition)
            self._changes.pop(partition, None)

    def close(self) -> None:
        """Forget every partition, held or suspended, their states closed (the engine
        stopped)."""
        self.drop([*self._state, *self._suspended])
