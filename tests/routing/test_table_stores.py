"""Which store each table of the routing worker uses, and where its files go (no broker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksStore

from streams.config import KafkaSettings
from streams.routing.app import create_app
from streams.routing.settings import WorkerSettings
from topology.model import load_topology

pytestmark = pytest.mark.component

READ_MODIFY_WRITE = ("suppression", "audit-chain-heads", "communications", "parked-delivery-events")


def _tables(tmp_path: Path, **settings: Any) -> tuple[Any, WorkerSettings]:
    worker = WorkerSettings(data_dir=str(tmp_path), engine="faust", **settings)
    app, _ = create_app(
        kafka=KafkaSettings().with_bootstrap("127.0.0.1:9"),
        worker=worker,
        topology=load_topology("local"),
    )
    return app, worker


def test_rocksdb_holds_preferences_and_the_read_modify_write_tables_stay_in_memory(
    tmp_path: Path,
) -> None:
    app, worker = _tables(
        tmp_path, store="rocksdb://", rocksdb_write_buffer_mb=8, rocksdb_block_cache_mb=32
    )
    preferences = app.tables["preferences"].data
    assert isinstance(preferences, RocksStore)
    assert preferences.rocksdb_options.write_buffer_size == 8 * 1024 * 1024
    assert preferences.rocksdb_options.block_cache_size == 32 * 1024 * 1024
    assert preferences.partition_path(3) == worker.state_dir / "v1/tables/preferences-3.db"
    for name in READ_MODIFY_WRITE:
        assert isinstance(app.tables[name].data, MemoryStore), name


def test_memory_store_keeps_every_table_in_memory(tmp_path: Path) -> None:
    app, worker = _tables(tmp_path)
    assert worker.store == "memory://"
    assert worker.rocksdb_options() is None
    for name in ("preferences", *READ_MODIFY_WRITE):
        assert isinstance(app.tables[name].data, MemoryStore), name


def test_each_app_id_has_its_own_state_dir(tmp_path: Path) -> None:
    """faust names table files after the table alone: two app ids must not share them."""
    one = WorkerSettings(
        data_dir=str(tmp_path), app_id="router-a", engine="faust", store="rocksdb://"
    )
    two = WorkerSettings(
        data_dir=str(tmp_path), app_id="router-b", engine="faust", store="rocksdb://"
    )
    assert one.state_dir == tmp_path / "router-a"
    assert two.state_dir == tmp_path / "router-b"
    app, _ = _tables(tmp_path, app_id="router-a", store="rocksdb://")
    assert Path(app.conf.tabledir) == tmp_path / "router-a" / "v1" / "tables"


def test_rocksdb_options_are_a_fresh_dict_each_time() -> None:
    """faust pops keys from the options it is given."""
    worker = WorkerSettings(engine="faust", store="rocksdb://")
    first = worker.rocksdb_options()
    assert first is not None
    first.clear()
    assert worker.rocksdb_options() == {
        "write_buffer_size": 16 * 1024 * 1024,
        "block_cache_size": 64 * 1024 * 1024,
    }
