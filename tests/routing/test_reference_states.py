"""What a reference view reports for the join's order, from its consumer's fetch state."""

from __future__ import annotations

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
