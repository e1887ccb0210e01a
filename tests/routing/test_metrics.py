"""The routing worker's metrics objects (pure: no worker, no broker)."""

from __future__ import annotations

import pytest

from streams.metrics import parse_samples
from streams.routing.metrics import PartitionPosition, RoutingMetrics, lag

pytestmark = pytest.mark.unit


def test_lag_is_the_end_minus_the_next_offset_and_unknown_without_either() -> None:
    assert lag(PartitionPosition("t", 0, end=120, next_offset=100)) == 20
    assert lag(PartitionPosition("t", 0, end=100, next_offset=100)) == 0
    assert lag(PartitionPosition("t", 0, end=99, next_offset=100)) == 0  # stale end: never < 0
    assert lag(PartitionPosition("t", 0, end=None, next_offset=100)) is None
    assert lag(PartitionPosition("t", 0, end=-1, next_offset=100)) is None
    assert lag(PartitionPosition("t", 0, end=100, next_offset=None)) is None


def test_partitions_no_longer_assigned_lose_their_lag_series() -> None:
    metrics = RoutingMetrics()
    metrics.observe_positions([PartitionPosition("t", 0, 10, 4), PartitionPosition("t", 1, 10, 10)])
    samples = parse_samples(metrics.render())
    assert samples['air_exstream_routing_consumer_lag{partition="0",topic="t"}'] == 6
    assert samples['air_exstream_routing_consumer_lag{partition="1",topic="t"}'] == 0
    metrics.observe_positions([PartitionPosition("t", 1, 12, 10)])
    samples = parse_samples(metrics.render())
    assert 'air_exstream_routing_consumer_lag{partition="0",topic="t"}' not in samples
    assert samples['air_exstream_routing_consumer_lag{partition="1",topic="t"}'] == 2


def test_decisions_tables_and_the_commit_deadline() -> None:
    metrics = RoutingMetrics(commit_deadline_s=10.0)
    metrics.decided("event", "command", 3)
    metrics.decided("event", "suppressed", 0)  # nothing to count: no series created
    metrics.observe_tables({"preferences": 7})
    metrics.commit_duration.observe(0.02)
    samples = parse_samples(metrics.render())
    assert samples['air_exstream_routing_decisions_total{flow="event",outcome="command"}'] == 3
    assert not any('outcome="suppressed"' in k for k in samples)
    assert samples['air_exstream_routing_table_entries{table="preferences"}'] == 7
    assert samples["air_exstream_routing_commit_deadline_seconds"] == 10
    assert samples['air_exstream_routing_commit_duration_seconds_bucket{le="0.025"}'] == 1
