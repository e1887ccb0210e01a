"""The whole system on the real broker while the emulator injects 429s, 5xx, timeouts, bounces and
duplicate/out-of-order callbacks: every command becomes exactly one document, every delivery
event reaches Air Inc.'s status topic, bounces fall back, and a customer's audit timeline tells
the whole story in order."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.audit.cli import audit as audit_cli
from streams.codec import codec_for
from streams.demo.run import DemoOptions, run_demo
from streams.domain import delivery
from streams.domain.records import CommunicationStatus, DeliveryEvent
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from topology import names
from topology.model import load_topology

pytestmark = pytest.mark.e2e

FAULTS = (
    "--rate-limit", "4",
    "--rate-limit-burst", "2",
    "--error-rate", "0.2",
    "--timeout-rate", "0.1",
    "--timeout-hold-s", "1",
    "--bounce-rate", "0.4",
    "--duplicate-callback-rate", "0.2",
    "--out-of-order-callback-rate", "0.2",
)  # fmt: skip


class _Bar:
    def update(self, n: int) -> None:
        return None


@pytest.mark.timeout(900)
def test_all_flows_under_exstream_faults(
    kafka: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    # smaller batches: about 30 submissions instead of 8 to 16, so the injected 5xx answers and
    # timeouts (28 % of the calls past the rate limit) are all but certain to hit some (16
    # submissions missed them all in one CI run: 0.72^16 = 0.5 %; 0.72^30 = 5e-5)
    monkeypatch.setenv("AIR_EXSTREAM_SINK_BATCH_SIZE", "50")
    lines: list[str] = []
    summary = run_demo(
        DemoOptions(
            events=1_500,
            customers=150,
            seed=5,
            state_dir=tmp_path / "k",
            summary_path=tmp_path / "summary.json",
            emulator_faults=FAULTS,
        ),
        lines.append,
        lambda total, label="": nullcontext(_Bar()),
    )
    bootstrap = kafka.bootstrap_servers
    topology = load_topology("local", prefix=summary["topic_prefix"])

    # ---- exactly once at Exstream, by its ledger, with the faults really injected
    assert summary["documents_composed"] == summary["commands"] > 500
    assert summary["communications_with_more_than_one_document"] == 0
    sink = summary["sink_metrics"]
    # 5xx answers and timeouts injected by the emulator, and the sink retried them
    emulator = summary["emulator_stats"]
    injected = emulator.get("verdict_error", 0) + emulator.get("verdict_timeout", 0)
    retried = sum(
        v
        for k, v in sink.items()
        if k.startswith(('retries_total{reason="HTTP_5', 'retries_total{reason="ExstreamTimeout'))
    )
    assert injected > 0, (emulator, sink)
    assert retried > 0, (emulator, sink)
    assert retried <= injected, (emulator, sink)
    assert sink.get('retries_total{reason="HTTP_429"}', 0) > 0
    assert sink.get("pushbacks_total", 0) > 0
    assert summary["webhook_metrics"]["air_exstream_webhook_duplicates_total"] > 0

    # ---- every delivery event reached the status topic: each communication's final status is
    # the furthest its (deduplicated, possibly reordered) delivery events went
    events: dict[str, list[DeliveryEvent]] = defaultdict(list)
    event_codec = codec_for(DeliveryEvent)
    for r in read_topic(bootstrap, topology.name(names.DELIVERY_EVENTS)):
        e = event_codec.decode(r.value or b"")
        events[e.communication_id].append(e)
    statuses: dict[str, list[CommunicationStatus]] = defaultdict(list)
    status_codec = codec_for(CommunicationStatus)
    for r in read_topic(bootstrap, topology.name(names.COMMUNICATION_STATUS)):
        s = status_codec.decode(r.value or b"")
        statuses[s.communication_id].append(s)
    assert len(events) == summary["commands"]
    for com_id, evs in events.items():
        furthest = max((e.status for e in evs), key=delivery.rank)
        final = [s.status for s in statuses[com_id] if s.exception_code != "SLA_BREACHED"]
        assert final, f"no status for {com_id}"
        assert final[-1] == furthest, (com_id, [e.status for e in evs], final)
        assert len(final) == len(set(final)), f"a status repeated for {com_id}: {final}"

    # ---- bounced emails fall back (print or web) or are reported undeliverable
    bounced = [s for ss in statuses.values() for s in ss if s.status == "EMAIL_BOUNCED"]
    fallback_of = {s.fallback_of for ss in statuses.values() for s in ss if s.fallback_of}
    assert bounced
    assert fallback_of
    for s in bounced:
        assert s.communication_id in fallback_of or s.exception_code == "UNDELIVERABLE_NO_FALLBACK"

    # ---- one customer's whole story, in order, from the audit trail
    story_of = next(s for ss in statuses.values() for s in ss if s.fallback_of)
    customer = story_of.customer_id
    result = CliRunner().invoke(
        audit_cli,
        [
            "timeline",
            "--bootstrap-servers",
            bootstrap,
            "--prefix",
            summary["topic_prefix"],
            "--customer",
            customer,
        ],
    )
    assert result.exit_code == 0, result.output
    original = story_of.fallback_of
    assert original is not None
    story = [line for line in result.output.splitlines() if original in line]
    kinds = [line.split()[2] for line in story]
    assert kinds[0] == "COMMAND_EMITTED"
    assert "DOCUMENT_PRODUCED" in kinds
    bounce_at = next(i for i, line in enumerate(story) if "EMAIL_BOUNCED" in line)
    assert kinds.index("DOCUMENT_PRODUCED") < bounce_at
    fallback_story = [
        line for line in result.output.splitlines() if story_of.communication_id in line
    ]
    assert fallback_story, "the fallback communication is in the customer's timeline"
    assert summary["audit_chain_verified"] is True
    assert any("Bulk sink: stopped" in line for line in lines)
