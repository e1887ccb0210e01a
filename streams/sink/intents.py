"""The sink's durable record of the batches it intends to submit (``exstream.sink-batches.v1``).

Before a batch is sent to Exstream, its range is added to the *open* ranges of its partition and
that set is written to Kafka (``acks=all``, awaited): one compacted record per
``group/topic/partition`` holding every open range (``{"v": 1, "open": [[first, last], ...]}``,
JSON). A range stays open until the sink's committed offset of that partition passes it.

After a restart (or a rebalance) the owner of a partition reads that record: every open range at
or after the committed offset is a batch that may already be at Exstream. The batcher cuts those
exact ranges again (same ids), and the sink looks each one up by its external id before sending
it: found, it is not sent again.

A single writer per partition (the consumer group's owner) and one write in flight per partition
(a lock) keep the latest record the latest set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.aiokafka_compat import partitions_of
from streams.errors import AirExstreamError
from streams.sink.batching import Range

log = logging.getLogger(__name__)


def state_key(group: str, topic: str, partition: int) -> str:
    return f"{group}/{topic}/{partition}"


def encode(ranges: Iterable[Range]) -> bytes:
    return orjson.dumps(
        {"v": 1, "open": sorted([r.first, r.last] for r in ranges), "at": int(time.time() * 1000)}
    )


def decode(value: bytes | None) -> list[Range]:
    if not value:
        return []
    body = orjson.loads(value)
    return [Range(int(a), int(b)) for a, b in body.get("open", [])]


class IntentsUnavailable(AirExstreamError):
    """The intents topic cannot be read: the sink stops rather than risk sending twice."""

    retriable = True

    def __init__(self, topic: str) -> None:
        super().__init__(
            f"the sink's intents topic {topic!r} has no partitions in the cluster's metadata; "
            "create it (air-exstream topology apply) before starting the sink"
        )


class IntentLog:
    def __init__(
        self, producer: AIOKafkaProducer, *, topic: str, group: str, commands_topic: str
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.group = group
        self.commands_topic = commands_topic
        self._open: dict[int, set[Range]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _key(self, partition: int) -> bytes:
        return state_key(self.group, self.commands_topic, partition).encode()

    async def _write(self, partition: int) -> None:
        lock = self._locks.setdefault(partition, asyncio.Lock())
        async with lock:
            value = encode(self._open.get(partition, set()))
            fut = await self.producer.send(self.topic, key=self._key(partition), value=value)
            await fut

    async def intend(self, partition: int, first: int, last: int) -> None:
        """Durably record that ``[first, last]`` is about to be sent (returns once on Kafka)."""
        self._open.setdefault(partition, set()).add(Range(first, last))
        await self._write(partition)

    async def committed(self, partition: int, offset: int) -> None:
        """The committed offset of ``partition`` is now ``offset``: close the ranges below it."""
        ranges = self._open.get(partition)
        if not ranges:
            return
        closed = {r for r in ranges if r.last < offset}
        if closed:
            ranges -= closed
            await self._write(partition)

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._open.pop(p, None)

    async def load(
        self, consumer_kwargs: dict[str, object], committed: dict[int, int]
    ) -> dict[int, list[Range]]:
        """The open ranges of each partition in ``committed`` at or after its committed offset
        (``committed``: partition -> next offset to read); adopts them as open."""
        wanted = {self._key(p): p for p in committed}
        latest: dict[int, list[Range]] = {}
        consumer = AIOKafkaConsumer(
            **consumer_kwargs,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            parts: set[int] = set()
            for _ in range(100):  # bounded: about 10 s for the topic's metadata to appear
                parts = await partitions_of(consumer, self.topic)
                if parts:
                    break
                await asyncio.sleep(0.1)
            if not parts:
                # never guess "nothing intended": that could send a batch twice
                raise IntentsUnavailable(self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            if tps:
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                end = await consumer.end_offsets(tps)
                pending = {tp for tp in tps if end[tp] > 0}
                while pending:
                    batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                    for records in batches.values():
                        for r in records:
                            if r.key in wanted:
                                latest[wanted[r.key]] = decode(r.value)
                    pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        finally:
            await consumer.stop()
        out: dict[int, list[Range]] = {}
        for partition, ranges in latest.items():
            kept = [r for r in ranges if r.last >= committed[partition]]
            if kept:
                out[partition] = sorted(kept, key=lambda r: r.first)
                self._open.setdefault(partition, set()).update(kept)
        if out:
            log.info(
                "sink: %d batch(es) intended before a restart will be looked up before sending",
                sum(len(v) for v in out.values()),
            )
        return out
