"""Committable offsets with batches completing out of order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sink.offsets import OffsetTracker

pytestmark = pytest.mark.unit


def test_commit_waits_for_the_oldest_batch() -> None:
    t = OffsetTracker()
    t.started(0, 0, 9)
    t.started(0, 10, 19)
    t.started(0, 22, 30)  # 20, 21: transaction markers, never delivered
    t.completed(0, 10)
    assert t.committable() == {}
    t.completed(0, 0)
    assert t.committable() == {0: 20}
    t.completed(0, 22)
    assert t.committable() == {0: 31}
    assert t.committable() == {}
    assert t.in_flight() == 0


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    t = OffsetTracker()
    t.started(0, 0, 4)
    t.started(1, 100, 104)
    t.completed(1, 100)
    assert t.committable() == {1: 105}
    t.forget({0})
    assert t.in_flight() == 0


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=30), st.randoms())
def test_never_commits_past_an_incomplete_batch(sizes: list[int], rng: random.Random) -> None:
    t = OffsetTracker()
    batches = []
    offset = 0
    for size in sizes:
        t.started(3, offset, offset + size - 1)
        batches.append((offset, offset + size - 1))
        offset += size
    order = list(range(len(batches)))
    rng.shuffle(order)
    done: set[int] = set()
    committed = 0
    for i in order:
        t.completed(3, batches[i][0])
        done.add(i)
        committed = t.committable().get(3, committed)
        first_missing = next((j for j in range(len(batches)) if j not in done), None)
        limit = batches[first_missing][0] if first_missing is not None else offset
        assert committed <= limit
    assert committed == offset
