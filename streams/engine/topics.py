"""The engine's topics (Kafka admin I/O, blocking: the engine runs these in a worker thread):
the partition counts of its inputs, and the changelog topics of its stores, created when missing
(compacted, one partition per store partition)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streams.engine.errors import EngineError
from streams.engine.retry import DEFAULT_BACKOFF, Backoff, call_with_retry, transient
from streams.engine.stores import MemoryStore


def partition_counts(
    consumer: Any,
    topics: Sequence[str],
    *,
    timeout_s: float,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Each input's partition count. The metadata is asked again while an input is missing or
    says "not yet" (a topic just created: no leader yet), up to ``timeout_s``; then, or on an
    error that is not transient, :class:`EngineError`."""
    deadline = time.monotonic() + timeout_s
    for delay in backoff.delays():
        metadata = call_with_retry(
            consumer.list_topics,
            what="reading the input topics' metadata",
            timeout_s=max(0.0, deadline - time.monotonic()),
            timeout=min(30.0, max(1.0, deadline - time.monotonic())),
        )
        counts, waiting = {}, []
        for topic in topics:
            found = metadata.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                counts[topic] = len(found.partitions)
            elif found is not None and found.error is not None and not transient(found.error):
                raise EngineError(f"input topic {topic}: {found.error}")
            else:
                waiting.append(topic)
        if not waiting:
            return counts
        if time.monotonic() + delay > deadline:
            raise EngineError(f"input topics {waiting} do not exist (waited {timeout_s:.0f} s)")
        sleep(delay)
    raise AssertionError("unreachable: the backoff never ends")  # pragma: no cover


def _ready(found: Any, partitions: int) -> bool:
    """A topic's metadata with ``partitions`` partitions, each with a leader."""
    if found is None or found.error is not None or len(found.partitions) < partitions:
        return False
    return all(p.error is None and p.leader >= 0 for p in found.partitions.values())


def create_changelogs(
    kafka: Mapping[str, str],
    stores: Sequence[MemoryStore],
    *,
    timeout_s: float = 30.0,
    replication_factor: int = -1,
) -> None:
    """Create the stores' changelog topics that do not exist yet and wait (up to
    ``timeout_s``) until each partition of them has a leader in the metadata; a changelog with
    fewer partitions than its store is an error. ``replication_factor`` -1: the broker's
    default."""
    if not stores:
        return
    deadline = time.monotonic() + timeout_s
    admin = AdminClient(dict(kafka))
    existing = call_with_retry(
        admin.list_topics, what="listing topics", timeout_s=timeout_s, timeout=10
    ).topics
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
            replication_factor=replication_factor,
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
    wanted_partitions = {t.topic: t.num_partitions for t in wanted}
    for delay in DEFAULT_BACKOFF.delays():
        topics = call_with_retry(
            admin.list_topics,
            what="listing topics",
            timeout_s=max(0.0, deadline - time.monotonic()),
            timeout=10,
        ).topics
        if all(_ready(topics.get(n), count) for n, count in wanted_partitions.items()):
            return
        if time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
    raise EngineError(
        f"changelog topics {sorted(wanted_partitions)} have no leader after {timeout_s:.0f} s"
    )
