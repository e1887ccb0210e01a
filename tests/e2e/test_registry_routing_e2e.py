"""A platform team publishing with confluent-kafka's own ``AvroSerializer`` (TopicNameStrategy,
schemas registered in the session's real schema registry) feeds the routing worker like any
other: its events become exactly the reference's commands, and the worker, configured with
``KAFKA_SCHEMA_REGISTRY_URL``, writes every output topic in the Confluent wire format."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codec import Codecs
from streams.codec.schemas import schemas_dir
from streams.demo.processes import WorkerProcess, wait_chained, wait_consumed
from streams.domain.records import AccountEvent, AuditRecord, CompositionCommand, DeadLetter
from streams.emulator.synced import publish_synced_templates
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster, SchemaRegistry
from tests.e2e.reference import expected_outcome
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(seed=20261203, customers=60, events=400, invalid_share=0.0)


@pytest.mark.timeout(600)
def test_events_serialised_by_confluents_avro_serializer_route_like_any_other(
    kafka: KafkaCluster, schema_registry: SchemaRegistry, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"reg{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    generated = generate(SCENARIO)
    # only what a serializer can write: decodable records (semantic rejections included)
    events = [e for e in generated.events if e.invalid not in ("garbage", "truncated")]
    dataset = dataclasses.replace(generated, events=events)
    account_topic = topology.name(names.ACCOUNT_EVENTS)
    case_topic = topology.name(names.CASE_EVENTS)

    # reference data and templates as the project's own publishers write them with a registry
    codecs = Codecs(registry_url=schema_registry.url, topology=topology)
    publish_reference(dataset, topology, conf, codecs=codecs)
    publish_synced_templates(dataset.templates, topology, conf, codecs=codecs)

    app_id = f"router-reg-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(
        bootstrap,
        prefix,
        app_id,
        tmp_path,
        env={"KAFKA_SCHEMA_REGISTRY_URL": schema_registry.url},
    )
    worker.start()
    try:
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)
        # the platform team's producer: confluent-kafka's serializer, nothing of this project
        with SchemaRegistryClient({"url": schema_registry.url}) as client:
            serializers = {
                account_topic: AvroSerializer(
                    client, (schemas_dir() / "account_event.avsc").read_text()
                ),
                case_topic: AvroSerializer(client, (schemas_dir() / "case_event.avsc").read_text()),
            }
            producer = Producer({**conf, "acks": "all", "partitioner": "murmur2_random"})
            for sim in events:
                topic = account_topic if isinstance(sim.record, AccountEvent) else case_topic
                context = SerializationContext(topic, MessageField.VALUE)
                value = serializers[topic](dataclasses.asdict(sim.record), context)
                producer.produce(topic, key=sim.record.customer_id.encode(), value=value)
            assert producer.flush(30) == 0
            subjects = set(client.get_subjects())
        assert {f"{account_topic}-value", f"{case_topic}-value"} <= subjects
        wait_consumed(bootstrap, app_id, [account_topic, case_topic], worker=worker)
        wait_chained(
            bootstrap,
            topology.name(names.AUDIT_INTAKE),
            topology.name(names.AUDIT),
            codecs=codecs,
        )
    finally:
        worker.stop()

    expected = expected_outcome(
        dataset,
        source_topics=lambda e: account_topic if isinstance(e, AccountEvent) else case_topic,
    )
    commands_topic = topology.name(names.COMMANDS)
    raw_commands = list(read_topic(bootstrap, commands_topic))
    assert raw_commands, "the workload must produce commands"
    assert {r.value[:1] for r in raw_commands if r.value} == {b"\x00"}, "Confluent framing only"
    reader = Codecs(registry_url=schema_registry.url)
    command_codec = reader.for_topic(commands_topic, CompositionCommand)
    produced = {
        c.communication_id: c for c in (command_codec.decode(r.value) for r in raw_commands)
    }
    assert len(produced) == len(raw_commands), "a command written twice"
    assert produced == expected.commands

    letters: list[DeadLetter] = []
    for topic in (names.dlq(account_topic), names.dlq(case_topic)):
        codec = reader.for_topic(topic, DeadLetter)
        letters += [codec.decode(r.value) for r in read_topic(bootstrap, topic)]
    assert {d.error_type for d in letters}.isdisjoint({"BAD_MAGIC", "NO_SCHEMA_REGISTRY"})
    assert len(letters) == len(expected.dead_lettered_event_ids)

    audit_topic = topology.name(names.AUDIT)
    audit = list(read_topic(bootstrap, audit_topic))
    assert {r.value[:1] for r in audit if r.value} == {b"\x00"}
    audit_codec = reader.for_topic(audit_topic, AuditRecord)
    assert all(audit_codec.decode(r.value).audit_id for r in audit)
