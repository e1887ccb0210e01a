"""The engine's topics (Kafka admin I/O, blocking: the engine runs these in a worker thread):
the partition counts of its inputs, and the changelog topics of its stores, created when missing
(compacted, one partition per store partition)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.engine.errors import EngineError
from streams.engine.stores import MemoryStore


def partition_counts(consumer: Any, topics: Sequence[str]) -> dict[str, int]:
    """Each input's partition count; an input topic that does not exist is an error."""
    metadata = consumer.list_topics(timeout=30)
    counts = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise EngineError(f"input topic {topic} does not exist")
        counts[topic] = len(found.partitions)
    return counts


def create_changelogs(kafka: Mapping[str, str], stores: Sequence[MemoryStore]) -> None:
    """Create the stores' changelog topics that do not exist yet and wait until they are in the
    metadata; a changelog with fewer partitions than its store is an error."""
    if not stores:
        return
    admin = AdminClient(dict(kafka))
    existing = admin.list_topics(timeout=30).topics
    for store in stores:
        found = existing.get(store.changelog_topic)
        if found is not None and len(found.partitions) < store.partition_count:
            raise EngineError(
                f"changelog {store.changelog_topic} has {len(found.partitions)} partitions,"
                f" store {store.name} needs {store.partition_count}"
            )
    wanted = [
        NewTopic(
            store.changelog_topic,
            num_partitions=store.partition_count,
            replication_factor=-1,
            config={"cleanup.policy": "compact"},
        )
        for store in stores
        if store.changelog_topic not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted).items():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise EngineError(f"creating changelog {topic}: {exc}") from exc
    deadline = time.monotonic() + 30
    names = {t.topic for t in wanted}
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and topics[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise EngineError(f"changelog topics {sorted(names)} did not appear in 30 s")
