"""The choice of a partition group's next record: smallest timestamp first, a lagging partition
waited for up to the idle bound, a partition at its end never waited for."""

from __future__ import annotations

import pytest

from streams.engine.ordering import Choice, Head, choose_next

pytestmark = pytest.mark.unit

IDLE = 1_000


def _choose(heads: list[Head], *, now: int = 0, since: int | None = None) -> Choice:
    return choose_next(heads, now_ms=now, waiting_since_ms=since, max_idle_ms=IDLE)


def test_the_smallest_timestamp_across_the_group_goes_first() -> None:
    heads = [Head("events", 50, False), Head("preferences", 20, False)]
    # preferences may go on below 50 (a tie at 50 goes to events, the earlier input)
    assert _choose(heads) == Choice("preferences", None, 49)


def test_ties_go_to_the_input_registered_first() -> None:
    heads = [Head("preferences", 20, False), Head("events", 20, False)]
    assert _choose(heads).topic == "preferences"


def test_nothing_buffered_nothing_chosen() -> None:
    heads = [Head("preferences", None, False), Head("events", None, True)]
    assert _choose(heads, since=5) == Choice(None, None)


def test_a_lagging_partition_is_waited_for() -> None:
    # preferences has nothing fetched yet but is not at its end: an earlier record may come
    heads = [Head("preferences", None, False), Head("events", 100, False)]
    assert _choose(heads, now=7) == Choice(None, 7)
    # still waiting a moment later: the wait keeps its start
    assert _choose(heads, now=7 + IDLE - 1, since=7) == Choice(None, 7)


def test_the_wait_ends_at_the_idle_bound() -> None:
    heads = [Head("preferences", None, False), Head("events", 100, False)]
    assert _choose(heads, now=7 + IDLE, since=7) == Choice("events", 7)
    # and the group keeps going without it while it lags (the wait is not restarted)
    assert _choose(heads, now=7 + 5 * IDLE, since=7) == Choice("events", 7)


def test_the_lagging_partition_arriving_ends_the_wait_and_goes_first() -> None:
    heads = [Head("preferences", 40, False), Head("events", 100, False)]
    assert _choose(heads, now=50, since=7) == Choice("preferences", None, 100)


def test_a_partition_at_its_end_is_not_waited_for() -> None:
    heads = [Head("preferences", None, True), Head("events", 100, False)]
    assert _choose(heads, now=3) == Choice("events", None)


def test_a_single_input_is_never_waited_on() -> None:
    assert _choose([Head("events", 1, False)]) == Choice("events", None)


def test_a_backlog_is_merged_by_timestamp() -> None:
    """Two buffered partitions drained by repeated choices come out in timestamp order."""
    buffers = {"a": [1, 4, 6, 9], "b": [2, 3, 7, 8]}
    out = []
    while any(buffers.values()):
        heads = [Head(t, b[0] if b else None, not b) for t, b in buffers.items()]
        choice = _choose(heads)
        assert choice.topic is not None
        out.append(buffers[choice.topic].pop(0))
    assert out == [1, 2, 3, 4, 6, 7, 8, 9]


def test_the_choice_stands_up_to_the_next_buffered_head() -> None:
    heads = [Head("preferences", 10, False), Head("events", 30, False), Head("cases", 20, False)]
    assert _choose(heads).until_ms == 20  # a tie with cases (a later input) goes to preferences
    heads = [Head("preferences", 25, False), Head("events", 10, False), Head("cases", 60, True)]
    assert _choose(heads).until_ms == 24  # a tie with preferences (earlier) does not
    # no other head buffered: no bound (while nothing arrives)
    assert _choose([Head("events", 5, False), Head("preferences", None, True)]).until_ms is None


def test_an_enforced_choice_is_bounded_by_the_buffered_heads_only() -> None:
    heads = [
        Head("preferences", None, False),
        Head("events", 100, False),
        Head("cases", 300, False),
    ]
    assert _choose(heads, now=7 + IDLE, since=7) == Choice("events", 7, 300)
