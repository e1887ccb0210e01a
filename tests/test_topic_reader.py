"""Reading a whole topic on the real broker: committed records only, and every transaction that
was open when the read began and committed soon after is read, not cut off at the last stable
offset of that moment."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e


def _transactional(kafka: KafkaCluster) -> Producer:
    producer = Producer(
        {**kafka.client_config(), "transactional.id": f"reader-test-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions(30)
    return producer


def test_a_transaction_committed_while_the_read_begins_is_read(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("reader-settle", partitions=3)
    producer = _transactional(kafka)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=b"before", partition=i)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=b"pending", partition=i)
    producer.flush(30)  # on the partitions, not committed: the last stable offset is short of them
    committer = threading.Timer(1.0, producer.commit_transaction, args=(30,))
    committer.start()
    try:
        values = sorted(r.value for r in read_topic(kafka.bootstrap_servers, topic))
    finally:
        committer.join()
    assert values == [b"before"] * 3 + [b"pending"] * 3


def test_a_transaction_left_open_is_not_read_and_does_not_stall_the_read(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("reader-open", partitions=2)
    producer = _transactional(kafka)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed", partition=0)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"open", partition=0)
    producer.produce(topic, value=b"open", partition=1)
    producer.flush(30)
    try:
        values = [r.value for r in read_topic(kafka.bootstrap_servers, topic, settle_s=1.0)]
    finally:
        producer.abort_transaction(30)
    assert values == [b"committed"]
    # aborted, the transaction's records never show
    assert [r.value for r in read_topic(kafka.bootstrap_servers, topic)] == [b"committed"]
