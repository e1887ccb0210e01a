"""confluent-kafka's serializers and the project's codec against the real schema registry (the
session's Apicurio Registry) and the real broker: registering, resolving, reading each other."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from streams.codec import Codec, DecodeError, RegistryFormat, codec_for
from streams.codec.schemas import default_store, schemas_dir
from streams.config import KafkaSettings
from streams.domain.records import AccountEvent, AccountEventType
from tests.conftest import SchemaRegistry, consume

pytestmark = pytest.mark.e2e

SCHEMA_FILE = schemas_dir() / "account_event.avsc"


def account_events(count: int, *, first: int = 0) -> list[AccountEvent]:
    return [
        AccountEvent(
            event_id=f"evt-{i}",
            event_type=list(AccountEventType)[i % len(AccountEventType)].value,
            customer_id=f"cust-{i % 3}",
            account_id=f"acct-{i}",
            segment=None if i % 2 else "retail",
            occurred_at=1_764_000_000_000 + i,
            attributes={"cycle": str(i)} if i % 3 else {},
        )
        for i in range(first, first + count)
    ]


def as_dict(event: AccountEvent) -> dict[str, Any]:
    return dataclasses.asdict(event)


def schema_id(value: bytes | None) -> int:
    """The id of a Confluent wire-format value (magic byte 0, then 4 bytes big-endian)."""
    assert value is not None
    assert value[0] == 0, "Confluent wire format"
    return int(struct.unpack(">I", value[1:5])[0])


ClientFactory = Callable[[], SchemaRegistryClient]


@pytest.fixture
def new_client(schema_registry: SchemaRegistry) -> Iterator[ClientFactory]:
    """``new_client()``: a registry client of its own (nothing cached), closed after the test."""
    clients: list[SchemaRegistryClient] = []

    def create() -> SchemaRegistryClient:
        clients.append(SchemaRegistryClient({"url": schema_registry.url}))
        return clients[-1]

    yield create
    for client in clients:
        client.close()


def fresh_codec(client: SchemaRegistryClient, topic: str) -> Codec[AccountEvent]:
    """The project's Confluent wire-format codec over ``client``: with a new client nothing is
    cached, so every schema id is resolved through the registry."""
    info = default_store().for_name("AccountEvent")
    return Codec(AccountEvent, info, RegistryFormat(client, f"{topic}-value", info))


def canonical(schema: dict[str, Any]) -> str:
    return str(to_parsing_canonical_form(parse_schema(schema)))


def test_confluent_serializer_registers_a_project_schema_and_a_fresh_client_resolves_it(
    new_client: ClientFactory,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory("registry-serde")
    context = SerializationContext(topic, MessageField.VALUE)
    # TopicNameStrategy (the default): subject <topic>-value, registered on first use
    serializer = AvroSerializer(new_client(), SCHEMA_FILE.read_text())
    events = account_events(6)
    producer = producer_factory()
    for event in events:
        producer.produce(
            topic, key=event.customer_id.encode(), value=serializer(as_dict(event), context)
        )
    assert producer.flush(30) == 0

    records = consume(consumer_factory(topic), len(events))
    assert len(records) == len(events)
    reader = new_client()
    deserializer = AvroDeserializer(reader)
    assert [deserializer(m.value(), context) for m in records] == [as_dict(e) for e in events]

    subject = f"{topic}-value"
    assert subject in reader.get_subjects()
    latest = reader.get_latest_version(subject)
    assert {schema_id(m.value()) for m in records} == {latest.schema_id}
    assert latest.schema.schema_type == "AVRO"
    registered = json.loads(latest.schema.schema_str)
    assert canonical(registered) == canonical(json.loads(SCHEMA_FILE.read_text()))


def test_registry_format_round_trips_a_record_through_the_real_registry(
    schema_registry: SchemaRegistry,
    new_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    monkeypatch.setenv("KAFKA_SCHEMA_REGISTRY_URL", schema_registry.url)
    registry_url = KafkaSettings().schema_registry_url
    assert registry_url == schema_registry.url
    topic = topic_factory("registry-codec")
    writer = codec_for(AccountEvent, topic, registry_url=registry_url)
    events = account_events(5)
    producer = producer_factory()
    for event in events:
        producer.produce(topic, key=event.customer_id.encode(), value=writer.encode(event))
    assert producer.flush(30) == 0

    records = consume(consumer_factory(topic), len(events))
    assert len(records) == len(events)
    reader = fresh_codec(new_client(), topic)
    assert [reader.decode(m.value()) for m in records] == events
    latest = new_client().get_latest_version(f"{topic}-value")
    assert {schema_id(m.value()) for m in records} == {latest.schema_id}


def test_the_project_codec_and_confluent_serde_read_each_others_records(
    new_client: ClientFactory,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory("registry-mixed")
    context = SerializationContext(topic, MessageField.VALUE)
    serializer = AvroSerializer(new_client(), SCHEMA_FILE.read_text())
    by_confluent, by_project = account_events(4), account_events(4, first=100)
    producer = producer_factory()
    for event in by_confluent:
        producer.produce(topic, value=serializer(as_dict(event), context))
    project_writer = fresh_codec(new_client(), topic)
    for event in by_project:
        producer.produce(topic, value=project_writer.encode(event))
    assert producer.flush(30) == 0

    records = consume(consumer_factory(topic), 8)
    assert len(records) == 8
    values = [m.value() for m in records]
    project_reader = fresh_codec(new_client(), topic)
    assert [project_reader.decode(v) for v in values] == by_confluent + by_project
    confluent_reader = AvroDeserializer(new_client())
    assert [confluent_reader(v, context) for v in values] == [
        as_dict(e) for e in by_confluent + by_project
    ]


def test_a_schema_id_the_registry_does_not_know_is_an_unknown_schema_dead_letter_reason(
    new_client: ClientFactory,
) -> None:
    reader = fresh_codec(new_client(), "registry-unknown-id")
    with pytest.raises(DecodeError) as caught:
        reader.decode(b"\x00" + struct.pack(">I", 2_000_000_000) + b"\x02\x00")
    assert caught.value.code == "UNKNOWN_SCHEMA"
    assert "2000000000" in str(caught.value)
