"""The routing worker meets a Confluent-framed event while its schema registry does not answer
(503 on every lookup): it waits, then exits for its supervisor (the commit watchdog's status)
with the event neither dead-lettered nor committed, so the restarted worker reads it again. And
a registry that does not answer at all stops the worker at start, before it reads anything."""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from streams.demo.processes import WorkerProcess, committed, end_offsets, wait_consumed
from streams.localkafka.processes import pick_free_ports
from streams.routing.watchdog import EXIT_STUCK
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e


class _Failing(BaseHTTPRequestHandler):
    """A registry that registers schemas (id 1) but answers every lookup with 503."""

    def do_POST(self) -> None:
        self._answer(200, b'{"id": 1}')

    def do_GET(self) -> None:
        self._answer(503, b'{"error_code": 50301, "message": "unavailable"}')

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def failing_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(300)
def test_an_unanswering_registry_stops_the_worker_without_dead_lettering_the_event(
    kafka: KafkaCluster, tmp_path: Path, failing_registry: str
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"regdown{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    dataset = generate(Scenario(seed=7, customers=5, events=0))
    publish_reference(dataset, topology, conf)  # single-object: readable without the registry
    publish_synced_templates(dataset.templates, topology, conf)
    app_id = f"router-regdown-{uuid.uuid4().hex[:6]}"
    # first without a registry: the preferences, rules and templates are read and committed, and
    # the audit records of the alignment alerts they raise are written single-object. A worker
    # meeting the failing registry from the start could stop on its own audit intake records
    # (framed, read back through the registry) before it committed the preferences.
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = WorkerProcess(bootstrap, prefix, app_id, tmp_path / "first")
    first.start()
    try:
        intake = topology.name(names.AUDIT_INTAKE)
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES), intake], worker=first)
    finally:
        first.stop()
    worker = WorkerProcess(
        bootstrap,
        prefix,
        app_id,
        tmp_path / "second",
        env={
            "KAFKA_SCHEMA_REGISTRY_URL": failing_registry,
            "AIR_EXSTREAM_REGISTRY_WAIT_S": "2",
        },
    )
    account_topic = topology.name(names.ACCOUNT_EVENTS)
    worker.start()
    try:
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)
        producer = Producer({**conf, "acks": "all"})
        customer = dataset.preferences[0].customer_id.encode()
        producer.produce(account_topic, key=customer, value=b"\x00" + struct.pack(">I", 77) + b"\0")
        assert producer.flush(30) == 0
        deadline = time.monotonic() + 120
        while worker.alive():
            assert time.monotonic() < deadline, worker.tail()
            time.sleep(0.2)
        assert worker.proc is not None
        assert worker.proc.returncode == EXIT_STUCK, worker.tail()
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "could not resolve schema id 77: HTTP 503" in log, worker.tail()
    assert list(read_topic(bootstrap, names.dlq(account_topic))) == []
    ends = end_offsets(bootstrap, [account_topic])
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": app_id})
    try:
        done = committed(probe, list(ends))
    finally:
        probe.close()
    assert sum(max(o, 0) for o in done.values()) == 0, "the event must stay uncommitted"


@pytest.mark.timeout(120)
def test_a_registry_that_refuses_connections_stops_the_worker_at_start(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    prefix = f"regoff{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": kafka.bootstrap_servers}, topology)
    nobody = pick_free_ports(1)[0]  # connections to it are refused
    worker = WorkerProcess(
        kafka.bootstrap_servers,
        prefix,
        f"router-regoff-{uuid.uuid4().hex[:6]}",
        tmp_path,
        env={"KAFKA_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{nobody}"},
    )
    worker.start()
    try:
        assert worker.proc is not None
        worker.proc.wait(90)
        assert worker.proc.returncode not in (0, None)
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "the schema registry did not register" in log, worker.tail()
