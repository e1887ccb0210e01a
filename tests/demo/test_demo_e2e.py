from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from streams.demo.run import DemoOptions, run_demo
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e


class _Bar:
    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n


def test_demo_runs_every_stage_and_writes_a_consistent_summary(
    kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    out = tmp_path / "summary.json"
    lines: list[str] = []
    bar = _Bar()

    def progress(total: int) -> Any:
        return nullcontext(bar)

    summary = run_demo(
        DemoOptions(events=800, customers=100, seed=3, state_dir=tmp_path / "k", summary_path=out),
        lines.append,
        progress,
    )
    assert bar.done == 800
    assert json.loads(out.read_text()) == summary
    assert summary["events_in"] == 800
    assert summary["dead_letters"] == summary["events_invalid"] > 0
    assert summary["commands"] == summary["distinct_communication_ids"] > 100
    assert summary["audit_chain_verified"] is True
    assert len(summary["schemas_round_tripped"]) == 13
    assert any("Routing worker: stopped" in line for line in lines)
