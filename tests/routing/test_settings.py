from __future__ import annotations

import pytest

from streams.config import ConfigError
from streams.routing.settings import WorkerSettings

pytestmark = pytest.mark.unit


def test_a_store_that_is_neither_memory_nor_rocksdb_is_refused() -> None:
    with pytest.raises(ConfigError, match="AIR_EXSTREAM_STORE=redis://"):
        WorkerSettings(store="redis://")


def test_at_least_once_is_refused() -> None:
    with pytest.raises(ConfigError, match="always exactly-once"):
        WorkerSettings(processing_guarantee="at_least_once")


def test_the_tables_are_in_memory_unless_rocksdb_is_asked_for() -> None:
    assert WorkerSettings().store == "memory://"
    assert not WorkerSettings().on_disk
    assert WorkerSettings(store="rocksdb://").on_disk
    assert WorkerSettings(data_dir="/d", app_id="a").tables_dir.as_posix() == "/d/a/tables"
