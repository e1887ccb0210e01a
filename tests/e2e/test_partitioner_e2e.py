"""A platform team publishing with confluent-kafka's default partitioner (CRC32-based, not the
Java client's murmur2): most of its records land in another partition than their key's, where
they would be joined with another partition's preferences. Two workers share the partitions;
every misplaced event and preference is dead-lettered as WRONG_PARTITION with the fix in the
reason, and the records that happen to land right are routed exactly as the reference says.

The workers form their group before anything is published: a worker joining mid-stream is
another matter (issue 14's scale-out goal; seen here once as a few dead letters written twice
around the rebalance)."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from streams.codec import codec_for
from streams.demo.processes import WorkerProcess, wait_consumed
from streams.domain.records import AccountEvent, CompositionCommand, DeadLetter, Preference
from streams.routing.partitioning import murmur2_partition
from streams.simulator.generator import Dataset, Scenario, SimEvent, generate
from streams.simulator.publish import event_bytes
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import event_id_of, publish_reference_and_templates
from tests.e2e.reference import expected_outcome
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(seed=20261205, customers=300, events=1_500, invalid_share=0.0)


def _publish_with_default_partitioner(
    conf: dict[str, str], records: list[tuple[str, bytes, bytes, Any]]
) -> list[int]:
    """Produce (topic, key, value, headers) with librdkafka's default partitioner; the
    partition each record landed in."""
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
    landed: list[int] = [-1] * len(records)
    errors: list[str] = []
    for i, (topic, key, value, headers) in enumerate(records):

        def delivered(err: Any, msg: Any, i: int = i) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                landed[i] = msg.partition()

        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert errors == []
    return landed


@pytest.mark.timeout(900)
def test_records_in_the_wrong_partition_are_dead_lettered_not_mis_joined(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    topology = load_topology("local", prefix=f"crc{uuid.uuid4().hex[:6]}.")
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    t = topology.name
    dataset = generate(SCENARIO)
    # rules and templates (keyed by rule / template, not customer-partitioned) as usual
    publish_reference_and_templates(dataclasses.replace(dataset, preferences=[]), topology, conf)
    app_id = f"crc-{uuid.uuid4().hex[:6]}"
    workers = [
        WorkerProcess(bootstrap, topology.prefix, app_id, tmp_path / name) for name in ("a", "b")
    ]
    for w in workers:
        w.workdir.mkdir(parents=True, exist_ok=True)
        w.start()
    try:
        _wait_stable_group(bootstrap, app_id, workers)
        right_prefs, right_events = _publish_all(dataset, topology, conf)
        wait_consumed(
            bootstrap,
            app_id,
            [t(names.PREFERENCES), t(names.ACCOUNT_EVENTS), t(names.CASE_EVENTS)],
            worker=workers[0],
            timeout_s=600,
        )
        assert all(w.alive() for w in workers), workers[1].tail()
    finally:
        for w in workers:
            w.stop()
    wrong_event_ids = {s.record.event_id for s in dataset.events} - {
        s.record.event_id for s in right_events
    }
    # the default partitioner disagrees with murmur2 for most keys, and agrees for some
    assert len(wrong_event_ids) > len(dataset.events) // 2
    assert len(right_events) > 50
    # ---- every misplaced record is dead-lettered as WRONG_PARTITION, with the fix
    letters = codec_for(DeadLetter)
    dead = [
        letters.decode(r.value)
        for topic in (t(names.PREFERENCES), t(names.ACCOUNT_EVENTS), t(names.CASE_EVENTS))
        for r in read_topic(bootstrap, names.dlq(topic))
    ]
    coordinates = Counter((d.source_topic, d.source_partition, d.source_offset) for d in dead)
    assert [c for c, n in coordinates.items() if n > 1] == [], "records dead-lettered twice"
    assert Counter(d.error_type for d in dead) == {
        "WRONG_PARTITION": (len(dataset.preferences) - len(right_prefs)) + len(wrong_event_ids)
    }
    assert all("partitioner=murmur2_random" in d.reason for d in dead)
    dead_events = {
        event_id_of(d, t(names.ACCOUNT_EVENTS))
        for d in dead
        if d.source_topic != t(names.PREFERENCES)
    }
    assert dead_events == wrong_event_ids

    # ---- the rest is routed as if only the well-placed records had been published
    expected = expected_outcome(
        dataclasses.replace(dataset, preferences=right_prefs, events=right_events),
        source_topics=lambda e: (
            t(names.ACCOUNT_EVENTS) if isinstance(e, AccountEvent) else t(names.CASE_EVENTS)
        ),
    )
    codec = codec_for(CompositionCommand)
    produced = {
        c.communication_id: c
        for c in (codec.decode(r.value) for r in read_topic(bootstrap, t(names.COMMANDS)))
    }
    assert produced == expected.commands
    assert len(produced) > 10


def _publish_all(
    dataset: Dataset, topology: Topology, conf: dict[str, str]
) -> tuple[list[Preference], list[SimEvent]]:
    """Preferences, then events, with the default partitioner; those that landed right."""
    t = topology.name
    pcodec = codec_for(Preference)
    prefs = [
        (t(names.PREFERENCES), p.customer_id.encode(), pcodec.encode(p), None)
        for p in (dataset.preferences)
    ]
    landed_prefs = _publish_with_default_partitioner(conf, prefs)
    rng = random.Random(SCENARIO.seed)
    events = []
    for sim in dataset.events:
        value, headers = event_bytes(sim, rng)
        topic = t(
            names.ACCOUNT_EVENTS if isinstance(sim.record, AccountEvent) else names.CASE_EVENTS
        )
        events.append((topic, sim.record.customer_id.encode(), value, headers))
    landed_events = _publish_with_default_partitioner(conf, events)

    partitions = topology.topic(names.PREFERENCES).partitions
    right_prefs = [
        p
        for p, landed in zip(dataset.preferences, landed_prefs, strict=True)
        if landed == murmur2_partition(p.customer_id.encode(), partitions)
    ]
    right_events = [
        sim
        for sim, landed in zip(dataset.events, landed_events, strict=True)
        if landed == murmur2_partition(sim.record.customer_id.encode(), partitions)
    ]
    return right_prefs, right_events


def _wait_stable_group(
    bootstrap: str, group: str, workers: list[WorkerProcess], timeout_s: float = 120
) -> None:
    """Until the group is stable with every worker in it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    seen = "unknown"
    while time.monotonic() < deadline:
        assert all(w.alive() for w in workers), "\n".join(w.tail() for w in workers)
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
        except KafkaException:
            time.sleep(0.5)
            continue
        seen = f"{desc.state} with {len(desc.members)} member(s)"
        if len(desc.members) == len(workers) and str(desc.state).endswith("STABLE"):
            return
        time.sleep(0.5)
    raise AssertionError(f"group {group} not stable with {len(workers)} members: {seen}")
