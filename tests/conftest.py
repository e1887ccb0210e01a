"""Shared fixtures: one real Kafka broker per test session, and factories around it; one real
schema registry per session for the tests that ask for it.

The broker is the project's own (started from Maven Central jars in a temporary state directory)
unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster. If it cannot start, every test that needs it
fails with the reason: a missing broker is never a skip. The same holds for the schema registry
(Apicurio Registry, unless ``KAFKA_SCHEMA_REGISTRY_URL`` names one).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.config import KafkaSettings
from streams.localkafka import LocalKafka
from streams.localregistry import LocalRegistry


@dataclass(frozen=True)
class KafkaCluster:
    """What the ``kafka`` fixture yields."""

    bootstrap_servers: str
    local: LocalKafka | None
    """The project's runner when the session started the broker itself, else None."""

    def admin(self) -> AdminClient:
        conf: dict[str, str | int | float | bool] = {**self.client_config()}
        return AdminClient(conf)

    def client_config(self) -> dict[str, str]:
        """confluent-kafka settings (KAFKA_* security settings from the environment included)."""
        return self.settings().confluent_config()

    def settings(self) -> KafkaSettings:
        return KafkaSettings().with_bootstrap(self.bootstrap_servers)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield KafkaCluster(configured, None)
        return
    # die_with_parent: a session killed by a timeout leaves no broker behind
    local = LocalKafka(tmp_path_factory.mktemp("kafka") / "state", nodes=1, die_with_parent=True)
    info = local.start()  # raises a clear LocalKafkaError: the tests fail, never skip
    try:
        yield KafkaCluster(info.bootstrap_servers, local)
    finally:
        local.stop()


@dataclass(frozen=True)
class SchemaRegistry:
    """What the ``schema_registry`` fixture yields."""

    url: str
    """Confluent-compatible API: the value of ``KAFKA_SCHEMA_REGISTRY_URL``."""
    local: LocalRegistry | None
    """The project's runner when the session started the registry itself, else None."""


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchemaRegistry]:
    configured = os.environ.get("KAFKA_SCHEMA_REGISTRY_URL")
    if configured:
        yield SchemaRegistry(configured, None)
        return
    # die_with_parent: a session killed by a timeout leaves no registry behind
    local = LocalRegistry(tmp_path_factory.mktemp("registry") / "state", die_with_parent=True)
    info = local.start()  # raises a clear LocalRegistryError: the tests fail, never skip
    try:
        yield SchemaRegistry(info.url, local)
    finally:
        local.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for_topics(admin: AdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """Until every topic in ``names`` is in the metadata with its partitions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=5).topics
        if all(n in topics and topics[n].partitions and not topics[n].error for n in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"topics {names} did not appear within {timeout_s} s")


@pytest.fixture
def topic_factory(kafka: KafkaCluster) -> Callable[..., str]:
    """``create(prefix="t", *, partitions=1, replication_factor=-1, config=None) -> name``:
    a new uniquely named topic (-1: the broker's default replication), ready to use."""
    admin = kafka.admin()

    def create(
        prefix: str = "t",
        *,
        partitions: int = 1,
        replication_factor: int = -1,
        config: dict[str, str] | None = None,
    ) -> str:
        name = unique(prefix)
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config=config or {},
        )
        admin.create_topics([topic])[name].result(timeout=30)
        wait_for_topics(admin, [name])
        return name

    return create


@pytest.fixture
def producer_factory(kafka: KafkaCluster) -> Iterator[Callable[..., Producer]]:
    """``create(**overrides) -> Producer`` (acks=all); flushed and closed after the test."""
    producers: list[Producer] = []

    def create(**overrides: Any) -> Producer:
        conf = {**kafka.client_config(), "acks": "all", **overrides}
        producer = Producer(conf)
        producers.append(producer)
        return producer

    yield create
    for producer in producers:
        producer.flush(30)
        producer.close()


@pytest.fixture
def consumer_factory(kafka: KafkaCluster) -> Iterator[Callable[..., Consumer]]:
    """``create(*topics, **overrides) -> Consumer`` in its own group, reading committed records
    from the earliest offset, subscribed to ``topics``; closed after the test."""
    consumers: list[Consumer] = []

    def create(*topics: str, **overrides: Any) -> Consumer:
        conf = {
            **kafka.client_config(),
            "group.id": unique("test-group"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **overrides,
        }
        consumer = Consumer(conf)
        if topics:
            consumer.subscribe(list(topics))
        consumers.append(consumer)
        return consumer

    yield create
    for consumer in consumers:
        consumer.close()


def consume(consumer: Consumer, count: int, timeout_s: float = 30.0) -> list[Message]:
    """Poll until ``count`` records arrived or ``timeout_s`` passed; returns what arrived (compare
    its length to see a shortfall). A consumer error fails the test."""
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        msg = consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
        if msg is None:
            continue
        if msg.error() is not None:
            raise AssertionError(f"consumer error: {msg.error()}")
        out.append(msg)
    return out
