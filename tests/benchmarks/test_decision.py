"""The decision benchmark runs both sides over the same records and checks they agree."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks import decision

pytestmark = pytest.mark.unit


def test_both_sides_write_the_same_records_and_are_reported() -> None:
    result = decision.run(events=400, repetitions=1)
    assert result["benchmark"] == "decision"
    assert result["measured"]["value"] > 0
    assert result["baseline"]["value"] > 0
    assert result["outputs"]["identical_to_baseline"] is True
    outputs = result["outputs"]
    assert outputs["commands"] > 100
    assert outputs["audit"] >= outputs["commands"]
    assert outputs["dead_letters"] > 0
    assert outputs["alerts"] > 0
    stages = result["stages_us_per_event"]
    for side in ("measured", "baseline"):
        assert set(stages[side]) == {*decision.STAGES, "total"}
        assert stages[side]["total"] > 0
    assert result["goal"]["met"] == (result["measured"]["value"] >= decision.GOAL)


def test_a_difference_in_what_the_fast_path_writes_fails_the_run() -> None:
    data = decision.dataset(300)
    records = decision.inputs(data)
    fast = decision.FastSide(data)
    # a customer's preference the baseline does not have: its commands differ
    victim = next(iter(fast.preferences))
    fast.preferences[victim] = dataclasses.replace(
        fast.preferences[victim], paperless=not fast.preferences[victim].paperless
    )
    with pytest.raises(RuntimeError, match="other records than the baseline"):
        decision.compare(records, (decision.BaselineSide(data), fast), repetitions=1)
