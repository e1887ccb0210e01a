"""What every run of the demo must show in its summary, whatever the framing: shared by the demo
tests (``test_demo_e2e.py``, ``test_demo_registry_e2e.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.simulator.generator import Scenario, generate, template_catalogue


def assert_consistent_summary(summary: dict[str, Any], scenario: Scenario) -> None:
    """Commands, dead letters, document requests, templates, the audit chain and its signed
    checkpoints, the Exstream side (composed once, delivered), the on-demand service and the
    worker's own metrics agree with the workload and with each other."""
    dataset = generate(scenario)
    assert summary["events_in"] == scenario.events
    assert summary["dead_letters"] == summary["events_invalid"] > 0
    assert summary["commands"] == summary["distinct_communication_ids"] > scenario.customers
    # flow 5's asynchronous path: every request a command, a dead letter or a retry of one
    assert summary["document_requests_in"] == scenario.document_requests
    assert summary["document_requests_accounted_for"] is True
    assert summary["document_requests_invalid"] == len(dataset.invalid_requests) > 0
    assert summary["document_request_dead_letters"] == summary["document_requests_invalid"]
    assert summary["document_requests_retried"] == sum(r.retry for r in dataset.document_requests)
    assert summary["document_request_commands"] > 2 * scenario.document_requests // 3
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
    # the Exstream side: every command (fallbacks included) composed exactly once, and delivered
    fallbacks = summary["fallbacks"]
    assert summary["documents_composed"] == summary["commands"]
    assert summary["communications_with_more_than_one_document"] == 0
    assert summary["submissions_recorded"] == summary["commands"]
    delivered = sum(summary["delivered_by_channel"].values())
    assert delivered + summary["bounced"] - fallbacks <= summary["commands"]
    assert delivered > 0.8 * (summary["commands"] - fallbacks)
    assert summary["document_metadata_records"] >= 2 * delivered
    # the synchronous portal path: every invoice served, its metadata on Kafka
    assert summary["ondemand_requests"] > 0
    assert summary["ondemand_documents_served"] == summary["ondemand_requests"]
    assert summary["ondemand_metadata_records"] == summary["ondemand_requests"]
    assert summary["audit_records_by_kind"]["DOCUMENT_PRODUCED"] >= summary["ondemand_requests"]
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


def assert_every_process_stopped(lines: list[str]) -> None:
    for service in (
        "Routing worker",
        "Bulk sink",
        "On-demand service",
        "Webhook receiver",
        "Exstream emulator",
    ):
        assert any(f"{service}: stopped" in line for line in lines), service


def assert_no_personal_data_in_logs(log_dir: Path, echoed: list[str], scenario: Scenario) -> None:
    """Every log line the run wrote (worker, emulator, webhook receiver, sink, on-demand service,
    and what the demo printed) is free of the customers' emails, phone numbers and postal
    addresses."""
    dataset = generate(scenario)
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
    assert len(logs) >= 5, f"expected the worker's and the services' logs, found {logs}"
    text = "\n".join([*(path.read_text(errors="replace") for path in logs), *echoed])
    assert len(text) > 10_000, "the logs must really hold the run"
    leaked = sorted(n for n in needles if n in text)
    assert leaked == [], f"personal data in logs: {leaked[:5]}"
