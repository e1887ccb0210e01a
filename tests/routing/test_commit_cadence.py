"""The commit cadence: early once caught up, at the latest every interval (pure)."""

from __future__ import annotations

import pytest

from streams.routing.commit_cadence import LIVE_LAG_RECORDS, CommitCadence, total_lag
from streams.routing.metrics import PartitionPosition

pytestmark = pytest.mark.unit


def at(next_offset: int | None, end: int | None, partition: int = 0) -> PartitionPosition:
    return PartitionPosition("air.account-events.v1", partition, end, next_offset)


def test_the_lag_is_summed_over_the_partitions_whose_positions_are_known() -> None:
    positions = [at(10, 12), at(10, 11, partition=1), at(None, 40, partition=2)]
    assert total_lag([*positions, at(3, None, partition=3), at(3, -1, partition=4)]) == 3


def test_a_position_past_the_end_seen_counts_no_lag() -> None:
    assert total_lag([at(12, 10)]) == 0  # the end is from an older fetch


ADAPTIVE = CommitCadence(max_interval_s=2.8, min_interval_s=0.05)


def test_a_live_worker_commits_after_the_minimum_interval() -> None:
    assert not ADAPTIVE.due(since_last_s=0.01, positions=[at(5, 5)])
    assert ADAPTIVE.due(since_last_s=0.05, positions=[at(5, 5)])
    # a few events on their way through the worker: still live
    in_flight = [at(5, 5 + LIVE_LAG_RECORDS // 2), at(7, 7 + LIVE_LAG_RECORDS // 2, partition=1)]
    assert ADAPTIVE.due(since_last_s=0.05, positions=in_flight)
    one_more = [*in_flight, at(0, 1, partition=2)]
    assert not ADAPTIVE.due(since_last_s=0.05, positions=one_more)


def test_a_backlog_commits_at_the_interval_only() -> None:
    backlog = [at(5, 5_000)]
    assert not ADAPTIVE.due(since_last_s=1.0, positions=backlog)
    assert ADAPTIVE.due(since_last_s=2.8, positions=backlog)


def test_without_a_minimum_the_interval_is_fixed() -> None:
    fixed = CommitCadence(max_interval_s=2.8)
    assert not fixed.adaptive
    assert fixed.tick_s == 2.8
    assert fixed.due(since_last_s=0.0, positions=[at(5, 5_000)])  # faust's timer decides
    assert ADAPTIVE.tick_s == 0.05


def test_a_minimum_not_below_the_interval_is_the_fixed_interval() -> None:
    same = CommitCadence(max_interval_s=0.5, min_interval_s=0.5)
    assert not same.adaptive
    assert same.tick_s == 0.5


@pytest.mark.parametrize(("maximum", "minimum"), [(0.0, None), (1.0, 0.0), (-1.0, 0.1)])
def test_intervals_must_be_positive(maximum: float, minimum: float | None) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        CommitCadence(max_interval_s=maximum, min_interval_s=minimum)


def test_the_worker_settings_build_the_cadence_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.routing.settings import WorkerSettings

    monkeypatch.delenv("AIR_EXSTREAM_MIN_COMMIT_INTERVAL_S", raising=False)
    monkeypatch.delenv("AIR_EXSTREAM_COMMIT_INTERVAL_S", raising=False)
    assert WorkerSettings().commit_cadence == CommitCadence(2.8, None)
    monkeypatch.setenv("AIR_EXSTREAM_MIN_COMMIT_INTERVAL_S", "0.05")
    monkeypatch.setenv("AIR_EXSTREAM_COMMIT_INTERVAL_S", "1.5")
    cadence = WorkerSettings().commit_cadence
    assert cadence == CommitCadence(1.5, 0.05)
    assert cadence.adaptive
    monkeypatch.setenv("AIR_EXSTREAM_MIN_COMMIT_INTERVAL_S", "0")
    assert not WorkerSettings().commit_cadence.adaptive
