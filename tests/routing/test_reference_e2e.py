from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from streams.codec import DecodeError
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
