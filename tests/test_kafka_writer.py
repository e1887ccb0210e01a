"""The shared awaited Kafka writer: confirmed writes on the real broker, clear errors otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka_writer import KafkaWriteError, KafkaWriter
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e


class ServiceError(KafkaWriteError):
    """A service's own error type, raised in place of the base one."""


async def test_a_send_returns_once_the_record_is_on_kafka(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("writer", partitions=6)
    writer = KafkaWriter(kafka.client_config(), timeout_s=10.0)
    try:
        await writer.send(topic, b"cust-000042", b"one", [("h", b"v")])
        await writer.send(topic, None, b"two")
    finally:
        writer.close()
    records = list(read_topic(kafka.bootstrap_servers, topic))
    assert sorted((r.value, r.key) for r in records) == [(b"one", b"cust-000042"), (b"two", None)]
    keyed = next(r for r in records if r.key == b"cust-000042")
    assert keyed.headers == [("h", b"v")]
    # the Java client's murmur2 placement, as aiokafka (another implementation) computes it
    assert keyed.partition == DefaultPartitioner()(b"cust-000042", list(range(6)), [])


async def test_a_closed_writer_refuses_with_the_services_error(kafka: KafkaCluster) -> None:
    writer = KafkaWriter(kafka.client_config(), timeout_s=5.0, error=ServiceError)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ServiceError, match="closed"):
        await writer.send("any", b"k", b"v")


@pytest.mark.timeout(60)
async def test_an_unreachable_broker_gives_an_error_within_the_timeout() -> None:
    writer = KafkaWriter({"bootstrap.servers": "127.0.0.1:9"}, timeout_s=1.0, error=ServiceError)
    try:
        with pytest.raises(ServiceError) as caught:
            await writer.send("any", b"k", b"v")
        assert caught.value.retriable
    finally:
        writer.close(timeout_s=1.0)


async def test_a_write_that_can_never_succeed_is_not_retriable() -> None:
    writer = KafkaWriter({"bootstrap.servers": "127.0.0.1:9"}, timeout_s=1.0, error=ServiceError)
    try:
        with pytest.raises(ServiceError) as caught:  # above message.max.bytes: refused locally
            await writer.send("any", b"k", b"x" * 2_000_000)
        assert not caught.value.retriable
        assert "cannot enqueue" in str(caught.value)
    finally:
        writer.close(timeout_s=1.0)
