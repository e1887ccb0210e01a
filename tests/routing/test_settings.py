from __future__ import annotations

import pytest

from streams.config import ConfigError
from streams.routing.settings import WorkerSettings

pytestmark = pytest.mark.unit


def test_the_engine_worker_refuses_a_rocksdb_store_it_would_not_use() -> None:
    with pytest.raises(ConfigError, match="AIR_EXSTREAM_STORE=rocksdb://"):
        WorkerSettings(engine="kafka", store="rocksdb://")


def test_the_engine_worker_refuses_at_least_once() -> None:
    with pytest.raises(ConfigError, match="always exactly-once"):
        WorkerSettings(engine="kafka", processing_guarantee="at_least_once")


def test_the_faust_worker_keeps_both_settings() -> None:
    settings = WorkerSettings(
        engine="faust", store="rocksdb://", processing_guarantee="at_least_once"
    )
    assert settings.store == "rocksdb://"
    assert settings.processing_guarantee == "at_least_once"
    assert WorkerSettings(engine="kafka").store == "memory://"
