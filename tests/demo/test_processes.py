from __future__ import annotations

from pathlib import Path

import pytest

from streams.demo.processes import WorkerProcess

pytestmark = pytest.mark.unit


def test_worker_env_adds_settings_but_keeps_its_identity(tmp_path: Path) -> None:
    worker = WorkerProcess(
        "127.0.0.1:9092",
        "p.",
        "router-x",
        tmp_path,
        env={
            "AIR_EXSTREAM_REPLICATION_FACTOR": "3",
            "AIR_EXSTREAM_APP_ID": "another",
            "KAFKA_BOOTSTRAP_SERVERS": "elsewhere:9092",
        },
    )
    assert worker.env["AIR_EXSTREAM_REPLICATION_FACTOR"] == "3"
    assert worker.env["AIR_EXSTREAM_APP_ID"] == "router-x"
    assert worker.env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert worker.env["AIR_EXSTREAM_DATA_DIR"] == str(tmp_path / "data")
    assert worker.args == ["worker", "--prefix", "p."]


def test_worker_without_env_has_only_its_own_settings(tmp_path: Path) -> None:
    worker = WorkerProcess("127.0.0.1:9092", "", "router-y", tmp_path)
    assert set(worker.env) == {
        "KAFKA_BOOTSTRAP_SERVERS",
        "AIR_EXSTREAM_APP_ID",
        "AIR_EXSTREAM_DATA_DIR",
        # no fixed metrics port: workers started side by side must not compete for one
        "AIR_EXSTREAM_METRICS_PORT",
    }
    assert worker.env["AIR_EXSTREAM_METRICS_PORT"] == "0"
