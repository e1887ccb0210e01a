"""The sink's recovery on an assignment is bounded: a read of the intents topic that hangs is tried
again, three hangs stop the sink instead of waiting for ever; and its progress line counts work
without naming any record."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from streams.sink import runner
from streams.sink.batching import Range
from streams.sink.runner import Sink, SinkSettings

pytestmark = pytest.mark.component


class _Consumer:
    async def committed(self, tp: Any) -> int | None:
        return 7 if tp.partition == 0 else None


class _Intents:
    """Hangs on the first ``hangs`` loads (or fails with a Kafka error, ``fails``), then answers
    ``ranges``."""

    def __init__(self, hangs: int, ranges: dict[int, list[Range]], fails: bool = False) -> None:
        self.hangs = hangs
        self.ranges = ranges
        self.fails = fails
        self.calls: list[dict[int, int]] = []

    async def load(
        self, consumer_kwargs: dict[str, object], committed: dict[int, int]
    ) -> dict[int, list[Range]]:
        self.calls.append(dict(committed))
        if len(self.calls) <= self.hangs:
            if self.fails:
                raise KafkaError("Unable to get cluster metadata over all known brokers")
            await asyncio.Event().wait()
        return self.ranges


def _sink(intents: _Intents) -> Sink:
    settings = SinkSettings(
        commands_topic="c",
        submissions_topic="s",
        batches_topic="b",
        recover_timeout_s=0.05,
        batch_size=10,
    )
    sink = Sink(settings, client=Any, consumer=_Consumer(), producer=Any)  # type: ignore[arg-type]
    sink.intents = intents  # type: ignore[assignment]
    return sink


async def test_a_hung_read_of_the_intents_is_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    intents = _Intents(hangs=2, ranges={0: [Range(7, 9)]})
    sink = _sink(intents)
    with caplog.at_level(logging.WARNING, logger="streams.sink.runner"):
        await sink.recover({0, 1})
    assert intents.calls == [{0: 7, 1: 0}] * 3
    assert sum("try 1 of 3" in r.message or "try 2 of 3" in r.message for r in caplog.records) == 2
    assert sink.metrics["batches_recovered"] == 1
    assert set(sink._batchers) == {0, 1}
    assert "partitions [0, 1]" in sink.progress()
    assert "assigned" in sink.progress()


async def test_three_hung_reads_stop_the_recovery() -> None:
    intents = _Intents(hangs=3, ranges={})
    sink = _sink(intents)
    with pytest.raises(TimeoutError):
        await sink.recover({0})
    assert len(intents.calls) == 3
    assert "recovering or unassigned" in sink.progress()


async def test_a_kafka_error_while_reading_the_intents_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broker just back (no metadata yet) made the read fail at once: tried again after a
    pause, never more than three times."""
    monkeypatch.setattr(runner, "RECOVER_RETRY_PAUSE_S", 0.0)
    intents = _Intents(hangs=2, ranges={0: [Range(7, 9)]}, fails=True)
    sink = _sink(intents)
    await sink.recover({0})
    assert len(intents.calls) == 3
    assert sink.metrics["batches_recovered"] == 1
    failing = _Intents(hangs=3, ranges={}, fails=True)
    with pytest.raises(KafkaError):
        await _sink(failing).recover({0})
    assert len(failing.calls) == 3
