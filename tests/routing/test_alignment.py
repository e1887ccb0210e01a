"""When an event may be joined with the reference topics (rules and templates)."""

from __future__ import annotations

import pytest

from streams.routing.alignment import (
    ReferencePartition,
    covered_through,
    reference_covers,
)

pytestmark = pytest.mark.unit


def part(
    position: int | None = 5,
    end: int | None = 5,
    observed: int | None = 10_000,
    last: int | None = 1_000,
) -> ReferencePartition:
    return ReferencePartition(
        position=position, end_offset=end, observed_at_ms=observed, last_timestamp_ms=last
    )


def test_a_reference_view_applied_to_an_end_observed_after_the_event_covers_it() -> None:
    assert reference_covers([part(), part()], event_timestamp_ms=9_000, arrived_at_ms=9_500)


def test_an_end_observed_before_the_event_may_miss_a_rule_published_just_before_it() -> None:
    assert not reference_covers(
        [part(observed=8_999)], event_timestamp_ms=9_000, arrived_at_ms=9_500
    )


def test_records_left_to_apply_keep_the_event_waiting() -> None:
    for parts in (
        [part(position=4)],
        [part(), part(position=None)],
        [part(end=None)],
        [part(observed=None)],
    ):
        assert not reference_covers(parts, event_timestamp_ms=9_000, arrived_at_ms=9_500)


def test_a_newer_reference_record_covers_the_event_whatever_is_left() -> None:
    assert reference_covers(
        [part(position=1, end=50, observed=None, last=9_001)],
        event_timestamp_ms=9_000,
        arrived_at_ms=9_500,
    )


def test_a_producer_clock_ahead_of_the_worker_does_not_make_events_wait() -> None:
    # event stamped one hour in the worker's future: an observation after its arrival suffices
    ahead = 10_000 + 3_600_000
    assert reference_covers([part(observed=10_000)], event_timestamp_ms=ahead, arrived_at_ms=9_900)


def test_states_caught_up_at_their_observations_prove_the_earliest_of_those_times() -> None:
    assert covered_through([part(observed=10_000), part(observed=9_000)]) == 9_000
    for states in (
        [],
        [part(), part(position=4)],
        [part(end=None)],
        [part(position=None)],
        [part(observed=None)],
    ):
        assert covered_through(states) is None


def test_what_is_proven_is_what_reference_covers_says_with_the_same_states() -> None:
    states = [part(observed=10_000), part(observed=9_000)]
    through = covered_through(states)
    assert through is not None
    assert reference_covers(states, event_timestamp_ms=through, arrived_at_ms=through + 1)
    assert not reference_covers(states, event_timestamp_ms=through + 1, arrived_at_ms=through + 1)
