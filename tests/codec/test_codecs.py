"""The process-wide :class:`Codecs`: one framing written per deployment, every framing read."""

from __future__ import annotations

import dataclasses
import struct
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.codec import CodecMismatch, Codecs, DecodeError, RegistryUnavailable
from streams.codec.codec import registry_client
from streams.codec.schemas import schemas_dir
from streams.config import KafkaSettings
from streams.domain.records import AccountEvent, CompositionCommand, Preference
from streams.errors import AirExstreamError
from topology import names
from topology.model import load_topology

pytestmark = pytest.mark.unit

EVENT = AccountEvent(
    event_id="evt-1",
    event_type="BILLING_CYCLE_CLOSED",
    customer_id="cust-1",
    account_id="acct-1",
    segment="retail",
    occurred_at=1_764_000_000_000,
    attributes={"cycle": "1"},
)
JSON = [("content-type", b"application/json")]


def mock_url() -> str:
    return f"mock://codecs-{uuid.uuid4().hex[:8]}"


def confluent_bytes(url: str, topic: str) -> bytes:
    """``EVENT`` as confluent-kafka's own AvroSerializer writes it (TopicNameStrategy)."""
    client = registry_client(url)  # mock:// registries live in their client
    serializer = AvroSerializer(client, (schemas_dir() / "account_event.avsc").read_text())
    value = serializer(dataclasses.asdict(EVENT), SerializationContext(topic, MessageField.VALUE))
    assert value is not None
    return bytes(value)


def test_without_a_registry_every_topic_writes_single_object_encoding() -> None:
    codecs = Codecs.from_settings(KafkaSettings(schema_registry_url=None))
    assert not codecs.writes_confluent
    data = codecs.for_topic("air.account-events.v1", AccountEvent).encode(EVENT)
    assert data[:2] == b"\xc3\x01"


def test_with_a_registry_every_topic_writes_the_confluent_wire_format_and_state_does_not() -> None:
    codecs = Codecs(registry_url=mock_url())
    assert codecs.writes_confluent
    data = codecs.for_topic("air.account-events.v1", AccountEvent).encode(EVENT)
    assert data[0] == 0
    state = codecs.for_state(AccountEvent).encode(EVENT)
    assert state[:2] == b"\xc3\x01"
    # either reads both
    assert codecs.for_state(AccountEvent).decode(data) == EVENT
    assert codecs.for_topic("air.account-events.v1", AccountEvent).decode(state) == EVENT


def test_one_codec_per_topic_and_type_is_built_once() -> None:
    codecs = Codecs()
    first = codecs.for_topic("a", AccountEvent)
    assert codecs.for_topic("a", AccountEvent) is first
    assert codecs.for_topic("b", AccountEvent) is not first


def test_a_record_written_by_confluents_avro_serializer_is_read_by_every_codecs() -> None:
    url = mock_url()
    topic = "air.account-events.v1"
    value = confluent_bytes(url, topic)
    # whether this process writes Confluent framing or single-object encoding
    assert Codecs(registry_url=url).for_topic(topic, AccountEvent).decode(value) == EVENT
    reader = Codecs(registry=registry_client(url)).for_state(AccountEvent)
    assert reader.decode(value) == EVENT


def test_a_confluent_record_without_a_registry_is_the_no_schema_registry_dead_letter_reason() -> (
    None
):
    value = confluent_bytes(mock_url(), "t")
    with pytest.raises(DecodeError) as caught:
        Codecs().for_topic("t", AccountEvent).decode(value)
    assert caught.value.code == "NO_SCHEMA_REGISTRY"
    assert "KAFKA_SCHEMA_REGISTRY_URL" in str(caught.value)


def test_json_is_read_by_its_content_type_header_in_either_deployment() -> None:
    for codecs in (Codecs(), Codecs(registry_url=mock_url())):
        codec = codecs.for_topic("t", AccountEvent)
        assert codec.decode(codec.encode_json(EVENT), JSON) == EVENT


def test_a_topic_declared_for_another_record_type_is_refused_at_construction() -> None:
    topology = load_topology("local", prefix="p.")
    codecs = Codecs(topology=topology)
    assert codecs.for_topic(topology.name(names.COMMANDS), CompositionCommand)
    with pytest.raises(CodecMismatch):
        codecs.for_topic(topology.name(names.COMMANDS), Preference)
    assert codecs.for_topic(names.dlq("undeclared"), Preference)  # undeclared: not checked


class _Down:
    """A registry client whose registry does not answer (as httpx reports it)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.calls += 1
        raise self.exc

    def register_schema(self, subject: str, schema: Any) -> int:
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [ConnectionRefusedError(), SchemaRegistryError(503, 50301, "down"), TimeoutError()],
    ids=["refused", "503", "timeout"],
)
def test_a_registry_that_does_not_answer_is_retriable_not_a_dead_letter(exc: Exception) -> None:
    codec = Codecs(registry=_Down(exc)).for_topic("t", AccountEvent)
    with pytest.raises(RegistryUnavailable) as caught:
        codec.decode(b"\x00" + struct.pack(">I", 7) + b"\x02\x00")
    assert caught.value.retriable
    assert isinstance(caught.value, AirExstreamError)
    assert not isinstance(caught.value, DecodeError)
    with pytest.raises(RegistryUnavailable):
        codec.encode(EVENT)


def test_an_unknown_schema_id_is_a_dead_letter_reason() -> None:
    down = _Down(SchemaRegistryError(404, 40403, "Schema not found"))
    codec = Codecs(registry=down).for_topic("t", AccountEvent)
    with pytest.raises(DecodeError) as caught:
        codec.decode(b"\x00" + struct.pack(">I", 7) + b"\x02\x00")
    assert caught.value.code == "UNKNOWN_SCHEMA"


def test_resolved_schema_ids_are_cached() -> None:
    url = mock_url()
    value = confluent_bytes(url, "t")
    client = registry_client(url)
    client._cache.clear()  # nothing cached in confluent-kafka's client either
    calls = 0
    real = client.get_schema

    def counting(schema_id: int) -> Any:
        nonlocal calls
        calls += 1
        return real(schema_id)

    client.get_schema = counting
    try:
        codec = Codecs(registry=client).for_topic("t", AccountEvent)
        for _ in range(5):
            assert codec.decode(value) == EVENT
    finally:
        del client.get_schema
    assert calls == 1
