"""The engine's own cost: records copied unchanged through it (:mod:`streams.engine`) against the
plain confluent-kafka transactional loop (:mod:`benchmarks.txn_loop`'s shape) on the same
records, in the same run (issue 14).

``python -m benchmarks engine_passthrough`` (``BENCH_ENGINE_RECORDS``, default 50,000;
``BENCH_REPETITIONS``, default 3). The records are published once to an input topic of
``PARTITIONS`` partitions; then, per repetition, each side copies all of them (key, value,
headers, same partition) to a fresh output topic with exactly-once transactions (a consumer group
of its own, ``send_offsets_to_transaction``, acks=all, idempotent, linger.ms=5): the loop
consumes batches of 500 and commits one transaction per batch; the engine (max_batch=500, one
input handler that calls ``outputs.send``) commits per its policy. Records/s over the window from
the 10 % record handed over to the last transaction committed (the engine's: when it stops and
revokes, after its final commit); the median of the repetitions, the side that runs first
alternating.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.common import broker, copy_record, machine, median
from streams.engine.api import Record
from streams.engine.engine import Engine, EngineConfig

PARTITIONS = 6
BATCH = 500
VALUE = b"x" * 200


def _records() -> int:
    return int(os.environ.get("BENCH_ENGINE_RECORDS", "50000"))


def _repetitions() -> int:
    return int(os.environ.get("BENCH_REPETITIONS", "3"))


def create_topic(conf: dict[str, str], name: str) -> str:
    admin = AdminClient({**conf})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)
    return name


def publish(conf: dict[str, str], topic: str, n: int) -> None:
    producer = Producer({**conf, "acks": "all", "linger.ms": 20})
    for i in range(n):
        while True:
            try:
                producer.produce(
                    topic, key=f"k{i % 1000}".encode(), value=VALUE, headers=[("h", b"v")]
                )
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(60):
        raise RuntimeError("input records not delivered")


def loop_once(conf: dict[str, str], source: str, n: int, timeout_s: float = 300.0) -> float:
    """The plain transactional loop; records/s."""
    out = create_topic(conf, f"bench-engine-loop-{uuid.uuid4().hex[:8]}")
    group = f"bench-engine-loop-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {
            **conf,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer = Producer(
        {**conf, "transactional.id": group, "acks": "all", "enable.idempotence": True}
        | {"linger.ms": 5}
    )
    producer.init_transactions(30)
    consumer.subscribe([source])
    copied = 0
    start: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout_s
    try:
        while copied < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the loop copied {copied} of {n} in {timeout_s} s")
            msgs = consumer.consume(BATCH, timeout=0.2)
            if not msgs:
                continue
            producer.begin_transaction()
            for msg in msgs:
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                copy_record(producer, out, msg)
                copied += 1
                if start is None and copied >= n // 10:
                    start = (time.monotonic(), copied)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
            )
            producer.commit_transaction()
        end = time.monotonic()
    finally:
        consumer.close()
        producer.close()
    assert start is not None
    return (copied - start[1]) / max(end - start[0], 1e-9)


def engine_once(conf: dict[str, str], source: str, n: int, timeout_s: float = 300.0) -> float:
    """The engine copying the records; records/s."""
    out = create_topic(conf, f"bench-engine-out-{uuid.uuid4().hex[:8]}")
    engine = Engine(
        EngineConfig(
            app_id=f"bench-engine-{uuid.uuid4().hex[:8]}",
            kafka=conf,
            instance_id="0",
            max_batch=BATCH,
        )
    )
    copied = 0
    start: list[tuple[float, int]] = []
    end: list[float] = []
    stop = asyncio.Event()

    async def copy(record: Record) -> None:
        nonlocal copied
        engine.outputs.send(
            out, record.value, key=record.key, partition=record.partition, headers=record.headers
        )
        copied += 1
        if not start and copied >= n // 10:
            start.append((time.monotonic(), copied))
        if copied >= n:
            stop.set()

    def revoked(_partitions: frozenset[int]) -> None:
        if copied >= n and not end:
            end.append(time.monotonic())  # the final transaction is committed before this

    engine.input(source, copy)
    engine.on_revoked(revoked)

    async def run() -> None:
        await asyncio.wait_for(engine.run(stop), timeout_s)

    asyncio.run(run())
    if copied < n or not start or not end:
        raise RuntimeError(f"the engine copied {copied} of {n}")
    return (copied - start[0][1]) / max(end[0] - start[0][0], 1e-9)


def run() -> dict[str, Any]:
    n, repetitions = _records(), _repetitions()
    with broker() as bootstrap:
        conf = {"bootstrap.servers": bootstrap}
        source = create_topic(conf, f"bench-engine-in-{uuid.uuid4().hex[:8]}")
        publish(conf, source, n)
        measured: list[float] = []
        baseline: list[float] = []
        for rep in range(repetitions):  # alternate which side runs first (a warm broker)
            if rep % 2:
                measured.append(engine_once(conf, source, n))
                baseline.append(loop_once(conf, source, n))
            else:
                baseline.append(loop_once(conf, source, n))
                measured.append(engine_once(conf, source, n))
    m, b = median(measured), median(baseline)
    return {
        "benchmark": "engine_passthrough",
        "unit": "records/s",
        "measured": {
            "what": "streams.engine copying records unchanged (one handler, outputs.send)",
            "value": m,
            "runs": measured,
        },
        "baseline": {
            "what": "plain confluent-kafka transactional loop, batches of 500",
            "value": b,
            "runs": baseline,
        },
        "ratio": m / b if b else None,
        "config": {
            "records": n,
            "partitions": PARTITIONS,
            "batch": BATCH,
            "value_bytes": len(VALUE),
            "repetitions": repetitions,
        },
        "machine": machine(),
    }
