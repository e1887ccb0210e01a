"""A store's partitions in RocksDB: one database per (store, partition) under the directory,
closed with its values on drop and on close (readable by another reader afterwards), deleted
when the partition is opened again (the changelog is replayed into an empty one), once per
assignment only, or reopened as it is (after a clean stop, the changelog read on from there).
The store's own behaviour on RocksDB is :mod:`tests.engine.test_stores`'s."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocksdict import Rdict

from streams.engine.rocksdb import RocksDBStates, rocksdb_options
from streams.engine.stores import MemoryStore
from tests.engine.rocksdb_files import read_closed

pytestmark = pytest.mark.component


def _store(directory: Path) -> MemoryStore:
    return MemoryStore(
        "counts",
        changelog_topic="cl",
        partitions=2,
        states=RocksDBStates(directory, "counts"),
    )


def test_one_database_per_partition_whose_values_survive_close(tmp_path: Path) -> None:
    store = _store(tmp_path / "state")
    store.load(0, ())
    store.load(0, [(b"a", b"1"), (b"b", b"1")])
    store.load(1, [(b"c", b"1")])
    store.put(0, b"a", b"2")
    store.put(0, b"b", None)
    store.put(0, b"never", None)  # deleting an absent key is no error
    store.close()
    assert store.partitions() == frozenset()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["counts-0.db", "counts-1.db"]
    assert read_closed(tmp_path / "state" / "counts-0.db") == {b"a": b"2"}
    assert read_closed(tmp_path / "state" / "counts-1.db") == {b"c": b"1"}


def test_a_dropped_partition_is_closed_with_its_values_and_wiped_when_loaded_again(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    path = tmp_path / "counts-0.db"
    store.load(0, [(b"old", b"1")])
    store.load(1, [(b"other", b"1")])
    store.drop([0])
    assert read_closed(path) == {b"old": b"1"}  # closed (a reader may open it), kept
    store.load(0, ())  # assigned again: replayed from the changelog into an empty database
    store.load(0, [(b"new", b"1")])
    store.load(0, [(b"newer", b"1")])  # a later batch of the same restore: nothing wiped
    assert dict(store.items(0)) == {b"new": b"1", b"newer": b"1"}
    assert dict(store.items(1)) == {b"other": b"1"}  # another partition untouched
    store.close()
    assert read_closed(path) == {b"new": b"1", b"newer": b"1"}


def test_files_left_by_an_earlier_process_are_wiped_on_the_first_load(tmp_path: Path) -> None:
    path = tmp_path / "counts-0.db"
    stale = Rdict(str(path), rocksdb_options())
    stale[b"stale"] = b"1"
    stale.close()
    store = _store(tmp_path)
    store.load(0, [(b"fresh", b"1")])
    assert store.get(0, b"stale") is None
    assert dict(store.items(0)) == {b"fresh": b"1"}
    store.close()


def test_a_store_name_that_cannot_name_a_file_is_refused(tmp_path: Path) -> None:
    for name in ("", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a file"):
            RocksDBStates(tmp_path, name)


def test_items_reads_the_values_of_its_call_and_lets_the_database_go_when_done(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.load(0, [(b"a", b"1")])
    entries = store.items(0)
    store.load(0, [(b"b", b"1")])  # after the call, before the first value is read
    assert list(entries) == [(b"a", b"1")]
    store.drop([0])
    store.load(0, ())  # opened again while ``entries`` is still referenced: not held open
    assert list(store.items(0)) == []
    store.close()


def test_the_files_an_earlier_process_closed_are_reopened_as_they_are(tmp_path: Path) -> None:
    first = _store(tmp_path)
    first.load(0, [(b"a", b"1"), (b"b", b"1")])
    first.put(0, b"a", b"2")
    first.close()
    later = _store(tmp_path)  # the next process on the directory
    assert later.reopen(0)
    assert not later.reopen(0)  # held already
    assert not later.reopen(1)  # nothing left of partition 1
    assert dict(later.items(0)) == {b"a": b"2", b"b": b"1"}
    later.load(0, [(b"c", b"1")])  # read on from where the files stand
    later.put(0, b"b", None)
    later.close()
    assert read_closed(tmp_path / "counts-0.db") == {b"a": b"2", b"c": b"1"}


def test_in_memory_nothing_is_left_to_reopen() -> None:
    store = MemoryStore("counts", changelog_topic="cl", partitions=2)
    store.load(0, [(b"a", b"1")])
    store.close()
    assert not store.reopen(0)
    assert store.partitions() == frozenset()
