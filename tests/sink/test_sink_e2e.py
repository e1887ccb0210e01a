"""The sink on the real broker against the emulator (both as processes), with injected 429s, 5xx
and timeouts, and a SIGKILL of the sink mid-run: every command reaches Exstream exactly once.

The emulator composes whatever it is sent (it does not refuse a communication id twice), so
"exactly once" is the sink's own doing: deterministic batch ids as the jobs' external ids, the
batches intended before the crash recorded on Kafka, and a lookup by external id before any of
them is sent again."""

from __future__ import annotations

import random
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams.codec import codec_for
from streams.demo.processes import ServiceProcess, free_port, wait_consumed, wait_http
from streams.domain.records import CompositionCommand, PostalAddress, Recipient, Submission
from streams.metrics import parse_samples
from streams.simulator.generator import template_catalogue
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import ledger_of
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

COMMANDS = 3_000
SECRET = "e2e-client-secret"


def make_commands(n: int, seed: int) -> list[CompositionCommand]:
    rng = random.Random(seed)
    templates = [t for t in template_catalogue() if t.status == "APPROVED"]
    out = []
    for i in range(n):
        t = rng.choice(templates)
        channel = rng.choice(t.channels or ["PRINT", "EMAIL", "WEB", "SMS", "PUSH"])
        customer = f"cust-{rng.randrange(500):06d}"
        out.append(
            CompositionCommand(
                communication_id=f"com-e2e-{seed}-{i:06d}",
                source_event_id=f"evt-{i}",
                source_topic="air.account-events.v1",
                event_type="BILLING_CYCLE_CLOSED",
                rule_id="rule-x",
                rule_version=1,
                customer_id=customer,
                communication_type=t.communication_type,
                template_id=t.template_id,
                template_version=t.version,
                language=t.language,
                channel=channel,
                recipient=Recipient(
                    postal_address=PostalAddress(
                        line1="1 Main St", city="Springfield", postal_code="12345", country="US"
                    )
                )
                if channel == "PRINT"
                else Recipient(),
                data=dict.fromkeys(t.required_fields, f"v{i}"),
                created_at=1_767_225_600_000 + i,
            )
        )
    return out


def _metrics_of(sink: ServiceProcess) -> str:
    port = sink.args[sink.args.index("--metrics-port") + 1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())
    except OSError as exc:
        return f"(no metrics: {exc})"


def _wait_documents(url: str, at_least: int, sink: ServiceProcess, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    documents = 0
    while time.monotonic() < deadline:
        assert sink.alive(), sink.tail()
        documents = int(ledger_of(url)["documents"])
        if documents >= at_least:
            return documents
        time.sleep(0.2)
    raise AssertionError(
        f"only {documents} documents after {timeout_s} s:\n{sink.tail()}\n{_metrics_of(sink)}"
    )


@pytest.mark.timeout(600)
def test_every_command_reaches_exstream_once_across_faults_and_a_sink_crash(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"sink{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    commands_topic = topology.name(names.COMMANDS)
    codec = codec_for(CompositionCommand)
    commands = make_commands(COMMANDS, seed=11)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for c in commands:
        producer.produce(commands_topic, key=c.customer_id.encode(), value=codec.encode(c))
    assert producer.flush(60) == 0
    publish_synced_templates(template_catalogue(), topology, {"bootstrap.servers": bootstrap})

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = ServiceProcess(
        "emulator",
        [
            "exstream-emulator",
            "--port",
            str(port),
            "--seed",
            "3",
            "--latency-median-ms",
            "3",
            "--latency-p99-ms",
            "30",
            "--rate-limit",
            "40",
            "--error-rate",
            "0.08",
            "--timeout-rate",
            "0.03",
            "--timeout-hold-s",
            "1",
        ],
        tmp_path,
        {"EXSTREAM_CLIENT_SECRET": SECRET},
    )
    group = f"sink-{uuid.uuid4().hex[:6]}"
    metrics_port = free_port()
    sink = ServiceProcess(
        "sink",
        [
            "sink",
            "--prefix",
            prefix,
            "--group-id",
            group,
            "--batch-size",
            "25",
            "--metrics-port",
            str(metrics_port),
        ],
        tmp_path,
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXSTREAM_CLIENT_SECRET": SECRET,
            "EXSTREAM_URL": url,
        },
    )
    emulator.start()
    try:
        wait_http(f"{url}/_emulator/healthz", emulator)
        sink.start()
        _wait_documents(url, COMMANDS // 3, sink, timeout_s=180)
        sink.kill()  # mid-run: batches in flight, offsets behind the documents made
        assert ledger_of(url)["documents"] < COMMANDS, "the crash must come mid-run"
        sink.start()
        _wait_documents(url, COMMANDS, sink, timeout_s=300)
        wait_consumed(bootstrap, group, [commands_topic], worker=sink, timeout_s=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            metrics = r.read().decode()
        final = ledger_of(url)
    finally:
        sink.stop()
        emulator.stop()

    print(f"\nsink e2e: ledger {final}\nmetrics:\n{metrics}")  # figures for the run's report
    # ---- exactly once at Exstream, by its ledger
    assert final["documents"] == COMMANDS
    assert final["communications"] == COMMANDS
    assert final["communications_with_more_than_one_document"] == 0
    # ---- faults were really exercised, and survived
    samples = parse_samples(metrics)
    assert any(
        name.startswith('air_exstream_sink_retries_total{reason="HTTP_') and value > 0
        for name, value in samples.items()
    )
    # ---- the restarted sink rebuilt the batches intended before the kill and looked them up
    recovered = samples["air_exstream_sink_batches_recovered_total"]
    assert recovered > 0
    assert samples["air_exstream_sink_lookups_total"] >= recovered
    # ---- every communication has its submission record (communication id -> job id)
    subs = codec_for(Submission)
    submitted = {
        subs.decode(r.value or b"").communication_id
        for r in read_topic(bootstrap, topology.name(names.SUBMISSIONS))
    }
    assert submitted == {c.communication_id for c in commands}
