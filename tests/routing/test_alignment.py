"""When an event may be joined: the preferences side per partition and the reference topics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.routing.alignment import (
    ReferencePartition,
    TableAlignment,
    Verdict,
    covered_through,
    reference_covers,
)

pytestmark = pytest.mark.unit

GRACE = 10.0


def verdict(
    table: TableAlignment,
    *,
    ts: int,
    end: int | None,
    committed: int | None = None,
    idle: float = 0.0,
    partition: int = 0,
) -> Verdict:
    return table.verdict(
        partition,
        event_timestamp_ms=ts,
        end_offset=end,
        committed_offset=committed,
        table_idle_s=idle,
    )


def test_an_event_waits_while_older_preferences_of_its_partition_are_unapplied() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    for offset in range(10):
        table.applied(0, offset, timestamp_ms=1_000 + offset)
    # the backlog: 100 preferences, all older than the event, 10 applied
    assert verdict(table, ts=5_000, end=100) is Verdict.WAIT
    for offset in range(10, 100):
        table.applied(0, offset, timestamp_ms=1_000 + offset)
    assert verdict(table, ts=5_000, end=100) is Verdict.CAUGHT_UP


def test_a_preference_newer_than_the_event_lets_it_go_without_catching_up() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.applied(0, 0, timestamp_ms=4_000)
    assert verdict(table, ts=5_000, end=10) is Verdict.WAIT
    table.applied(0, 1, timestamp_ms=5_000)  # same millisecond: not known to come after
    assert verdict(table, ts=5_000, end=10) is Verdict.WAIT
    table.applied(0, 2, timestamp_ms=5_001)
    assert verdict(table, ts=5_000, end=10) is Verdict.PAST


def test_partitions_are_independent() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.applied(1, 0, timestamp_ms=9_000)
    assert verdict(table, ts=5_000, end=10, partition=1) is Verdict.PAST
    assert verdict(table, ts=5_000, end=10, partition=0) is Verdict.WAIT


def test_unknown_end_waits_and_an_empty_partition_is_caught_up() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    assert verdict(table, ts=5_000, end=None) is Verdict.WAIT
    assert verdict(table, ts=5_000, end=-1) is Verdict.WAIT
    assert verdict(table, ts=5_000, end=0) is Verdict.CAUGHT_UP


def test_the_committed_offset_counts_as_applied_after_a_restart() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    # a restart: nothing applied in this run, the group committed everything before
    assert verdict(table, ts=5_000, end=500, committed=500) is Verdict.CAUGHT_UP
    assert verdict(table, ts=5_000, end=501, committed=500) is Verdict.WAIT
    table.applied(0, 500, timestamp_ms=100)
    assert verdict(table, ts=5_000, end=501, committed=500) is Verdict.CAUGHT_UP


def test_an_idle_table_below_its_end_is_caught_up_after_the_grace() -> None:
    # a transactional producer's commit marker sits at offset 10: it is never delivered
    table = TableAlignment(idle_grace_s=GRACE)
    for offset in range(10):
        table.applied(0, offset, timestamp_ms=offset)
    assert verdict(table, ts=5_000, end=11, idle=GRACE - 0.1) is Verdict.WAIT
    assert verdict(table, ts=5_000, end=11, idle=GRACE) is Verdict.IDLE
    # idleness never lets an event go while the end is unknown
    assert verdict(table, ts=5_000, end=None, idle=GRACE * 10) is Verdict.WAIT


def test_after_giving_up_the_next_events_go_until_the_partition_moves() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.applied(0, 3, timestamp_ms=1)
    assert verdict(table, ts=5_000, end=None) is Verdict.WAIT
    table.gave_up(0, committed_offset=None)
    assert verdict(table, ts=5_000, end=None) is Verdict.STALLED
    table.applied(0, 4, timestamp_ms=2)  # it moved: waiting makes sense again
    assert verdict(table, ts=5_000, end=None) is Verdict.WAIT


def test_giving_up_on_a_partition_with_nothing_applied_is_remembered_too() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.gave_up(2, committed_offset=None)
    assert verdict(table, ts=5_000, end=None, partition=2) is Verdict.STALLED


def test_forgetting_a_revoked_partition_discards_its_progress() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.applied(0, 99, timestamp_ms=9_000)
    table.forget([0])
    assert verdict(table, ts=5_000, end=100) is Verdict.WAIT
    assert table.progress(0).next_offset is None


def test_a_redelivered_older_record_does_not_move_progress_back() -> None:
    table = TableAlignment(idle_grace_s=GRACE)
    table.applied(0, 9, timestamp_ms=9_000)
    table.applied(0, 3, timestamp_ms=3_000)
    assert table.progress(0).next_offset == 10
    assert verdict(table, ts=5_000, end=100) is Verdict.PAST


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=50),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=50),
)
def test_going_never_skips_an_older_preference_when_timestamps_follow_offsets(
    stamps: list[int], event_ts: int, applied_count: int
) -> None:
    """With timestamps non-decreasing in offset order (one producer's clock), whenever the
    verdict lets the event go (idle grace not reached), every preference with a timestamp <=
    the event's is applied."""
    stamps = sorted(stamps)
    applied_count = min(applied_count, len(stamps))
    table = TableAlignment(idle_grace_s=GRACE)
    for offset in range(applied_count):
        table.applied(0, offset, stamps[offset])
    result = verdict(table, ts=event_ts, end=len(stamps))
    if result.may_go:
        assert all(offset < applied_count for offset, t in enumerate(stamps) if t <= event_ts)


# ---------------------------------------------------------------------- reference topics


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
