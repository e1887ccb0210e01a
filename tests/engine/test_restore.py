"""Restoring stores from real transactional changelogs: committed records applied in order
(tombstones delete), aborted ones never, an end made of transaction markers reached (a partition
of aborted records only included), and a transaction undecided when the restore begins waited for
(a previous owner's last one, committed but its markers not yet written); a state kept through a
rebalance read on from where it stood."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.engine.config import EngineConfig, ends_reader_config
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


@pytest.fixture
def ends(kafka: KafkaCluster) -> Iterator[Any]:
    """The engine's ends reader."""
    config = EngineConfig(app_id=unique("restore"), kafka=kafka.client_config(), instance_id="0")
    consumer = Consumer(ends_reader_config(config))
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
    kafka: KafkaCluster, topic_factory: Callable[..., str], restorer: Any, ends: Any
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
    read = await restore(restorer, targets, ends_reader=ends, timeout_s=30)
    assert read == 4
    assert dict(store.items(0)) == {b"k1": b"c"}
    assert dict(store.items(1)) == {}
    assert store.partitions() == frozenset({0, 1, 2})  # held, even the empty one


@pytest.mark.parametrize("decision", ["commit", "abort"])
async def test_a_transaction_undecided_at_the_start_is_waited_for(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    restorer: Any,
    ends: Any,
    decision: str,
) -> None:
    """The end is the high watermark, not the last stable offset: a transaction undecided when
    the restore begins (a previous owner's last one whose markers are not written yet, or a dead
    one's) is waited for, and applied only if committed."""
    changelog = topic_factory("restore-cl", partitions=1, config={"cleanup.policy": "compact"})
    producer = _txn_producer(kafka)
    producer.begin_transaction()
    _write(producer, changelog, 0, [(b"k", b"v")])
    producer.commit_transaction(30)
    producer.begin_transaction()  # undecided while the restore begins
    _write(producer, changelog, 0, [(b"k", b"late"), (b"other", b"late")])
    store = MemoryStore("s", changelog_topic=changelog, partitions=1)
    restoring = asyncio.create_task(
        restore(restorer, {(changelog, 0): store}, ends_reader=ends, timeout_s=60)
    )
    try:
        done, _ = await asyncio.wait({restoring}, timeout=2.0)
        assert not done, "the restore ended before the transaction was decided"
        await asyncio.to_thread(getattr(producer, f"{decision}_transaction"), 30)
        read = await asyncio.wait_for(restoring, 60)
    finally:
        restoring.cancel()
    if decision == "commit":
        assert read == 3
        assert dict(store.items(0)) == {b"k": b"late", b"other": b"late"}
    else:
        assert read == 1
        assert dict(store.items(0)) == {b"k": b"v"}


async def test_a_kept_state_is_read_on_from_where_it_stood(
    kafka: KafkaCluster, topic_factory: Callable[..., str], restorer: Any, ends: Any
) -> None:
    """Partition 0's state was kept at the changelog's end then; another member wrote on before
    it came back: only those records are read, onto the kept state. Partition 1 was not kept:
    read whole."""
    changelog = topic_factory("restore-cl", partitions=2, config={"cleanup.policy": "compact"})
    producer = _txn_producer(kafka)
    producer.begin_transaction()
    _write(producer, changelog, 0, [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")])
    _write(producer, changelog, 1, [(b"x", b"1")])
    producer.commit_transaction(30)
    store = MemoryStore("s", changelog_topic=changelog, partitions=2)
    read = await restore(
        restorer, {(changelog, p): store for p in range(2)}, ends_reader=ends, timeout_s=30
    )
    assert read == 4
    _low, kept_at = ends.get_watermark_offsets(TopicPartition(changelog, 0), timeout=10)
    store.suspend([0, 1])
    producer.begin_transaction()  # another member, meanwhile
    _write(producer, changelog, 0, [(b"a", b"2"), (b"b", None)])
    producer.commit_transaction(30)
    store.drop([1])
    assert store.resume(0)
    read = await restore(
        restorer,
        {(changelog, p): store for p in range(2)},
        ends_reader=ends,
        timeout_s=30,
        resume_from={(changelog, 0): kept_at},
    )
    assert read == 2 + 1  # partition 0 from the kept offset, partition 1 whole
    assert dict(store.items(0)) == {b"a": b"2", b"c": b"1"}
    assert dict(store.items(1)) == {b"x": b"1"}
