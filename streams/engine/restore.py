"""Reading changelog partitions back into the stores (Kafka I/O, asyncio-friendly).

A changelog partition is read from its beginning to its end, read_committed, with a consumer of
its own (assigned, never in a group, never committing). The end is the partition's high
watermark when the restore begins, read by a read_uncommitted client: every record written so
far, those of transactions not yet decided included. The read is done when the read_committed
position reaches it, that is once every transaction below it is decided (committed ones
applied, aborted ones skipped). Its last stable offset would not do: a previous owner's last
transaction is committed (``commit_transaction`` returned, the input's offsets about to become
stable) some milliseconds before its markers reach the changelog partition, and a restore that
stopped at the last stable offset then would miss that transaction's changes while the input
resumes after it. The cost: a transaction left open by a process that died is waited for until
it is aborted (its transaction timeout, or a restart with the same instance id). The last
offsets of a transactional changelog are markers, never delivered as records, which the
position moves past (the end-of-partition event says the same when no record follows).

A partition whose state was kept through a rebalance (:meth:`MemoryStore.suspend`), or whose
files a clean stop left (:mod:`streams.engine.checkpoint`), is read from where that state stood
(``resume_from``: the changelog's high watermark then, no transaction of its writer in flight)
to its end, applying only what others wrote since; it is read from the beginning, into a new
state, if the changelog does not span that offset any more (it starts after it, or ends before
it: a changelog deleted and created again).
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
    ends_reader: Any,
    timeout_s: float,
    resume_from: Mapping[tuple[str, int], int] | None = None,
) -> int:
    """Load every (changelog topic, partition) of ``stores`` into its store; returns the records
    read. ``consumer`` is read_committed with ``enable.partition.eof``; ``ends_reader`` a
    read_uncommitted client the ends (high watermarks) are asked of. Raises
    :class:`RestoreTimeout` when the ends are not reached in ``timeout_s`` (the ends' lookup,
    tried again while a new changelog has no leader yet, counts in it), :class:`EngineError`
    when the ends cannot be read in that time. ``resume_from``: the offset each resumed
    partition's held state stands at (see the module docstring)."""
    kept = dict(resume_from or {})
    for tp, store in stores.items():
        if tp not in kept:
            store.load(tp[1], ())  # held from now on, even when its changelog is empty
    deadline = time.monotonic() + timeout_s
    ends: dict[tuple[str, int], int] = {}
    starts: dict[tuple[str, int], int] = {}
    for topic, partition in stores:
        # a changelog just created may have no leader yet: tried again until the deadline
        low, high = await call_with_retry_async(
            ends_reader.get_watermark_offsets,
            TopicPartition(topic, partition),
            10.0,
            what=f"reading the ends of changelog {topic}[{partition}]",
            timeout_s=max(0.0, deadline - time.monotonic()),
        )
        start = kept.get((topic, partition))
        if start is not None and not low <= start <= high:
            # not the changelog the kept state was read from, or not all of it: replayed whole
            store = stores[(topic, partition)]
            store.drop([partition])
            store.load(partition, ())
            start = None
        if high > (low if start is None else start):
            ends[(topic, partition)] = high
            starts[(topic, partition)] = OFFSET_BEGINNING if start is None else start
    if not ends:
        return 0
    consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in ends])
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
