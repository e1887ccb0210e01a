"""Cutting fetched commands into batches, with the ranges recovered after a restart (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sink.batching import Batcher, Range, batch_id

pytestmark = pytest.mark.unit


def decode(o: int) -> str:
    if o < 0:
        raise ValueError("bad record")
    return f"c{o}"


def cuts(batcher: Batcher[int, str], *fetches: list[int]) -> list[tuple[int, int, bool, int]]:
    out = []
    for records in fetches:
        for c in batcher.feed(records, abs, decode):
            out.append((c.first, c.last, c.recovered, len(c.items) if c.bad is None else -1))
    return out


def test_free_batches_are_bounded_and_closed_at_the_end_of_a_fetch() -> None:
    assert cuts(Batcher(3), [0, 1, 2, 3, 4], [5, 6]) == [
        (0, 2, False, 3),
        (3, 4, False, 2),
        (5, 6, False, 2),
    ]


def test_a_bad_record_is_its_own_unit_between_batches() -> None:
    assert cuts(Batcher(10), [0, 1, -2, 3]) == [
        (0, 1, False, 2),
        (2, 2, False, -1),
        (3, 3, False, 1),
    ]


def test_recovered_ranges_are_cut_exactly_whatever_the_fetches() -> None:
    batcher: Batcher[int, str] = Batcher(2, [Range(0, 4), Range(5, 5)])
    assert cuts(batcher, [0, 1], [2, 3, 4, 5, 6, 7, 8]) == [
        (0, 4, True, 5),
        (5, 5, True, 1),
        (6, 7, False, 2),
        (8, 8, False, 1),
    ]


def test_gaps_in_offsets_inside_a_recovered_range() -> None:
    # transaction markers take offsets that are never delivered
    batcher: Batcher[int, str] = Batcher(10, [Range(10, 14)])
    assert cuts(batcher, [10, 12], [14, 16]) == [(10, 14, True, 3), (16, 16, False, 1)]


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
    fetches=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=30),
    size=st.integers(min_value=1, max_value=10),
)
def test_after_a_restart_the_same_ranges_and_ids_come_back(
    sizes: list[int], fetches: list[int], size: int
) -> None:
    """Ranges cut before a crash, recovered, are cut again identically from any fetch sizes, and
    records after them are covered once."""
    offsets = list(range(sum(sizes) + 20))
    ranges, start = [], 0
    for n in sizes:
        ranges.append(Range(start, start + n - 1))
        start += n
    batcher: Batcher[int, str] = Batcher(size, ranges)
    got, i = [], 0
    for n in fetches:
        got += batcher.feed(offsets[i : i + n], abs, decode)
        i += n
    got += batcher.feed(offsets[i:], abs, decode)
    recovered = [(c.first, c.last) for c in got if c.recovered]
    assert recovered == [(r.first, r.last) for r in ranges]
    covered = sorted(o for c in got for o, _ in ((r, 0) for r, _ in c.items))
    assert covered == offsets
    ids = {batch_id("g", "t", 0, c.first, c.last) for c in got}
    assert len(ids) == len(got)
