"""Attacks on the audit trail, each made on the real broker as an attacker with ordinary client
access would make it (the PLAINTEXT test broker has no ACLs, so any client may write, delete and
recreate topics), each caught by ``air-exstream audit verify`` with the writer's public key and
named by partition and offset."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streams.audit.chain import ChainHead
from streams.audit.checkpoints import encode, key_id_of, sign
from streams.audit.cli import audit as audit_cli
from streams.audit.keys import generate, load_public_keys
from streams.audit.reader import audit_records
from streams.audit.trail import TrailReport, verify_trail
from streams.demo.processes import WorkerProcess, wait_consumed
from streams.domain.records import AuditRecord
from streams.simulator.generator import Scenario
from streams.simulator.generator import generate as generate_dataset
from streams.simulator.publish import publish_events, publish_reference
from tests.audit.conftest import CLOCK_SKEW_S, Trail
from tests.audit.forgery import attacker_append, forged_delivery, rechain, status_record
from tests.conftest import KafkaCluster
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

TrailFactory = Callable[..., Trail]


def wait_past_skew(policy_ms: int = 300) -> None:
    """Let the writer's clock pass the attacker's append by more than the tolerated skew."""
    time.sleep(CLOCK_SKEW_S + policy_ms / 1000 + 0.2)


def test_a_forged_delivery_appended_after_the_head_fails_verify(
    trail_factory: TrailFactory,
) -> None:
    """The reported scenario: 20 chained records, then a forged STATUS_CHANGED "DELIVERED" for
    an existing communication, chained after the head with the chain's public algorithm."""
    trail = trail_factory(every_records=20, idle_ms=300, heartbeat_ms=300)
    trail.writer.write([status_record(i) for i in range(20)])
    assert [c.seq for c in trail.writer.checkpoints] == [20]
    forged = forged_delivery(trail.writer.written[-1], communication="com-3")
    attacker_append(trail.kafka.client_config(), trail.audit_topic, 0, [forged])

    chain_only = trail.verify(signed=False)
    assert chain_only.exit_code == 0, chain_only.output  # what the issue found: it passes
    assert "21 records" in chain_only.output
    assert "a record appended with the chain's public algorithm would pass" in chain_only.output

    early = trail.verify()
    assert early.exit_code == 0, early.output  # the writer has not signed again yet
    assert "partition 0: 21 records read: 20 verified up to seq 20" in early.output
    assert "1 unconfirmed (offsets 20)" in early.output

    wait_past_skew()
    trail.writer.heartbeat()  # the writer's timer: its head is still seq 20
    caught = trail.verify()
    assert caught.exit_code == 1, caught.output
    assert (
        "VIOLATION audit.communications.v1 partition 0 offset 20 (seq 21): appended at"
        in caught.output.replace(trail.topology.prefix, "")
    )
    assert "not written by the audit writer" in caught.output
    assert "20 verified, 0 unconfirmed, 1 violation(s)" in caught.output


def test_a_rewritten_tail_with_a_recomputed_chain_is_named(trail_factory: TrailFactory) -> None:
    trail = trail_factory(every_records=10)
    trail.writer.write([status_record(i) for i in range(30)])
    original = [r for _, r in audit_records(trail.kafka.bootstrap_servers, trail.audit_topic)]
    assert [c.seq for c in trail.writer.checkpoints] == [10, 20, 30]

    # keep seqs 1-22, turn communication com-24 into a delivery, recompute the chain after it
    kept = [r for r in original if r is not None and r.seq <= 22]
    edited = [
        dataclasses.replace(r, details={**r.details, "status": "DELIVERED"})
        if r.communication_id == "com-24"
        else r
        for r in original[22:]
        if r is not None
    ]
    tail = rechain(edited, ChainHead(kept[-1].seq, kept[-1].hash))
    trail.recreate("audit.communications.v1")
    attacker_append(trail.kafka.client_config(), trail.audit_topic, 0, [*kept, *tail])

    chain_only = trail.verify(signed=False)
    assert chain_only.exit_code == 0, chain_only.output  # the recomputed chain is consistent
    result = trail.verify()
    assert result.exit_code == 1, result.output
    assert "20 verified up to seq 20" in result.output
    assert re.search(
        r"partition 0 offset 29 \(seq 30\): does not fit the signed head", result.output
    )


def test_a_partition_recreated_from_scratch_is_named(
    trail_factory: TrailFactory, tmp_path: Path
) -> None:
    trail = trail_factory(every_records=5)
    trail.writer.write([status_record(i) for i in range(15)])
    state = tmp_path / "trusted.json"
    saved = trail.verify("--save-checkpoint", str(state))
    assert saved.exit_code == 0, saved.output

    trail.recreate("audit.communications.v1")
    fabricated = rechain([status_record(i, status="DELIVERED") for i in range(6)])
    attacker_append(trail.kafka.client_config(), trail.audit_topic, 0, fabricated)

    full = trail.verify()
    assert full.exit_code == 1, full.output
    assert re.search(
        r"partition 0 offset 6 \(seq 15\): the signed head seq 15 .* is not in the partition, "
        r"which ends at seq 6",
        full.output,
    )
    incremental = trail.verify("--from-checkpoint", str(state))
    assert incremental.exit_code == 1, incremental.output
    assert "partition 0 offset 14 (seq 15): the record of the trusted checkpoint is gone" in (
        incremental.output
    )

    # wiping the checkpoints too leaves nothing to compare with, except the trusted copy
    trail.recreate("audit.checkpoints.v1")
    wiped = trail.verify()
    assert wiped.exit_code == 0, wiped.output
    assert "0 verified, 6 unconfirmed" in wiped.output
    anchored = trail.verify("--from-checkpoint", str(state))
    assert anchored.exit_code == 1, anchored.output
    assert "the record of the trusted checkpoint is gone" in anchored.output


def test_forged_checkpoints_are_named(trail_factory: TrailFactory) -> None:
    trail = trail_factory(every_records=10)
    trail.writer.write([status_record(i) for i in range(10)])
    genuine = trail.writer.checkpoints[-1]
    forged = forged_delivery(trail.writer.written[-1])
    attacker_append(trail.kafka.client_config(), trail.audit_topic, 0, [forged])

    mallory = Ed25519PrivateKey.generate()
    own_key = sign(mallory, key_id_of(mallory.public_key()), 0, ChainHead(11, forged.hash), 1)
    borrowed = dataclasses.replace(genuine, seq=11, hash=forged.hash)  # the writer's signature
    producer = Producer(trail.kafka.client_config())
    for value in (encode(own_key), encode(borrowed), b"not a checkpoint"):
        producer.produce(trail.checkpoints_topic, key=b"0", value=value)
    assert producer.flush(30) == 0

    result = trail.verify()
    assert result.exit_code == 1, result.output
    output = result.output.replace(trail.topology.prefix, "")
    for offset, problem in (
        (1, "not an accepted public key"),
        (2, "its signature does not verify"),
        (3, "not a checkpoint: not JSON"),
    ):
        assert re.search(
            rf"VIOLATION audit.checkpoints.v1 partition 0 offset {offset}: .*{problem}", output
        ), (offset, output)
    # the record they vouch for stays outside what is verified
    assert "partition 0: 11 records read: 10 verified up to seq 10" in output


@pytest.mark.timeout(600)
def test_a_forged_append_between_checkpoints_while_the_worker_writes(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    """The real routing worker chains and signs; an attacker appends a forged delivery after a
    partition's committed head while the worker keeps writing after it."""
    topology = load_topology("local", prefix=f"aw{uuid.uuid4().hex[:8]}.")
    conf = kafka.client_config()
    bootstrap = kafka.bootstrap_servers
    apply_topology(conf, topology)
    keys = generate(tmp_path / "audit.key", tmp_path / "audit.pub")
    dataset = generate_dataset(
        Scenario(seed=1616, customers=24, events=240, invalid_share=0.0, repeat_share=0.0)
    )
    publish_reference(dataset, topology, conf)
    app_id = f"router-audit-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(
        bootstrap,
        topology.prefix,
        app_id,
        tmp_path,
        env={
            "AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(keys.private_file),
            "AIR_EXSTREAM_AUDIT_CHECKPOINT_EVERY_RECORDS": "10",
            "AIR_EXSTREAM_AUDIT_CHECKPOINT_IDLE_MS": "4000",
        },
    )
    events = [topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)]
    audit_topic = topology.name(names.AUDIT)
    worker.start()
    try:
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)
        publish_events(dataset.events[:120], topology, conf, seed=1)
        wait_consumed(bootstrap, app_id, events, worker=worker)

        # the attacker: the committed head of the fullest partition, and a forged delivery
        heads: dict[int, AuditRecord] = {}
        for raw, record in audit_records(bootstrap, audit_topic):
            assert record is not None
            heads[raw.partition] = record
        counts = Counter(r.partition for r, _ in audit_records(bootstrap, audit_topic))
        partition = counts.most_common(1)[0][0]
        head = heads[partition]
        (offset,) = attacker_append(
            conf, audit_topic, partition, [forged_delivery(head, head.communication_id or "x")]
        )

        publish_events(dataset.events[120:], topology, conf, seed=2)
        wait_consumed(bootstrap, app_id, events, worker=worker)
        signed_to_the_end = _wait_all_signed(bootstrap, topology, keys.public_file, worker)
    finally:
        worker.stop()

    chain_only = _verify(bootstrap, topology, None)
    assert chain_only.exit_code == 1  # the chain alone sees a break ...
    assert f"offset {offset + 1} (seq {head.seq + 1}): sequence gap" in chain_only.output
    # ... and blames the worker's own next record; the signed heads name the forged one
    result = _verify(bootstrap, topology, keys.public_file)
    assert result.exit_code == 1, result.output
    violations = [line for line in result.output.splitlines() if "  VIOLATION " in line]
    assert violations == [
        f"  VIOLATION {audit_topic} partition {partition} offset {offset} (seq {head.seq + 1}): "
        f"not part of the chain the audit writer signed (forged or inserted); the writer's "
        f"record at seq {head.seq + 1} is at offset {offset + 1}"
    ]
    assert signed_to_the_end.unconfirmed == 0
    assert signed_to_the_end.verified == signed_to_the_end.records - 1


def _verify(bootstrap: str, topology: Topology, public_key: Path | None) -> Result:
    args = ["verify", "--bootstrap-servers", bootstrap, "--prefix", topology.prefix]
    if public_key is not None:
        args += ["--public-key", str(public_key)]
    return CliRunner().invoke(audit_cli, args)


def _wait_all_signed(
    bootstrap: str, topology: Topology, public_key: Path, worker: WorkerProcess
) -> TrailReport:
    """Until the worker signed every partition's head (its idle signing), or 90 s."""
    keys = load_public_keys([public_key])
    deadline = time.monotonic() + 90
    while True:
        assert worker.alive(), worker.tail()
        report = verify_trail(
            bootstrap,
            topology.name(names.AUDIT),
            topology.name(names.AUDIT_CHECKPOINTS),
            keys,
        )
        if report.unconfirmed == 0 or time.monotonic() > deadline:
            return report
        time.sleep(1.0)
