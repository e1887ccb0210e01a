"""The transactional-loop baseline decides as the fast path and writes the worker's outputs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from benchmarks import decision, routing, txn_loop
from benchmarks.txn_loop import Decider, Out
from streams.codec import Codecs
from streams.demo.processes import committed
from streams.domain.reference_index import ReferenceIndex
from streams.emulator.synced import publish_synced_templates
from streams.routing.partitioning import murmur2_partition
from streams.simulator.generator import Dataset, template_key
from streams.simulator.publish import publish_events, publish_reference
from tests.conftest import KafkaCluster
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

EVENTS = 400


def _decider(data: Dataset) -> Decider:
    topology = load_topology("local", prefix="")
    rules = list({r.rule_id: r for r in data.rules}.values())
    templates = list({template_key(t): t for t in data.templates}.values())
    return Decider(
        topology=topology,
        output_prefix="out.",
        codecs=Codecs(topology=topology),
        index=ReferenceIndex.from_records(rules, templates),
        preferences={p.customer_id.encode(): p for p in data.preferences},
    )


def _in_key_partition(records: list[decision.Input]) -> list[decision.Input]:
    """The records on the murmur2 partition of their key, as the simulator publishes them."""
    return [
        dataclasses.replace(r, partition=murmur2_partition(r.key, txn_loop.PARTITIONS))
        for r in records
    ]


@pytest.mark.unit
def test_the_loop_decides_as_the_fast_path_and_writes_the_workers_outputs() -> None:
    data = decision.dataset(EVENTS)
    records = _in_key_partition(decision.inputs(data))
    fast = decision.FastSide(data).run(records, decision.Timer(enabled=False)).counts
    decider = _decider(data)
    written: list[Out] = []
    for i, record in enumerate(records):
        decider.decide(record, 1_000 + i, written.append)
    decider.flush(written.append)

    by_topic: dict[str, int] = {}
    for out in written:
        by_topic[out.topic] = by_topic.get(out.topic, 0) + 1
    counts = decider.counts
    assert counts.events == EVENTS
    assert counts.commands == fast["commands"] > 100
    assert counts.alerts == fast["alerts"]
    assert counts.dead_letters == fast["dead_letters"] > 0
    assert by_topic["out.commands"] == counts.commands
    assert by_topic["out.dead-letters"] == counts.dead_letters
    # the worker audits each dead letter too, on top of the decision's own audit records
    assert counts.audit == fast["audit"] + fast["dead_letters"] == by_topic["out.audit"]
    # one tracking record per command (ids are unique here), one chain head per partition used
    assert by_topic["out.communications-changelog"] == counts.commands
    heads = [o for o in written if o.topic == "out.audit-chain-heads-changelog"]
    assert sorted(o.partition for o in heads) == sorted({o.partition for o in heads})
    assert all(o.partition == int(o.key or b"-1") for o in heads)
    audit = [o for o in written if o.topic == "out.audit"]
    assert {o.partition for o in audit} <= set(range(txn_loop.PARTITIONS))


@pytest.mark.unit
def test_changelog_records_are_the_last_value_per_key_of_a_transaction() -> None:
    data = decision.dataset(50)
    decider = _decider(data)
    decider.dirty[("t", b"k")] = (1, b"first")
    decider.dirty[("t", b"k")] = (1, b"second")
    decider.dirty[("t", b"j")] = (2, b"other")
    written: list[Out] = []
    decider.flush(written.append)
    assert written == [Out("t", b"k", b"second", 1), Out("t", b"j", b"other", 2)]
    decider.flush(written.append)
    assert len(written) == 2  # nothing left for the next transaction
    assert decider.counts.changelog == 2


@pytest.mark.unit
def test_latest_by_key_keeps_the_last_value_and_drops_deleted_keys() -> None:
    records = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None), (None, b"x")]
    assert txn_loop.latest_by_key(records) == {b"a": b"2"}


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_the_loop_routes_a_backlog_exactly_once_on_a_real_broker(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    conf = {"bootstrap.servers": bootstrap}
    prefix = f"loop{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology(conf, topology)
    data = routing.dataset(EVENTS)
    publish_reference(data, topology, conf)
    publish_synced_templates(data.templates, topology, conf)
    publish_events(data.events, topology, conf, seed=routing.SEED)
    group = f"loop-{uuid.uuid4().hex[:6]}"
    out = f"{prefix}out."
    log = tmp_path / "loop.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.txn_loop", "--bootstrap", bootstrap,
             "--prefix", prefix, "--group", group, "--output-prefix", out],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    probe = Consumer({**conf, "group.id": group})
    inputs = routing.Fixture(bootstrap, prefix, group, topology).inputs()
    try:
        deadline = time.monotonic() + 180
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            done = sum(max(0, o) for o in committed(probe, inputs).values())
            if done >= EVENTS:
                break
            time.sleep(0.2)
        assert done == EVENTS, f"committed {done} of {EVENTS}:\n{log.read_text()[-2000:]}"
    finally:
        probe.close()
        proc.terminate()
        proc.wait(30)
    commands = routing.count_records(bootstrap, f"{out}commands")
    expected = routing.expected_commands(EVENTS)
    if commands != expected:  # read again, and the loop's log: which side fell short
        again = routing.count_records(bootstrap, f"{out}commands")
        pytest.fail(
            f"{commands} commands read (then {again}), {expected} expected; loop log:\n"
            f"{log.read_text()[-2000:]}"
        )
    assert expected > 100
    audit = routing.count_records(bootstrap, f"{out}audit")
    assert audit > commands
    assert routing.count_records(bootstrap, topology.name(names.COMMANDS)) == 0  # not the worker's
