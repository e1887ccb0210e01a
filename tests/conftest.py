"""Shared fixtures: one real Kafka broker per test session, and factories around it.

The broker is the project's own (started from Maven Central jars in a temporary state directory)
unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster. If it cannot start, every test that needs it
fails with the reason: a missing broker is never a skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.localkafka import LocalKafka


@dataclass(frozen=True)
class KafkaCluster:
    bootstrap_servers: str
    local: LocalKafka | None
    """The project's runner when the session started the broker itself."""

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap_servers})


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield KafkaCluster(configured, None)
        return
    local = LocalKafka(tmp_path_factory.mktemp("kafka") / "state", nodes=1)
    info = local.start()  # raises a clear LocalKafkaError: the tests fail, never skip
    try:
        yield KafkaCluster(info.bootstrap_servers, local)
    finally:
        local.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for_topics(admin: AdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=5).topics
        if all(n in topics and topics[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"topics {names} did not appear within {timeout_s} s")


@pytest.fixture
def topic_factory(kafka: KafkaCluster) -> Callable[..., str]:
    admin = kafka.admin()

    def create(
        prefix: str = "t", *, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = unique(prefix)
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
        )
        futures[name].result(timeout=30)
        wait_for_topics(admin, [name])
        return name

    return create


@pytest.fixture
def producer_factory(kafka: KafkaCluster) -> Iterator[Callable[..., Producer]]:
    producers: list[Producer] = []

    def create(**overrides: Any) -> Producer:
        producer = Producer(
            {"bootstrap.servers": kafka.bootstrap_servers, "acks": "all", **overrides}
        )
        producers.append(producer)
        return producer

    yield create
    for producer in producers:
        producer.flush(30)


@pytest.fixture
def consumer_factory(kafka: KafkaCluster) -> Iterator[Callable[..., Consumer]]:
    consumers: list[Consumer] = []

    def create(*topics: str, **overrides: Any) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": unique("test-group"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                **overrides,
            }
        )
        if topics:
            consumer.subscribe(list(topics))
        consumers.append(consumer)
        return consumer

    yield create
    for consumer in consumers:
        consumer.close()


def consume(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[Any]:
    """Poll until ``count`` records arrived or the timeout passed; returns what arrived."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            raise AssertionError(f"consumer error: {msg.error()}")
        out.append(msg)
    return out


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
