from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from streams.demo.run import DemoOptions, run_demo
from streams.simulator.generator import Scenario, generate, template_catalogue
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
    bars: dict[str, _Bar] = {}

    def progress(total: int, label: str = "") -> Any:
        return nullcontext(bars.setdefault(label, _Bar()))

    summary = run_demo(
        DemoOptions(
            events=800,
            customers=100,
            seed=3,
            invalid_share=0.03,
            document_requests=150,
            state_dir=tmp_path / "k",
            summary_path=out,
        ),
        lines.append,
        progress,
    )
    assert bars["Air Inc. events"].done == 800
    assert json.loads(out.read_text()) == summary
    assert summary["events_in"] == 800
    assert summary["dead_letters"] == summary["events_invalid"] > 0
    assert summary["commands"] == summary["distinct_communication_ids"] > 100
    # flow 5's asynchronous path: every request a command, a dead letter or a retry of one
    requests = generate(Scenario(seed=3, customers=100, events=800, document_requests=150))
    assert summary["document_requests_in"] == 150
    assert summary["document_requests_accounted_for"] is True
    assert summary["document_requests_invalid"] == len(requests.invalid_requests) > 0
    assert summary["document_request_dead_letters"] == summary["document_requests_invalid"]
    assert summary["document_requests_retried"] == sum(r.retry for r in requests.document_requests)
    assert summary["document_request_commands"] > 100
    assert summary["commands_by_channel"]["WEB"] >= summary["document_request_commands"]
    assert summary["audit_chain_verified"] is True
    synced = summary["templates_synced"]
    assert synced["source"] == "Exstream Design API (emulator)"
    catalogue = template_catalogue()
    assert synced["versions"] == synced["published"] == len(catalogue)
    assert synced["usable"] == sum(1 for t in catalogue if t.status == "APPROVED")
    assert synced["skipped"] == 0
    # the worker signed the chains with the run's key: no violation, most records verified
    assert summary["audit_violations"] == 0
    assert summary["audit_signed_verified"] > summary["audit_unconfirmed"]
    assert len(summary["schemas_round_tripped"]) == 13
    assert any("Routing worker: stopped" in line for line in lines)
    # the Exstream side: every command (fallbacks included) composed exactly once, and delivered
    fallbacks = summary["fallbacks"]
    assert summary["documents_composed"] == summary["commands"]
    assert summary["communications_with_more_than_one_document"] == 0
    assert summary["submissions_recorded"] == summary["commands"]
    delivered = sum(summary["delivered_by_channel"].values())
    assert delivered + summary["bounced"] - fallbacks <= summary["commands"]
    assert delivered > 0.8 * (summary["commands"] - fallbacks)
    assert summary["document_metadata_records"] >= 2 * delivered
    assert bars["Exstream documents"].done > 0
    # the worker's own metrics, scraped from its endpoint, agree with the topics' contents
    routing = summary["routing_metrics"]
    assert routing["events_in"] == summary["events_in"]
    assert routing["commands_out"] == summary["commands"]
    assert routing["dead_letters"] == summary["dead_letters"]
    assert summary["routing_dead_letters_by_reason"] == summary["dead_letters_by_reason"]
    decisions = summary["routing_decisions"]
    assert (
        decisions["event.command"]
        + decisions["document_request.command"]
        + decisions.get("delivery.fallback", 0)
        == summary["commands"]
    )
    assert decisions["document_request.command"] == summary["document_request_commands"]
    assert decisions.get("delivery.fallback", 0) == fallbacks
    assert routing["commits"] > 0
    assert routing["max_consumer_lag"] <= 1  # caught up (1: a commit marker, see the metric)
    assert any(line.startswith("Routing worker metrics (scraped):") for line in lines)
    for service in ("Bulk sink", "Webhook receiver", "Exstream emulator"):
        assert any(f"{service}: stopped" in line for line in lines)
    _assert_no_personal_data_in_logs(tmp_path / "demo-worker", lines)


def _assert_no_personal_data_in_logs(log_dir: Path, echoed: list[str]) -> None:
    """Every log line the run wrote (worker, emulator, webhook receiver, sink, and what the demo
    printed) is free of the customers' emails, phone numbers and postal addresses."""
    dataset = generate(Scenario(seed=3, customers=100, events=800))
    needles: set[str] = set()
    for p in dataset.preferences:
        if p.email:
            needles.add(p.email)
        if p.phone:
            needles.add(p.phone)
        if p.postal_address is not None:
            needles.add(p.postal_address.line1)  # not the bare postal code: ports look alike
    needles = {n for n in needles if len(n) >= 5}
    logs = sorted(log_dir.glob("*.log"))
    assert len(logs) >= 4, f"expected the worker's and the services' logs, found {logs}"
    text = "\n".join([*(path.read_text(errors="replace") for path in logs), *echoed])
    assert len(text) > 10_000, "the logs must really hold the run"
    leaked = sorted(n for n in needles if n in text)
    assert leaked == [], f"personal data in logs: {leaked[:5]}"
