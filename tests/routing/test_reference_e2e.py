from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streams.codec import DecodeError
from streams.routing.alignment import reference_covers
from streams.routing.reference import ReferenceView
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e


def _decode(value: bytes, _headers: list[tuple[str, bytes]]) -> str:
    if value.startswith(b"!"):
        raise DecodeError("DECODE_ERROR", "deliberately undecodable")
    return value.decode()


async def test_view_loads_latest_values_applies_tombstones_and_stays_live(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
) -> None:
    topic = topic_factory("ref", partitions=2, config={"cleanup.policy": "compact"})
    producer = producer_factory()
    for key, value in [("a", b"1"), ("b", b"1"), ("a", b"2"), ("c", b"!bad"), ("b", None)]:
        producer.produce(topic, key=key.encode(), value=value)
    producer.flush(30)

    invalid: list[int] = []
    view: ReferenceView[str] = ReferenceView(
        topic=topic,
        bootstrap_servers=kafka.bootstrap_servers,
        decode=_decode,
        on_invalid=lambda _t, _p, offset, _k, _v, _e: invalid.append(offset),
    )
    task = asyncio.create_task(view.run())
    try:
        await view.wait_ready(30)
        assert view.get("a") == "2"
        assert view.get("b") is None
        assert view.get("c") is None
        assert len(invalid) == 1
        version = view.version

        producer.produce(topic, key=b"d", value=b"live")
        producer.flush(30)
        for _ in range(100):
            if view.get("d") == "live":
                break
            await asyncio.sleep(0.1)
        assert view.get("d") == "live"
        assert view.version > version
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_view_of_an_empty_topic_is_ready_at_once(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("empty")
    view: ReferenceView[str] = ReferenceView(
        topic=topic, bootstrap_servers=kafka.bootstrap_servers, decode=_decode, partitions=1
    )
    task = asyncio.create_task(view.run())
    try:
        await view.wait_ready(30)
        assert len(view) == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_observation_asked_for_comes_back_sooner_than_the_long_poll(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
) -> None:
    """With a long fetch wait the view's own fetches observe a quiet topic's ends seldom; an
    observation asked for answers from the second client (not queued behind the long poll)
    with the ends as they are, and wakes the waiters."""
    topic = topic_factory("observed", partitions=2, config={"cleanup.policy": "compact"})
    producer = producer_factory()
    for key in ("a", "b", "c"):
        producer.produce(topic, key=key.encode(), value=b"1")
    producer.flush(30)
    woken: list[float] = []
    view: ReferenceView[str] = ReferenceView(
        topic=topic,
        bootstrap_servers=kafka.bootstrap_servers,
        decode=_decode,
        fetch_wait_ms=20_000,
        on_progress=lambda: woken.append(time.monotonic()),
    )
    task = asyncio.create_task(view.run())
    try:
        await view.wait_ready(30)
        for _ in range(50):  # the first empty fetches after the load come back
            if len(woken) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the view's fetch is now parked for up to 20 s
        asked_ms, asked = int(time.time() * 1000), time.monotonic()
        view.request_observation()
        for _ in range(1000):  # at most 10 s: half the long poll
            if woken[-1] >= asked:
                break
            await asyncio.sleep(0.01)
        answered_s = woken[-1] - asked
        assert answered_s >= 0, "no answer woke the waiters"
        states = view.partition_states()
        assert sum(s.end_offset or 0 for s in states) == 3
        assert all((s.observed_at_ms or 0) >= asked_ms for s in states)
        assert reference_covers(states, event_timestamp_ms=asked_ms, arrived_at_ms=asked_ms)
        assert answered_s < 10, f"the answer took {answered_s:.1f} s: queued behind the fetch?"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
