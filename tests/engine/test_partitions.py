"""The input partitions on plain records: each record buffered once and handed over once, in
offset order per partition and timestamp order per group, groups in turn; positions and ends
past the transaction markers once a partition is read to its end; a revocation forgets all."""

from __future__ import annotations

import pytest

from streams.engine.api import Record
from streams.engine.partitions import RUN_MAX, InputPartitions

pytestmark = pytest.mark.unit

COUNTS = {"prefs": 2, "events": 2, "rules": 1}


def _rec(topic: str, partition: int, offset: int, ts: int) -> Record:
    return Record(topic, partition, offset, None, None, None, ts)


def _parts(*tps: tuple[str, int], idle_ms: int = 1_000) -> InputPartitions:
    parts = InputPartitions(max_idle_ms=idle_ms)
    parts.assign(tps)
    parts.regroup(["prefs", "events", "rules"], COUNTS)
    return parts


def _drain(parts: InputPartitions, now_ms: int = 0) -> list[tuple[str, int, int]]:
    out = []
    while (record := parts.take_next(now_ms)) is not None:
        parts.handled(record)
        out.append((record.topic, record.partition, record.offset))
    return out


def test_groups_by_partition_count_and_number() -> None:
    parts = _parts(("prefs", 0), ("events", 0), ("prefs", 1), ("events", 1), ("rules", 0))
    assert [g.tps for g in parts.groups] == [
        [("rules", 0)],
        [("prefs", 0), ("events", 0)],
        [("prefs", 1), ("events", 1)],
    ]


def test_a_record_fetched_twice_is_buffered_once() -> None:
    parts = _parts(("events", 0))
    parts.committed(("events", 0), 5)
    assert not parts.add(_rec("events", 0, 4, 1))  # below the committed offset
    assert parts.add(_rec("events", 0, 5, 1))
    assert not parts.add(_rec("events", 0, 5, 1))  # already buffered
    assert parts.add(_rec("events", 0, 6, 1))
    assert _drain(parts) == [("events", 0, 5), ("events", 0, 6)]
    assert not parts.add(_rec("events", 0, 6, 1))  # already handled
    assert not parts.add(_rec("events", 1, 0, 1))  # not assigned


def test_a_group_merges_by_timestamp_once_every_input_is_known() -> None:
    parts = _parts(("prefs", 0), ("events", 0))
    for offset, ts in enumerate((10, 30)):
        parts.add(_rec("prefs", 0, offset, ts))
    for offset, ts in enumerate((20, 40)):
        parts.add(_rec("events", 0, offset, ts))
    parts.reached_end(("prefs", 0), 2)  # prefs read to its end: drained, it is not waited for
    assert _drain(parts) == [("prefs", 0, 0), ("events", 0, 0), ("prefs", 0, 1), ("events", 0, 1)]


def test_a_lagging_input_holds_its_group_until_the_idle_bound() -> None:
    parts = _parts(("prefs", 0), ("events", 0), ("prefs", 1), ("events", 1), idle_ms=1_000)
    parts.add(_rec("events", 0, 0, 50))  # prefs 0: nothing fetched, not at its end
    parts.add(_rec("events", 1, 0, 50))
    parts.reached_end(("prefs", 1), 0)  # prefs 1 is known empty: group 1 goes on
    assert _drain(parts, now_ms=100) == [("events", 1, 0)]
    assert _drain(parts, now_ms=1_099) == []  # still within the bound
    assert _drain(parts, now_ms=1_100) == [("events", 0, 0)]


def test_groups_take_turns() -> None:
    parts = _parts(("rules", 0), ("events", 0))
    parts.reached_end(("prefs", 0), 0)  # not assigned: ignored
    for offset in range(2):
        parts.add(_rec("rules", 0, offset, 1))
    parts.add(_rec("events", 0, 0, 1))
    assert _drain(parts) == [("rules", 0, 0), ("events", 0, 0), ("rules", 0, 1)]


def test_positions_and_ends_past_the_markers_once_read_to_the_end() -> None:
    parts = _parts(("events", 0), ("events", 1))
    parts.committed(("events", 0), 3)
    assert parts.positions() == {("events", 0): 3}
    assert parts.ends(lambda tp: -1001) == {}  # nothing fetched: unknown
    parts.add(_rec("events", 0, 3, 1))
    parts.reached_end(("events", 0), 5)  # offset 4: a commit marker
    assert parts.positions() == {("events", 0): 3}  # a record is still buffered
    assert parts.ends(lambda tp: 5) == {("events", 0): 5, ("events", 1): 5}
    _drain(parts)
    assert parts.positions() == {("events", 0): 5}
    parts.add(_rec("events", 0, 5, 1))  # new records: not at the end any more
    assert parts.ends(lambda tp: 9) == {("events", 0): 9, ("events", 1): 9}


def test_a_revocation_forgets_the_partition() -> None:
    parts = _parts(("events", 0))
    parts.committed(("events", 0), 3)
    parts.add(_rec("events", 0, 3, 1))
    parts.reached_end(("events", 0), 4)
    parts.revoke([("events", 0)])
    parts.regroup(["events"], COUNTS)
    assert parts.positions() == {}
    assert parts.ends(None) == {}
    assert not parts.has_buffered()
    assert parts.take_next(0) is None


def test_a_record_arriving_ends_the_run_of_a_choice() -> None:
    parts = _parts(("prefs", 0), ("events", 0))
    for offset, ts in enumerate((10, 20, 30, 40)):
        parts.add(_rec("events", 0, offset, ts))
    parts.reached_end(("prefs", 0), 0)
    first = parts.take_next(0)
    assert first is not None
    assert first.offset == 0
    parts.handled(first)
    # a preference older than the events still buffered goes before them
    parts.add(_rec("prefs", 0, 0, 15))
    parts.reached_end(("prefs", 0), 1)
    assert _drain(parts) == [
        ("prefs", 0, 0),
        ("events", 0, 1),
        ("events", 0, 2),
        ("events", 0, 3),
    ]


def test_a_run_gives_the_next_group_its_turn_after_run_max_records() -> None:
    parts = _parts(("prefs", 0), ("events", 0), ("prefs", 1), ("events", 1))
    for p in (0, 1):
        for offset in range(RUN_MAX + 1):
            parts.add(_rec("events", p, offset, offset))
        parts.reached_end(("prefs", p), 0)
    out = _drain(parts)
    assert [p for _t, p, _o in out[: RUN_MAX + 1]] == [0] * RUN_MAX + [1]
    assert sorted(out) == [("events", p, o) for p in (0, 1) for o in range(RUN_MAX + 1)]


def test_runs_merge_a_backlog_in_timestamp_order() -> None:
    """Interleaved timestamps over three inputs drained by runs come out in the order one choice
    per record gives (timestamp, ties to the earlier input)."""
    parts = InputPartitions(max_idle_ms=1_000)
    inputs = ["prefs", "events", "cases"]
    parts.assign([(t, 0) for t in inputs])
    parts.regroup(inputs, dict.fromkeys(inputs, 1))
    stamps = {"prefs": [1, 2, 2, 5, 9, 9], "events": [2, 3, 4, 9, 10], "cases": [1, 4, 4, 4, 11]}
    for topic, tss in stamps.items():
        for offset, ts in enumerate(tss):
            parts.add(_rec(topic, 0, offset, ts))
        parts.reached_end((topic, 0), len(tss))
    order = {t: i for i, t in enumerate(inputs)}
    expected = sorted(
        ((ts, order[t], o) for t, tss in stamps.items() for o, ts in enumerate(tss)),
    )
    got = []
    while (record := parts.take_next(0)) is not None:
        parts.handled(record)
        got.append((record.timestamp_ms, order[record.topic], record.offset))
    assert got == expected
