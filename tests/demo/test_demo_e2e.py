from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from streams.demo.run import DemoOptions, run_demo
from streams.simulator.generator import Scenario
from tests.conftest import KafkaCluster
from tests.demo.summary_checks import (
    assert_consistent_summary,
    assert_every_process_stopped,
    assert_no_personal_data_in_logs,
)

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(seed=3, customers=100, events=800, invalid_share=0.03, document_requests=150)


class _Bar:
    def __init__(self) -> None:
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n


def test_demo_runs_every_stage_and_writes_a_consistent_summary(
    kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.delenv("KAFKA_SCHEMA_REGISTRY_URL", raising=False)
    out = tmp_path / "summary.json"
    lines: list[str] = []
    bars: dict[str, _Bar] = {}

    def progress(total: int, label: str = "") -> Any:
        return nullcontext(bars.setdefault(label, _Bar()))

    summary = run_demo(
        DemoOptions(
            events=SCENARIO.events,
            customers=SCENARIO.customers,
            seed=SCENARIO.seed,
            invalid_share=SCENARIO.invalid_share,
            document_requests=SCENARIO.document_requests,
            state_dir=tmp_path / "k",
            summary_path=out,
        ),
        lines.append,
        progress,
    )
    assert bars["Air Inc. events"].done == SCENARIO.events
    assert json.loads(out.read_text()) == summary
    assert summary["wire_format"] == "Avro single-object encoding"
    assert_consistent_summary(summary, SCENARIO)
    assert bars["Exstream documents"].done > 0
    assert any(line.startswith("Routing worker metrics (scraped):") for line in lines)
    assert_every_process_stopped(lines)
    assert_no_personal_data_in_logs(tmp_path / "demo-worker", lines, SCENARIO)
