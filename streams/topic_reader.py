"""Read a whole topic once, from the beginning up to the end offsets seen at the start.

Used by the operator commands (``audit verify``, ``audit timeline``, ``dlq list``) and by tests. It
joins no consumer group and commits nothing; only committed records are read
(``isolation.level=read_committed``), so aborted transactions of a crashed worker never show.

The end of a partition is where its last stable offset reaches the high watermark seen at the
start. A transaction is committed before its markers are written to the partitions it wrote, and
until they are, a read_committed reader sees the last stable offset short of it: a reader that took
that offset for the end missed the last transactions of a worker it had just seen commit. Open
transactions are waited for up to ``settle_s``; one still open then (a crashed writer's, until it
is fenced or times out) is left out, as it is not committed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streams.errors import AirExstreamError


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int


class TopicReadError(AirExstreamError):
    retriable = True


def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    client_config: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    idle_timeout_s: float = 10.0,
    settle_s: float = 5.0,
) -> Iterator[RawRecord]:
    """Yield every committed record of ``topic``, partition by partition in offset order.

    Stops at the end offsets observed at the start, once the transactions open then have ended
    (waiting at most ``settle_s``). Raises :class:`TopicReadError` when the topic does not exist
    or no progress is made for ``idle_timeout_s`` before the end is reached.
    """
    conf: dict[str, str | int | bool] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"air-exstream-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        **(client_config or {}),
    }
    consumer = Consumer(conf)
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            raise TopicReadError(
                f"topic {topic!r} does not exist on {bootstrap_servers}; "
                "run `air-exstream topology apply` first"
            )
        partitions = sorted(tmeta.partitions)
        ends = _stable_ends(consumer, conf, topic, partitions, timeout_s, settle_s)
        for partition in partitions:
            low, high = ends[partition]
            yield from _read_partition(consumer, topic, partition, low, high, idle_timeout_s)
    finally:
        consumer.close()


def _stable_ends(
    consumer: Consumer,
    conf: Mapping[str, str | int | bool],
    topic: str,
    partitions: list[int],
    timeout_s: float,
    settle_s: float,
) -> dict[int, tuple[int, int]]:
    """Each partition's (low, end): the consumer's own watermarks (the last stable offset as the
    high one under read_committed), asked again until they reach the high watermarks a
    read_uncommitted reader sees now, or ``settle_s`` has passed."""

    def stable(partition: int) -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout_s, cached=False
        )
        return int(low), int(high)

    ends = {p: stable(p) for p in partitions}
    if conf.get("isolation.level") != "read_committed":
        return ends
    written = Consumer({**conf, "isolation.level": "read_uncommitted"})
    try:
        targets = {
            p: int(
                written.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=timeout_s, cached=False
                )[1]
            )
            for p in partitions
        }
    finally:
        written.close()
    deadline = time.monotonic() + settle_s
    while True:
        open_ = [p for p in partitions if ends[p][1] < targets[p]]
        if not open_ or time.monotonic() >= deadline:
            return ends
        time.sleep(0.05)
        ends.update({p: stable(p) for p in open_})


def _read_partition(
    consumer: Consumer, topic: str, partition: int, low: int, high: int, idle_timeout_s: float
) -> Iterator[RawRecord]:
    if high <= low:
        return
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    position = low
    idle = 0.0
    while position < high:
        msg = consumer.poll(0.5)
        if msg is None:
            idle += 0.5
            # Under read_committed the high watermark can sit past transaction markers that are
            # never returned as records: stop once the consumer's position has reached it.
            pos = consumer.position([TopicPartition(topic, partition)])[0].offset
            if pos >= high:
                break
            if idle >= idle_timeout_s:
                raise TopicReadError(
                    f"reading {topic}[{partition}] stalled at offset {position} of {high}"
                )
            continue
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                break
            raise TopicReadError(f"reading {topic}[{partition}] failed: {err}")
        idle = 0.0
        offset = msg.offset() or 0
        position = offset + 1
        yield RawRecord(
            topic=topic,
            partition=partition,
            offset=offset,
            key=msg.key(),
            value=msg.value(),
            headers=_headers(msg.headers()),
            timestamp_ms=msg.timestamp()[1],
        )
    consumer.unassign()


def _headers(raw: object) -> list[tuple[str, bytes]]:
    """confluent-kafka returns headers as a list of (str, bytes | None) pairs, or None."""
    if not isinstance(raw, list):
        return []
    return [(str(k), v if isinstance(v, bytes) else b"") for k, v in raw]
