"""Exstream goes down for 30 seconds mid-run, then throttles hard: the sink's circuit breaker
opens, it backs off, and once Exstream is back the backlog drains with nothing lost and no
document made twice. The emulator composes whatever it is sent, so "no document twice" is the
sink's own doing (batch ids as external ids, looked up before anything is sent again). Reports
its figures (printed with -s)."""

from __future__ import annotations

import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streams.codec import codec_for
from streams.demo.processes import (
    ServiceProcess,
    free_port,
    scrape_counters,
    wait_consumed,
    wait_http,
)
from streams.domain.records import CompositionCommand
from streams.simulator.generator import template_catalogue
from tests.conftest import KafkaCluster
from tests.e2e.helpers import ledger_of
from tests.exstream.templates import publish_synced_templates
from tests.sink.test_sink_e2e import SECRET, make_commands
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.faults

COMMANDS = 4_000
OUTAGE = (8.0, 38.0)  # seconds after the emulator started


def _metrics(port: int) -> dict[str, float]:
    return scrape_counters(f"http://127.0.0.1:{port}/metrics", "air_exstream_sink_")


@pytest.mark.timeout(600)
def test_a_30_second_outage_then_a_429_storm_loses_nothing(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"outage{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    codec = codec_for(CompositionCommand)
    commands = make_commands(COMMANDS, seed=23)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for c in commands[: COMMANDS // 4]:
        producer.produce(
            topology.name(names.COMMANDS), key=c.customer_id.encode(), value=codec.encode(c)
        )
    assert producer.flush(60) == 0
    publish_synced_templates(template_catalogue(), topology, {"bootstrap.servers": bootstrap})

    port, metrics_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = ServiceProcess(
        "emulator",
        ["exstream-emulator", "--port", str(port), "--outage", f"{OUTAGE[0]}:{OUTAGE[1]}"],
        tmp_path,
        {"EXSTREAM_CLIENT_SECRET": SECRET},
    )
    group = f"outage-{uuid.uuid4().hex[:6]}"
    sink = ServiceProcess(
        "sink",
        ["sink", "--prefix", prefix, "--group-id", group,
         "--batch-size", "50", "--metrics-port", str(metrics_port)],
        tmp_path,
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_CLIENT_SECRET": SECRET,
         "EXSTREAM_URL": url},
    )  # fmt: skip
    emulator.start()
    started = time.monotonic()
    try:
        wait_http(f"{url}/_emulator/healthz", emulator)
        sink.start()
        # the rest of the load arrives during the outage
        while time.monotonic() - started < OUTAGE[0] + 2:
            time.sleep(0.2)
        for c in commands[COMMANDS // 4 :]:
            producer.produce(
                topology.name(names.COMMANDS), key=c.customer_id.encode(), value=codec.encode(c)
            )
        assert producer.flush(60) == 0
        during = ledger_of(url)["documents"]
        while time.monotonic() - started < OUTAGE[1] - 2:
            assert sink.alive(), sink.tail()
            time.sleep(0.5)
        assert ledger_of(url)["documents"] == during, "nothing is composed during the outage"
        in_outage = _metrics(metrics_port)
        # then a 429 storm: 5 requests/s, burst 1
        storm = {"rate_limit_per_s": 5.0, "rate_limit_burst": 1}
        req = urllib.request.Request(  # noqa: S310 (loopback http)
            f"{url}/_emulator/faults", data=orjson.dumps(storm), method="PUT"
        )
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            assert r.status == 200
        back = time.monotonic()
        deadline = back + 300
        while ledger_of(url)["documents"] < COMMANDS:
            assert time.monotonic() < deadline, sink.tail()
            assert sink.alive(), sink.tail()
            time.sleep(0.5)
        drained_s = time.monotonic() - back
        wait_consumed(bootstrap, group, [topology.name(names.COMMANDS)], worker=sink, timeout_s=60)
        after = _metrics(metrics_port)
        final = ledger_of(url)
    finally:
        sink.stop()
        emulator.stop()

    retries_503 = after.get('retries_total{reason="HTTP_503"}', 0)
    retries_429 = after.get('retries_total{reason="HTTP_429"}', 0)
    print(
        f"\noutage test: {COMMANDS} commands, {during} documents before the outage, "
        f"circuit opened {after['circuit_opens']:.0f}x, 503 retries {retries_503:.0f}, "
        f"429 retries {retries_429:.0f}, pushbacks {after.get('pushbacks_total', 0):.0f}, "
        f"backlog drained {drained_s:.1f} s after the outage ended; ledger {final}"
    )
    assert final["documents"] == COMMANDS
    assert final["communications_with_more_than_one_document"] == 0
    assert final["twice"] == []
    assert in_outage["circuit_opens"] >= 1, "the circuit breaker is visible in the metrics"
    assert in_outage.get('retries_total{reason="HTTP_503"}', 0) >= 1
    assert after.get('retries_total{reason="HTTP_429"}', 0) >= 1
    assert after["concurrency_limit"] >= 1
