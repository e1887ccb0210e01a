"""Portal document requests through the routing worker on the real broker (flow 5, the
asynchronous path): seeded requests (valid, invalid, retried, JSON) plus hand-made hostile
records, compared record for record with the independent reference; then Exstream's delivery
events for some of the commands come back as statuses and ON_DEMAND document metadata."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from streams.audit.cli import audit as audit_cli
from streams.codec import DecodeError, codec_for
from streams.demo.processes import WorkerProcess, wait_chained, wait_consumed
from streams.domain.document_requests import REQUEST_RULE_ID
from streams.domain.ids import audit_id
from streams.domain.records import (
    AuditKind,
    AuditRecord,
    CommunicationStatus,
    CompositionCommand,
    DeadLetter,
    DeliveryEvent,
    DocumentMetadata,
    DocumentRequest,
)
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_reference, publish_requests
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.reference import expected_outcome
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(
    seed=20261201,
    customers=80,
    events=0,
    document_requests=600,
    invalid_share=0.08,
    json_share=0.2,
    request_retry_share=0.06,
)


@pytest.mark.timeout(600)
def test_document_requests_become_commands_dead_letters_and_tracked_documents(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"req{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    t = topology.name
    dataset = generate(SCENARIO)
    publish_reference(dataset, topology, conf)
    publish_synced_templates(dataset.templates, topology, conf)
    request_codec = codec_for(DocumentRequest)
    valid = [r.record for r in dataset.document_requests if r.invalid is None and not r.retry]

    app_id = f"router-req-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(bootstrap, prefix, app_id, tmp_path)
    worker.start()
    try:
        wait_consumed(bootstrap, app_id, [t(names.PREFERENCES)], worker=worker)
        report = publish_requests(dataset.document_requests, topology, conf, seed=SCENARIO.seed)
        # hand-made: keyed by another customer, no key at all (routed by its customer id), empty
        producer = Producer({**conf, "acks": "all", "partitioner": "murmur2_random"})
        moved = dataclasses.replace(valid[0], request_id="req-moved")
        unkeyed = dataclasses.replace(valid[1], request_id="req-unkeyed")
        topic = t(names.DOCUMENT_REQUESTS)
        producer.produce(topic, key=b"cust-999999", value=request_codec.encode(moved))
        producer.produce(topic, key=None, value=request_codec.encode(unkeyed))
        producer.produce(topic, key=valid[2].customer_id.encode(), value=b"")
        assert producer.flush(30) == 0
        wait_consumed(bootstrap, app_id, [topic], worker=worker)

        # Exstream reports three of the requested documents: composed, then posted to the portal
        commands = [
            codec_for(CompositionCommand).decode(r.value)
            for r in read_topic(bootstrap, t(names.COMMANDS))
        ]
        reported = sorted(commands, key=lambda c: c.communication_id)[:3]
        event_codec = codec_for(DeliveryEvent)
        for i, command in enumerate(reported):
            for step, status in enumerate(("COMPOSED", "WEB_POSTED")):
                event = DeliveryEvent(
                    event_id=f"dev-req-{i}-{status}",
                    communication_id=command.communication_id,
                    customer_id=command.customer_id,
                    document_id=f"doc-req-{i}",
                    channel="WEB",
                    status=status,
                    occurred_at=command.created_at + 1_000 * (step + 1),
                )
                producer.produce(
                    t(names.DELIVERY_EVENTS),
                    key=command.customer_id.encode(),
                    value=event_codec.encode(event),
                )
        assert producer.flush(30) == 0
        wait_consumed(bootstrap, app_id, [t(names.DELIVERY_EVENTS)], worker=worker)
        wait_chained(bootstrap, t(names.AUDIT_INTAKE), t(names.AUDIT))
    finally:
        worker.stop()

    # ---- commands: exactly the reference's, each once (retries emit nothing more)
    expected = expected_outcome(
        dataclasses.replace(
            dataset,
            document_requests=[
                *dataset.document_requests,
                dataclasses.replace(dataset.document_requests[0], record=unkeyed, invalid=None),
            ],
        ),
        source_topics=lambda e: "unused: no events",
        request_topic=topic,
    )
    ids = Counter(c.communication_id for c in commands)
    assert [i for i, n in ids.items() if n > 1] == [], "a request's command was emitted twice"
    by_id = {c.communication_id: c for c in commands}
    assert sorted(set(expected.commands) - set(by_id)) == []
    assert sorted(set(by_id) - set(expected.commands)) == []
    assert [i for i, c in by_id.items() if c != expected.commands[i]] == []
    assert all(c.rule_id == REQUEST_RULE_ID and c.channel == "WEB" for c in commands)
    assert len(commands) > 400
    assert expected.request_retries > 10
    assert report.json > 50

    # ---- dead letters: every invalid request, the moved one and the empty one, with reasons
    letters = [
        codec_for(DeadLetter).decode(r.value) for r in read_topic(bootstrap, names.dlq(topic))
    ]
    assert all(d.reason and d.source_topic == topic for d in letters)
    by_request: dict[str, DeadLetter] = {}
    undecodable = []
    for letter in letters:
        headers = [(k, v.encode()) for k, v in letter.original_headers.items()]
        try:
            request = request_codec.decode(letter.original_value, headers)
        except DecodeError:
            undecodable.append(letter)
            continue
        assert request.request_id not in by_request, "a request dead-lettered twice"
        by_request[request.request_id] = letter
    semantic = {i: d.error_type for i, d in by_request.items() if i != "req-moved"}
    assert semantic == expected.request_rejection_codes
    assert by_request["req-moved"].error_type == "KEY_MISMATCH"
    assert len(undecodable) == expected.byte_level_invalid_requests + 1
    # random bytes beginning with 00 read as a Confluent-framed record: no registry here
    byte_level = {"EMPTY", "BAD_MAGIC", "DECODE_ERROR", "NO_SCHEMA_REGISTRY"}
    assert {d.error_type for d in undecodable} <= byte_level
    assert "EMPTY" in {d.error_type for d in undecodable}
    assert len(letters) == report.invalid + 2
    assert set(expected.request_rejection_codes.values()) == {
        "UNKNOWN_DOCUMENT_TYPE",
        "MISSING_FIELD",
        "INVALID_FIELD",
    }

    # ---- tracking: statuses and ON_DEMAND metadata for the reported documents
    statuses = [
        codec_for(CommunicationStatus).decode(r.value)
        for r in read_topic(bootstrap, t(names.COMMUNICATION_STATUS))
    ]
    metadata = [
        codec_for(DocumentMetadata).decode(r.value)
        for r in read_topic(bootstrap, t(names.DOCUMENT_METADATA))
    ]
    for i, command in enumerate(reported):
        mine = [s.status for s in statuses if s.communication_id == command.communication_id]
        assert mine == ["COMPOSED", "WEB_POSTED"], (command.communication_id, mine)
        docs = [m for m in metadata if m.communication_id == command.communication_id]
        assert docs, command.communication_id
        assert {m.document_id for m in docs} == {f"doc-req-{i}"}
        assert {m.origin for m in docs} == {"ON_DEMAND"}
        assert {m.communication_type for m in docs} == {command.communication_type}
        assert docs[-1].delivered_at is not None

    # ---- audit: a COMMAND_EMITTED per command, a DEAD_LETTER per letter, a RETRY per retry
    audit = [codec_for(AuditRecord).decode(r.value) for r in read_topic(bootstrap, t(names.AUDIT))]
    audit_ids = Counter(a.audit_id for a in audit)
    assert [i for i, n in audit_ids.items() if n > 1] == []
    wanted = {audit_id(AuditKind.COMMAND_EMITTED, i) for i in expected.commands}
    wanted |= {
        audit_id(AuditKind.DEAD_LETTER, f"{d.source_topic}/{d.source_partition}/{d.source_offset}")
        for d in letters
    }
    assert wanted <= set(audit_ids)
    retries = [a for a in audit if a.details.get("cause") == "RETRY"]
    assert len(retries) == expected.request_retries
    assert {a.communication_id for a in retries} <= set(expected.commands)
    ok = CliRunner().invoke(
        audit_cli, ["verify", "--bootstrap-servers", bootstrap, "--prefix", prefix]
    )
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output
