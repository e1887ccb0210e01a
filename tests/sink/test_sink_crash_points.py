"""The sink's own no-duplicate design at each crash point, in process, on the real broker.

The emulator composes whatever it is sent, so each test counts its ledger: a crash after the
submission but before the offset commit, a crash after the intent was recorded but before the
submission, an answer lost after Exstream did the work; and the restarted sink cuts its batches
differently from the first one (another batch size), as a restart with other fetch sizes would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Producer

from streams.codec import codec_for
from streams.domain.records import CompositionCommand
from streams.exstream.errors import ExstreamTimeout
from streams.simulator.generator import template_catalogue
from streams.sink.runner import Sink, SinkSettings
from streams.templatesync.mapping import template_key
from tests.conftest import KafkaCluster
from tests.exstream.emulated import Emulated, emulated
from tests.exstream.templates import synced
from tests.sink.test_sink_e2e import make_commands
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

N = 120
TEMPLATES = {template_key(t): t for t in synced(template_catalogue())}


@pytest.fixture
async def world(
    kafka: KafkaCluster,
) -> AsyncIterator[tuple[Emulated, Topology, list[CompositionCommand]]]:
    topology = load_topology("local", prefix=f"crash{uuid.uuid4().hex[:6]}.")
    apply_topology({"bootstrap.servers": kafka.bootstrap_servers}, topology)
    commands = make_commands(N, seed=5)
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    codec = codec_for(CompositionCommand)
    for c in commands:
        producer.produce(
            topology.name(names.COMMANDS), key=c.customer_id.encode(), value=codec.encode(c)
        )
    assert producer.flush(30) == 0
    async for exstream in emulated(with_events=False):
        yield exstream, topology, commands


class Running:
    def __init__(self, sink: Sink, task: asyncio.Task[None], consumer: Any, producer: Any) -> None:
        self.sink, self.task, self.consumer, self.producer = sink, task, consumer, producer

    async def crash(self) -> None:
        """Gone without draining or committing (what SIGKILL leaves behind)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.close()

    async def finish(self) -> None:
        self.sink.stop()
        await asyncio.wait_for(self.task, 60)
        await self.close()

    async def close(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()
        await self.sink.client.close()


async def start(
    kafka: KafkaCluster, exstream: Emulated, topology: Topology, group: str, batch_size: int
) -> Running:
    kwargs: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap_servers}
    consumer = AIOKafkaConsumer(
        **kwargs,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    settings = SinkSettings(
        commands_topic=topology.name(names.COMMANDS),
        submissions_topic=topology.name(names.SUBMISSIONS),
        batches_topic=topology.name(names.SINK_BATCHES),
        group_id=group,
        batch_size=batch_size,
        lookup_grace_s=0.05,
    )
    sink = Sink(
        settings,
        exstream.client(),
        consumer,
        producer,
        templates=TEMPLATES,  # type: ignore[arg-type]
        consumer_kwargs=kwargs,
    )
    return Running(sink, asyncio.ensure_future(sink.run()), consumer, producer)


async def until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def settle(exstream: Emulated) -> None:
    await asyncio.sleep(0.2)  # jobs run in the background
    for job in exstream.runtime.jobs.values():
        assert job.status in ("complete", "error", "canceled", "waiting", "started")


async def test_crash_after_submission_before_commit(kafka: KafkaCluster, world: Any) -> None:
    exstream, topology, _commands = world
    group = f"g-{uuid.uuid4().hex[:6]}"
    first = await start(kafka, exstream, topology, group, batch_size=10)

    async def no_commit() -> None:
        return None

    first.sink._commit = no_commit  # type: ignore[method-assign]
    await until(lambda: first.sink.metrics["commands_accepted"] == N)
    await first.crash()
    await settle(exstream)
    assert exstream.runtime.ledger.summary()["documents"] == N
    jobs_before = len(exstream.runtime.jobs)

    second = await start(kafka, exstream, topology, group, batch_size=7)  # other boundaries
    await until(lambda: second.sink.metrics["commands_accepted"] == N)
    await second.finish()
    await settle(exstream)
    assert second.sink.metrics["submissions"] == 0
    assert second.sink.metrics["batches_found_at_exstream"] == jobs_before
    assert len(exstream.runtime.jobs) == jobs_before
    assert exstream.runtime.ledger.twice() == []
    assert exstream.runtime.ledger.summary()["documents"] == N


async def test_crash_after_the_intent_before_the_submission(
    kafka: KafkaCluster, world: Any
) -> None:
    exstream, topology, _commands = world
    group = f"g-{uuid.uuid4().hex[:6]}"
    first = await start(kafka, exstream, topology, group, batch_size=30)
    held = asyncio.Event()

    async def never(*args: Any, **kwargs: Any) -> Any:
        await held.wait()

    first.sink._send = never  # type: ignore[method-assign]

    def intended() -> int:
        return sum(len(r) for r in first.sink.intents._open.values())

    await until(
        lambda: (
            first.sink.metrics["commands_read"] == N and intended() == len(first.sink._inflight) > 0
        )
    )
    batches = intended()
    await first.crash()
    assert exstream.runtime.jobs == {}

    second = await start(kafka, exstream, topology, group, batch_size=11)
    await until(lambda: second.sink.metrics["commands_accepted"] == N)
    await second.finish()
    await settle(exstream)
    assert second.sink.metrics["batches_recovered"] == batches
    assert second.sink.metrics["lookups"] >= batches
    assert second.sink.metrics["batches_found_at_exstream"] == 0
    assert exstream.runtime.ledger.twice() == []
    assert exstream.runtime.ledger.summary()["documents"] == N


async def test_an_answer_lost_after_exstream_did_the_work(kafka: KafkaCluster, world: Any) -> None:
    exstream, topology, _commands = world
    group = f"g-{uuid.uuid4().hex[:6]}"
    running = await start(kafka, exstream, topology, group, batch_size=20)
    orchestration = running.sink.client.orchestration
    real = orchestration.submit_batch
    lost = {"left": 3}

    async def lose_the_answer(driver: bytes, *, external_id: str) -> str:
        job_id = await real(driver, external_id=external_id)
        if lost["left"] > 0:
            lost["left"] -= 1
            raise ExstreamTimeout("connection lost during batch submission")
        return job_id

    orchestration.submit_batch = lose_the_answer  # type: ignore[method-assign]
    await until(lambda: running.sink.metrics["commands_accepted"] == N)
    await running.finish()
    await settle(exstream)
    assert running.sink.metrics["batches_found_at_exstream"] == 3
    assert exstream.runtime.ledger.twice() == []
    assert exstream.runtime.ledger.summary()["documents"] == N
