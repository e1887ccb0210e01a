"""The routing worker on the real broker: a seeded 10,000-event workload, compared record for
record with an independent reference computation, with a SIGKILL of the worker mid-stream."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer

from streams.audit.cli import audit as audit_cli
from streams.codec import codec_for
from streams.demo.processes import (
    WorkerProcess,
    committed,
    end_offsets,
    wait_chained,
    wait_consumed,
)
from streams.domain.ids import audit_id
from streams.domain.records import (
    AccountEvent,
    AuditKind,
    AuditRecord,
    CompositionCommand,
    DeadLetter,
)
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import PacedPublisher, assert_commands_match, event_id_of
from tests.e2e.reference import expected_outcome
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

UNCOMMITTED = {"isolation.level": "read_uncommitted"}
SCENARIO = Scenario(seed=20261124, customers=1_000, events=10_000, invalid_share=0.03)


@pytest.mark.timeout(900)
def test_seeded_stream_matches_reference_across_a_worker_crash(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"e2e{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    dataset = generate(SCENARIO)
    account_topic = topology.name(names.ACCOUNT_EVENTS)
    case_topic = topology.name(names.CASE_EVENTS)

    publish_reference(dataset, topology, conf)
    # templates are Exstream's: published as the template sync does, not by the simulator
    publish_synced_templates(dataset.templates, topology, conf)
    app_id = f"router-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(bootstrap, prefix, app_id, tmp_path)
    worker.start()
    try:
        # preferences first: the worker's table must hold them before events refer to them
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)

        half = len(dataset.events) // 2
        # the first half published while the worker runs, held to about 500 events/s: the
        # worker routes faster than that, so the kill below comes with events still to publish
        # (published all at once, the whole half could be routed before the kill)
        publisher = PacedPublisher(dataset.events[:half], topology, conf, seed=SCENARIO.seed)
        publisher.start()
        # crash while the first half is being processed: once 300 commands were written
        # (committed or still in an open transaction)
        deadline = time.monotonic() + 120
        commands_topic = topology.name(names.COMMANDS)
        while (
            sum(1 for _ in read_topic(bootstrap, commands_topic, client_config=UNCOMMITTED)) < 300
        ):
            assert time.monotonic() < deadline, worker.tail()
            assert worker.alive(), worker.tail()
            time.sleep(0.2)
        worker.kill()
        publisher.join()
        done, total = _consumed(bootstrap, app_id, [account_topic, case_topic])
        assert done < total, "the crash must come mid-stream, with events left to route"
        publish_events(dataset.events[half:], topology, conf, seed=SCENARIO.seed + 1)
        worker.start()
        wait_consumed(bootstrap, app_id, [account_topic, case_topic], worker=worker)
        # the audit writer chains what reached the intake topic (alerts of reference data)
        wait_chained(bootstrap, topology.name(names.AUDIT_INTAKE), topology.name(names.AUDIT))
    finally:
        worker.stop()

    expected = expected_outcome(
        dataset,
        source_topics=lambda e: account_topic if isinstance(e, AccountEvent) else case_topic,
    )

    # ---- commands: exactly the expected ones, each once (read_committed)
    audit_codec = codec_for(AuditRecord)
    codec = codec_for(CompositionCommand)
    produced = [codec.decode(r.value) for r in read_topic(bootstrap, commands_topic)]
    assert_commands_match(produced, expected.commands)
    assert len(produced) > 2_000, "the workload must exercise the join, not trivially pass"

    # ---- every invalid record is dead-lettered with its reason
    letters = codec_for(DeadLetter)
    dead = [
        letters.decode(r.value)
        for topic in (names.dlq(account_topic), names.dlq(case_topic))
        for r in read_topic(bootstrap, topic)
    ]
    assert all(d.reason and d.error_type for d in dead)
    semantic_ids = {i for i in (event_id_of(d, account_topic) for d in dead) if i is not None}
    assert semantic_ids == expected.dead_lettered_event_ids
    assert len(dead) == len(expected.dead_lettered_event_ids) + expected.byte_level_invalid
    assert len(dead) == len(dataset.invalid_events)

    # ---- audit: every decision once, chained, verifiable, tamper-evident
    audit_topic = topology.name(names.AUDIT)
    audit_ids = Counter(
        audit_codec.decode(r.value).audit_id for r in read_topic(bootstrap, audit_topic)
    )
    assert [i for i, n in audit_ids.items() if n > 1] == [], "audit records written twice"
    wanted = {audit_id(AuditKind.COMMAND_EMITTED, i) for i in expected.commands}
    wanted |= {
        audit_id(AuditKind.DEAD_LETTER, f"{d.source_topic}/{d.source_partition}/{d.source_offset}")
        for d in dead
    }
    wanted |= {
        audit_codec.decode(r.value).audit_id
        for r in read_topic(bootstrap, topology.name(names.AUDIT_INTAKE))
    }
    absent = wanted - set(audit_ids)
    assert not absent, f"{len(absent)} audit records missing; " + _per_partition(
        bootstrap, topology.name(names.AUDIT_INTAKE), audit_topic, app_id
    )
    runner = CliRunner()
    ok = runner.invoke(audit_cli, ["verify", "--bootstrap-servers", bootstrap, "--prefix", prefix])
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output

    tampered = _tampered_copy(bootstrap, audit_topic, kafka)
    bad = runner.invoke(
        audit_cli, ["verify", "--bootstrap-servers", bootstrap, "--topic", tampered]
    )
    assert bad.exit_code == 1
    assert "content altered" in bad.output


def _per_partition(bootstrap: str, source: str, target: str, group: str) -> str:
    """Per partition: records in ``source``, in ``target``, and the group's committed offset."""
    src = Counter(r.partition for r in read_topic(bootstrap, source))
    dst = Counter(r.partition for r in read_topic(bootstrap, target))
    ends = end_offsets(bootstrap, [source])
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        done = committed(probe, list(ends))
    finally:
        probe.close()
    return "; ".join(
        f"p{tp.partition}: {src[tp.partition]} in, {dst[tp.partition]} out, "
        f"committed {done.get(tp)} of end {end}"
        for tp, end in sorted(ends.items(), key=lambda kv: kv[0].partition)
    )


def _count(bootstrap: str, topic: str, client_config: dict[str, str]) -> int:
    return sum(1 for _ in read_topic(bootstrap, topic, client_config=client_config))


def _consumed(bootstrap: str, group: str, topics: list[str]) -> tuple[int, int]:
    """(records the group committed, records in ``topics``), summed over partitions."""
    ends = end_offsets(bootstrap, topics)
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        done = committed(probe, list(ends))
    finally:
        probe.close()
    return sum(max(done.get(tp, 0), 0) for tp in ends), sum(ends.values())


def _tampered_copy(bootstrap: str, topic: str, kafka: KafkaCluster) -> str:
    """A copy of the audit topic (same partitions) with one summary rewritten."""
    from confluent_kafka.admin import NewTopic

    from tests.conftest import wait_for_topics

    copy = f"{topic}.tampered"
    records = list(read_topic(bootstrap, topic))
    partitions = max(r.partition for r in records) + 1
    admin = kafka.admin()
    admin.create_topics([NewTopic(copy, partitions, 1)])[copy].result(30)
    wait_for_topics(admin, [copy])
    codec = codec_for(AuditRecord)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    victim = len(records) // 2
    for i, raw in enumerate(records):
        value = raw.value
        if i == victim:
            rec = codec.decode(value)
            value = codec.encode(dataclasses.replace(rec, summary=rec.summary + " (edited)"))
        producer.produce(copy, key=raw.key, value=value, partition=raw.partition)
    assert producer.flush(30) == 0
    return copy
