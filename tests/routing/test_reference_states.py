"""What a reference view reports for the join's order, from its consumer's fetch state."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams.routing.alignment import ReferencePartition, reference_covers
from streams.routing.reference import ReferenceView

pytestmark = pytest.mark.unit


class FetchState:
    """The three things the view asks its aiokafka consumer."""

    def __init__(self, lso: dict[int, int], polled_at: dict[int, int]) -> None:
        self.lso, self.polled_at = lso, polled_at

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("rules", p) for p in self.lso}

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self.lso[tp.partition]

    def last_poll_timestamp(self, tp: TopicPartition) -> int:
        return self.polled_at[tp.partition]


def view() -> ReferenceView[bytes]:
    return ReferenceView(topic="rules", bootstrap_servers="unused:9092", decode=lambda v, h: v)


def test_a_view_not_running_holds_no_event_up() -> None:
    assert view().partition_states() == []
    assert reference_covers([], event_timestamp_ms=1, arrived_at_ms=1)


def test_states_combine_applied_positions_with_the_fetch_state() -> None:
    v = view()
    consumer: Any = FetchState(lso={0: 7, 1: 3}, polled_at={0: 5_000, 1: 5_100})
    v._consumer = consumer
    v._positions = {0: 7, 1: 2}
    v._last_timestamps = {0: 4_000}
    states = sorted(v.partition_states(), key=lambda s: s.end_offset or 0)
    assert states == [
        ReferencePartition(position=2, end_offset=3, observed_at_ms=5_100, last_timestamp_ms=None),
        ReferencePartition(position=7, end_offset=7, observed_at_ms=5_000, last_timestamp_ms=4_000),
    ]
    # partition 1 has a record left to apply: an event after it waits
    assert not reference_covers(states, event_timestamp_ms=4_500, arrived_at_ms=4_600)
    v._positions[1] = 3
    assert reference_covers(v.partition_states(), event_timestamp_ms=4_500, arrived_at_ms=4_600)


class AskableFetchState(FetchState):
    """A fetch state that also answers the view's question for the ends (ListOffsets)."""

    def __init__(self, lso: dict[int, int], polled_at: dict[int, int], ends: dict[int, int]):
        super().__init__(lso, polled_at)
        self.ends, self.asked = ends, 0

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += 1
        await asyncio.sleep(0)
        return {tp: self.ends[tp.partition] for tp in tps}


async def test_an_observation_asked_for_replaces_an_older_fetch_observation() -> None:
    progressed: list[int] = []
    v = ReferenceView(
        topic="rules",
        bootstrap_servers="unused:9092",
        decode=lambda val, h: val,
        on_progress=lambda: progressed.append(1),
    )
    consumer: Any = AskableFetchState(lso={0: 7}, polled_at={0: 5_000}, ends={0: 8})
    v._consumer = v._prober = consumer  # one fake for both clients
    v._positions = {0: 7}
    before = int(time.time() * 1000)
    # an event that arrived after the last fetch is not covered by it
    assert not reference_covers(v.partition_states(), event_timestamp_ms=before,
                                arrived_at_ms=before)  # fmt: skip
    v.request_observation()
    v.request_observation()  # before the first is sent: the same question answers both
    await asyncio.sleep(0)  # the question is sent
    v.request_observation()  # while one is in flight: one more after it, not two at once
    for _ in range(10):
        await asyncio.sleep(0)
    assert (consumer.asked, len(progressed)) == (2, 2)
    [state] = v.partition_states()
    assert state.end_offset == 8
    assert (state.observed_at_ms or 0) >= before
    # the asked-for end shows one more record to apply: the event still waits for it
    assert not reference_covers([state], event_timestamp_ms=before, arrived_at_ms=before)
    v._positions = {0: 8}
    assert reference_covers(v.partition_states(), event_timestamp_ms=before, arrived_at_ms=before)
    # a later fetch observation wins again
    consumer.lso, consumer.polled_at = {0: 9}, {0: int(time.time() * 1000) + 1_000}
    assert v.partition_states()[0].end_offset == 9
