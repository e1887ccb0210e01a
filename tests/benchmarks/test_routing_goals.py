"""The routing benchmark's goals: a figure meets its target or not, and no figure never does."""

from __future__ import annotations

import pytest

from benchmarks import routing

pytestmark = pytest.mark.unit


def test_a_figure_at_or_above_a_target_meets_it() -> None:
    assert routing.goal(0.8, 0.8) == {"value": 0.8, "met": True}
    assert routing.goal(0.8, 0.79) == {"value": 0.8, "met": False}


def test_an_upper_bound_is_met_at_or_below_it() -> None:
    assert routing.goal(250.0, 250.0, at_most=True)["met"] is True
    assert routing.goal(250.0, 251.0, at_most=True)["met"] is False


def test_a_missing_figure_meets_no_goal() -> None:
    assert routing.goal(0.8, None)["met"] is False
    assert routing.goal(250.0, float("nan"), at_most=True)["met"] is False


def test_the_issue_goals_are_the_ones_checked() -> None:
    assert routing.LOOP_GOAL == 0.8
    assert routing.LATENCY_GOAL_MS == 250.0


def test_a_rate_per_cpu_second_needs_the_cores_used() -> None:
    assert routing.per_cpu_second(1000.0, {"processes": 0.5, "machine": 1.9}) == 2000.0
    assert routing.per_cpu_second(1000.0, {}) is None
    assert routing.per_cpu_second(1000.0, {"processes": 0.0}) is None
