"""The routing worker on the engine (streams/routing/engine_worker.py) run by the CLI against the
real broker:

- a backlog of preferences then events, all published before a cold engine worker starts: every
  command equals the independent reference (``tests/e2e/reference.py``; the engine hands the
  preferences of a partition over before the later events) and the audit chain verifies (the
  100,000-preference backlog and preferences changed after events: ``test_backlog_e2e.py``'s
  ``kafka`` cases);
- SIGKILL mid-stream, then a restart in the same instance slot: no command lost nor duplicated
  (read_committed), and the audit chain still verifies;
- two engine workers in one group, the second joining while the first routes the backlog: the
  partitions move between them (restored from the changelogs), and still every command once, as
  the reference says, and one verifying audit chain per partition (each audit partition written
  by the owner of its input partitions only).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.audit.reader import verify_topic
from streams.codec import codec_for
from streams.demo.processes import ProcessFailed, WorkerProcess, wait_consumed
from streams.domain.records import AccountEvent, BusinessEvent, CompositionCommand
from streams.routing.partitioning import murmur2_partition
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import (
    PacedPublisher,
    assert_commands_match,
    publish_reference_and_templates,
)
from tests.e2e.reference import expected_outcome
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

BACKLOG = Scenario(seed=20261214, customers=20_000, events=2_000, invalid_share=0.02)
RESTART = Scenario(seed=20261215, customers=2_000, events=3_000, invalid_share=0.02)
SHARED = Scenario(seed=20261216, customers=2_000, events=20_000, invalid_share=0.02)
"""Enough events that the second worker usually joins while the first still routes them (the
test waits for its assignment either way)."""
EVENT_TOPICS = (names.ACCOUNT_EVENTS, names.CASE_EVENTS)


def _topology(kafka: KafkaCluster, name: str) -> tuple[Topology, dict[str, str]]:
    topology = load_topology("local", prefix=f"{name}{uuid.uuid4().hex[:6]}.")
    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    apply_topology(conf, topology)
    return topology, conf


def _engine_worker(
    kafka: KafkaCluster, topology: Topology, tmp_path: Path, app_id: str, slot: int = 0
) -> WorkerProcess:
    workdir = tmp_path / f"slot-{slot}"
    workdir.mkdir(exist_ok=True)
    return WorkerProcess(
        kafka.bootstrap_servers,
        topology.prefix,
        app_id,
        workdir,
        env={
            "AIR_EXSTREAM_INSTANCE_ID": f"slot-{slot}",
        },
    )


def _wait_consumed(kafka: KafkaCluster, topology: Topology, worker: WorkerProcess) -> None:
    wait_consumed(
        kafka.bootstrap_servers,
        worker.app_id,
        [topology.name(n) for n in EVENT_TOPICS],
        worker=worker,
        timeout_s=600,
    )


def _commands(kafka: KafkaCluster, topology: Topology) -> list[CompositionCommand]:
    """The commands written (read_committed); each in its customer's murmur2 partition."""
    codec = codec_for(CompositionCommand)
    records = list(read_topic(kafka.bootstrap_servers, topology.name(names.COMMANDS)))
    misplaced = [r.partition for r in records if r.partition != murmur2_partition(r.key or b"", 6)]
    assert misplaced == []
    return [codec.decode(r.value) for r in records]


def _source(topology: Topology) -> Callable[[BusinessEvent], str]:
    account, case = topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)
    return lambda e: account if isinstance(e, AccountEvent) else case


def _assert_audit_chain_verifies(kafka: KafkaCluster, topology: Topology) -> None:
    reports = verify_topic(kafka.bootstrap_servers, topology.name(names.AUDIT))
    assert reports, "no audit records"
    bad = [(r.partition, r.violations[:2]) for r in reports if not r.ok]
    assert bad == []
    assert sum(r.records for r in reports) > 0


@pytest.mark.timeout(900)
def test_a_cold_engine_worker_joins_a_backlog_with_the_preferences_published_before_each_event(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    topology, conf = _topology(kafka, "enginebacklog")
    dataset = generate(BACKLOG)
    publish_reference_and_templates(dataset, topology, conf)
    time.sleep(0.05)  # every event's timestamp after every preference's
    publish_events(dataset.events, topology, conf, seed=BACKLOG.seed)

    worker = _engine_worker(kafka, topology, tmp_path, f"engine-{uuid.uuid4().hex[:6]}")
    worker.start()
    try:
        _wait_consumed(kafka, topology, worker)
    finally:
        worker.stop()
    assert "Traceback" not in worker.log.read_text(errors="replace"), worker.tail()

    expected = expected_outcome(dataset, source_topics=_source(topology))
    assert_commands_match(_commands(kafka, topology), expected.commands)
    assert len(expected.commands) > 2 * len(expected.undeliverable)  # the join mattered
    _assert_audit_chain_verifies(kafka, topology)


def _wait_logged(worker: WorkerProcess, text: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.alive():
            raise ProcessFailed(f"worker exited:\n{worker.tail()}")
        if text in worker.log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise ProcessFailed(f"{text!r} not logged in {timeout_s} s:\n{worker.tail()}")


def _wait_some_commands(kafka: KafkaCluster, topology: Topology, worker: WorkerProcess) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if not worker.alive():
            raise ProcessFailed(f"worker exited:\n{worker.tail()}")
        count = len(
            list(read_topic(kafka.bootstrap_servers, topology.name(names.COMMANDS), timeout_s=5))
        )
        if count > 0:
            return count
        time.sleep(0.2)
    raise ProcessFailed(f"no command in 300 s:\n{worker.tail()}")


@pytest.mark.timeout(900)
def test_sigkill_mid_stream_and_a_restart_lose_and_duplicate_no_command(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    topology, conf = _topology(kafka, "enginekill")
    dataset = generate(RESTART)
    half = len(dataset.events) // 2
    publish_reference_and_templates(dataset, topology, conf)
    time.sleep(0.05)
    publish_events(dataset.events[:half], topology, conf, seed=RESTART.seed)

    app_id = f"enginekill-{uuid.uuid4().hex[:6]}"
    worker = _engine_worker(kafka, topology, tmp_path, app_id)
    worker.start()
    try:
        _wait_some_commands(kafka, topology, worker)
        # the second half published while the worker runs, held to about 500 events/s, and
        # the worker killed a second in: events are still being published, so the kill lands
        # mid-stream however fast the worker routes
        publisher = PacedPublisher(dataset.events[half:], topology, conf, seed=RESTART.seed + 1)
        publisher.start()
        time.sleep(1.0)
        worker.kill()  # SIGKILL: its open transaction is left behind
        publisher.join()
    finally:
        worker.stop()
    before = len(_commands(kafka, topology))

    restarted = _engine_worker(kafka, topology, tmp_path, app_id)
    restarted.start()
    try:
        _wait_consumed(kafka, topology, restarted)
    finally:
        restarted.stop()

    expected = expected_outcome(dataset, source_topics=_source(topology))
    assert 0 < before < len(expected.commands), "the kill must land mid-stream"
    assert_commands_match(_commands(kafka, topology), expected.commands)
    _assert_audit_chain_verifies(kafka, topology)


@pytest.mark.timeout(900)
def test_two_engine_workers_share_the_partitions_and_the_audit_chains(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    topology, conf = _topology(kafka, "enginetwo")
    dataset = generate(SHARED)
    publish_reference_and_templates(dataset, topology, conf)
    time.sleep(0.05)
    publish_events(dataset.events, topology, conf, seed=SHARED.seed)

    app_id = f"enginetwo-{uuid.uuid4().hex[:6]}"
    first = _engine_worker(kafka, topology, tmp_path, app_id, slot=0)
    second = _engine_worker(kafka, topology, tmp_path, app_id, slot=1)
    first.start()
    try:
        _wait_some_commands(kafka, topology, first)
        second.start()
        # a fast first worker may finish the stream before the second has joined: the group
        # rebalances for it all the same, and it must be assigned before the workers stop
        _wait_logged(second, "assigned partitions", timeout_s=120)
        _wait_consumed(kafka, topology, first)
        assert second.alive(), second.tail()
    finally:
        second.stop()
        first.stop()
    for worker in (first, second):
        log = worker.log.read_text(errors="replace")
        assert "Traceback" not in log, worker.tail()
        assert "assigned partitions" in log, worker.tail()  # both took part

    expected = expected_outcome(dataset, source_topics=_source(topology))
    assert_commands_match(_commands(kafka, topology), expected.commands)
    _assert_audit_chain_verifies(kafka, topology)
