"""Reading changelog partitions back into the stores (Kafka I/O, asyncio-friendly).

A changelog partition is read from its beginning to its end, read_committed, with a consumer of
its own (assigned, never in a group, never committing). The end is the partition's last stable
offset when the restore begins (the read_committed end: a transaction still open, e.g. a dead
previous owner's until it times out, is not waited for and none of its records is applied);
the read is done when the consumer's position reaches it: the
last offsets of a transactional changelog are transaction markers, which are never delivered as
records but which the position moves past (the consumer's end-of-partition event says the same
when no record follows: a partition of aborted records only).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from streams.engine.errors import EngineError, RestoreTimeout
from streams.engine.retry import call_with_retry_async
from streams.engine.stores import MemoryStore

_BATCH = 1000


async def restore(
    consumer: Any,
    stores: Mapping[tuple[str, int], MemoryStore],
    *,
    timeout_s: float,
) -> int:
    """Load every (changelog topic, partition) of ``stores`` into its store; returns the records
    read. ``consumer`` is read_committed with ``enable.partition.eof``. Raises
    :class:`RestoreTimeout` when the ends are not reached in ``timeout_s`` (the ends' lookup,
    tried again while a new changelog has no leader yet, counts in it), :class:`EngineError`
    when the ends cannot be read in that time."""
    for (_topic, partition), store in stores.items():
        store.load(partition, ())  # held from now on, even when its changelog is empty
    deadline = time.monotonic() + timeout_s
    ends: dict[tuple[str, int], int] = {}
    for topic, partition in stores:
        # a changelog just created may have no leader yet: tried again until the deadline
        low, high = await call_with_retry_async(
            consumer.get_watermark_offsets,
            TopicPartition(topic, partition),
            10.0,
            what=f"reading the ends of changelog {topic}[{partition}]",
            timeout_s=max(0.0, deadline - time.monotonic()),
        )
        if high > low:
            ends[(topic, partition)] = high
    if not ends:
        return 0
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
    read = 0
    try:
        while ends:
            msgs = consumer.consume(_BATCH, timeout=0)
            batches: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
            for msg in msgs:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        eof = (msg.topic(), msg.partition())
                        if eof in ends and msg.offset() >= ends[eof]:
                            del ends[eof]
                        continue
                    if error.fatal():
                        raise EngineError(f"restoring a changelog: {error}")
                    continue  # the client retries; the deadline bounds the wait
                batches.setdefault((msg.topic(), msg.partition()), []).append(
                    (msg.key(), msg.value())
                )
            for tp, records in batches.items():
                target = stores.get(tp)
                if target is not None:
                    target.load(tp[1], records)
                    read += len(records)
            positions = consumer.position([TopicPartition(t, p) for t, p in ends]) if ends else []
            for position in positions:
                tp = (position.topic, position.partition)
                if position.offset >= ends[tp]:
                    del ends[tp]
            if not ends:
                break
            if time.monotonic() > deadline:
                left = ", ".join(f"{t}[{p}]" for t, p in sorted(ends))
                raise RestoreTimeout(
                    f"changelog partitions not read to their end in {timeout_s:.0f} s: {left}"
                )
            await asyncio.sleep(0 if msgs else 0.005)  # other tasks run during a long restore
    finally:
        consumer.unassign()
    return read
