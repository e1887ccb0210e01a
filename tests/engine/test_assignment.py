"""The partition numbers held: those of the inputs partitioned like the stores; a one-partition
reference topic's partition 0 does not make customer partition 0 held."""

from __future__ import annotations

import pytest

from streams.engine.assignment import held_numbers

pytestmark = pytest.mark.unit

COUNTS = {"events": 6, "preferences": 6, "rules": 1}


def test_numbers_of_the_inputs_partitioned_like_the_stores() -> None:
    assigned = [("events", 3), ("preferences", 3), ("events", 4), ("rules", 0)]
    assert held_numbers(assigned, COUNTS, [6, 6]) == {3, 4}


def test_without_stores_every_input_counts() -> None:
    assert held_numbers([("events", 3), ("rules", 0)], COUNTS, []) == {0, 3}


def test_stores_partitioned_like_no_input_fall_back_to_every_input() -> None:
    assert held_numbers([("events", 3), ("rules", 0)], COUNTS, [12]) == {0, 3}


def test_nothing_assigned_nothing_held() -> None:
    assert held_numbers([], COUNTS, [6]) == set()
