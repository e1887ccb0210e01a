"""Restoring stores from real transactional changelogs: committed records applied in order
(tombstones delete), aborted ones never, an end made of transaction markers reached (a partition
of aborted records only included), and an open transaction at the end not waited for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from streams.engine.restore import restore
from streams.engine.stores import MemoryStore
from tests.conftest import KafkaCluster, unique

pytestmark = pytest.mark.e2e


@pytest.fixture
def restorer(kafka: KafkaCluster) -> Iterator[Any]:
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": unique("restore"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    yield consumer
    consumer.close()


def _txn_producer(kafka: KafkaCluster) -> Producer:
    producer = Producer({**kafka.client_config(), "transactional.id": unique("restore-txn")})
    producer.init_transactions(30)
    return producer


def _write(
    producer: Producer, topic: str, partition: int, records: list[tuple[bytes, bytes | None]]
) -> None:
    for key, value in records:
        producer.produce(topic, key=key, value=value, partition=partition)
    producer.flush(30)


async def test_committed_records_restored_aborted_ones_never(
    kafka: KafkaCluster, topic_factory: Callable[..., str], restorer: Any
) -> None:
    changelog = topic_factory("restore-cl", partitions=3, config={"cleanup.policy": "compact"})
    producer = _txn_producer(kafka)
    for batch in ([(b"k1", b"a"), (b"k2", b"b")], [(b"k1", b"c"), (b"k2", None)]):
        producer.begin_transaction()
        _write(producer, changelog, 0, batch)
        producer.commit_transaction(30)
    producer.begin_transaction()  # aborted: partition 0's tail, and all of partition 1
    _write(producer, changelog, 0, [(b"k1", b"zzz")])
    _write(producer, changelog, 1, [(b"k3", b"zzz")])
    producer.abort_transaction(30)

    store = MemoryStore("s", changelog_topic=changelog, partitions=3)
    targets = {(changelog, p): store for p in range(3)}
    read = await restore(restorer, targets, timeout_s=30)
    assert read == 4
    assert dict(store.items(0)) == {b"k1": b"c"}
    assert dict(store.items(1)) == {}
    assert store.partitions() == frozenset({0, 1, 2})  # held, even the empty one


async def test_an_open_transaction_at_the_end_is_not_waited_for(
    kafka: KafkaCluster, topic_factory: Callable[..., str], restorer: Any
) -> None:
    """The end is the last stable offset: a transaction still open (a dead previous owner's,
    until it times out) is not waited for, and its records are not applied."""
    changelog = topic_factory("restore-cl", partitions=1, config={"cleanup.policy": "compact"})
    producer = _txn_producer(kafka)
    producer.begin_transaction()
    _write(producer, changelog, 0, [(b"k", b"v")])
    producer.commit_transaction(30)
    producer.begin_transaction()  # left open: read_committed stops before it
    _write(producer, changelog, 0, [(b"k", b"open"), (b"other", b"open")])
    store = MemoryStore("s", changelog_topic=changelog, partitions=1)
    try:
        assert await restore(restorer, {(changelog, 0): store}, timeout_s=30) == 1
        assert dict(store.items(0)) == {b"k": b"v"}
    finally:
        producer.abort_transaction(30)
