"""The store, its values in memory or in RocksDB (each test runs on both): puts visible at once,
buffered as the last value per key for the changelog, loaded from changelog records, dropped or
set aside on revocation, guarded outside transactions and on partitions not held. What is
particular to RocksDB (its files) is :mod:`tests.engine.test_rocksdb`'s."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.engine.errors import EngineError, NotInTransaction, PartitionNotHeld
from streams.engine.rocksdb import RocksDBStates
from streams.engine.stores import Change, MemoryStore

MakeStore = Callable[..., MemoryStore]


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("rocksdb", marks=pytest.mark.component),  # files in tmp_path
    ]
)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    made: list[MemoryStore] = []

    def make(in_txn: list[bool] | None = None) -> MemoryStore:
        flag = [True] if in_txn is None else in_txn
        states = RocksDBStates(tmp_path, "counts") if request.param == "rocksdb" else None
        store = MemoryStore(
            "counts",
            changelog_topic="cl",
            partitions=4,
            in_transaction=lambda: flag[0],
            states=states,
        )
        store.load(0, ())
        store.load(1, ())
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def test_a_put_is_visible_at_once(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    assert store.get(0, b"k") == b"1"
    assert store.get(1, b"k") is None  # partitions are apart


def test_changes_are_the_last_value_per_key_per_partition(make_store: MakeStore) -> None:
    store = make_store()
    for value in (b"1", b"2", b"3"):
        store.put(0, b"k", value)
    store.put(1, b"k", b"x")
    store.put(0, b"gone", b"1")
    store.put(0, b"gone", None)
    assert sorted(store.take_changes(), key=lambda c: (c.partition, c.key)) == [
        Change("cl", 0, b"gone", None),
        Change("cl", 0, b"k", b"3"),
        Change("cl", 1, b"k", b"x"),
    ]
    assert store.take_changes() == []  # taken once
    assert store.get(0, b"gone") is None


def test_load_applies_changelog_records_in_order(make_store: MakeStore) -> None:
    store = make_store()
    store.load(2, [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None), (None, b"x")])
    assert dict(store.items(2)) == {b"a": b"2"}
    assert store.partitions() == frozenset({0, 1, 2})
    assert store.take_changes() == []  # restored records are not written back


def test_drop_forgets_state_and_buffered_changes(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    store.put(1, b"k", b"1")
    store.drop([0])
    assert store.partitions() == frozenset({1})
    assert store.get(0, b"k") is None
    assert [c.partition for c in store.take_changes()] == [1]


def test_discarded_changes_are_not_written(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    store.discard_changes()
    assert store.take_changes() == []


def test_a_put_outside_a_transaction_is_refused(make_store: MakeStore) -> None:
    flag = [False]
    store = make_store(flag)
    with pytest.raises(NotInTransaction):
        store.put(0, b"k", b"1")
    flag[0] = True
    store.put(0, b"k", b"1")
    assert store.get(0, b"k") == b"1"


def test_a_put_into_a_partition_not_held_is_refused(make_store: MakeStore) -> None:
    store = make_store()
    with pytest.raises(PartitionNotHeld, match="partition 3"):
        store.put(3, b"k", b"1")
    assert 3 not in store.partitions()


def test_find_looks_in_the_first_partition_then_in_every_other_held(make_store: MakeStore) -> None:
    store = make_store()
    store.load(2, ())
    store.put(1, b"k", b"in-1")
    store.put(2, b"j", b"in-2")
    assert store.find(b"k", 1) == b"in-1"
    assert store.find(b"k", 0) == b"in-1"  # not in 0: found in another held partition
    assert store.find(b"j") == b"in-2"  # no first partition (a timer)
    assert store.find(b"absent", 0) is None
    store.drop([2])
    assert store.find(b"j", 0) is None  # a dropped partition is not looked in


def test_items_is_a_snapshot_puts_while_iterating_are_not_seen(make_store: MakeStore) -> None:
    store = make_store()
    for key in (b"a", b"b", b"c"):
        store.put(0, key, b"old")
    seen = []
    for key, value in store.items(0):
        seen.append((key, value))
        store.put(0, b"b", b"new")
        store.put(0, b"z", b"added")
    assert sorted(seen) == [(b"a", b"old"), (b"b", b"old"), (b"c", b"old")]
    assert dict(store.items(0)) == {b"a": b"old", b"b": b"new", b"c": b"old", b"z": b"added"}
    assert list(store.items(3)) == []  # not held


def test_a_partition_loaded_again_after_drop_starts_empty(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    store.drop([0])
    store.load(0, ())
    store.load(0, [(b"j", b"1")])
    store.load(0, [(b"i", b"1")])  # later batches add to it
    assert dict(store.items(0)) == {b"j": b"1", b"i": b"1"}


def test_size_counts_the_keys_of_a_held_partition_without_reading_them(
    make_store: MakeStore,
) -> None:
    store = make_store()
    for n in range(5):
        store.put(0, f"k{n}".encode(), b"v")
    store.put(1, b"k0", b"v")
    assert (store.size(0), store.size(1), store.size(2)) == (5, 1, 0)


def test_a_suspended_partition_is_not_held_and_resumes_as_it_was(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    store.put(1, b"k", b"2")
    store.take_changes()  # committed
    store.suspend([0])
    assert store.partitions() == frozenset({1})
    assert store.suspended() == frozenset({0})
    assert store.get(0, b"k") is None
    with pytest.raises(PartitionNotHeld):
        store.put(0, b"k", b"3")
    assert store.resume(0)
    assert not store.resume(0)  # resumed once
    assert store.get(0, b"k") == b"1"
    assert store.partitions() == frozenset({0, 1})
    assert store.suspended() == frozenset()


def test_a_suspended_partition_dropped_or_loaded_again_starts_empty(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    store.put(1, b"k", b"1")
    store.take_changes()
    store.suspend([0, 1])
    store.drop([0])
    assert store.suspended() == frozenset({1})
    assert not store.resume(0)
    store.load(0, [(b"new", b"1")])
    store.load(1, [(b"new", b"1")])  # not resumed: loaded into a new state, the old one closed
    assert dict(store.items(0)) == {b"new": b"1"}
    assert dict(store.items(1)) == {b"new": b"1"}
    assert store.suspended() == frozenset()


def test_a_partition_with_uncommitted_puts_is_not_suspended(make_store: MakeStore) -> None:
    store = make_store()
    store.put(0, b"k", b"1")
    with pytest.raises(EngineError, match="uncommitted"):
        store.suspend([0])
    assert store.partitions() == frozenset({0, 1})
