"""The recovery benchmark's reading of the engine worker's log: when a start is ready."""

from __future__ import annotations

from datetime import datetime

import pytest

from benchmarks import recovery

pytestmark = pytest.mark.unit

STARTED = datetime(2026, 1, 2, 3, 4, 5).timestamp()


def _line(seconds: float, message: str) -> str:
    stamp = datetime.fromtimestamp(STARTED + seconds).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"[{stamp}] [4242] [INFO] {message}"


def test_ready_once_every_partition_is_restored() -> None:
    lines = [
        _line(0.5, "routing worker on the engine: app bench-rec, instance 1a2b"),
        _line(1.25, "engine bench-rec: assigned partitions [0, 1, 2, 3, 4, 5]"),
        _line(4.0, "engine bench-rec: restored 1000 changelog records of partitions "
              "[0, 1, 2, 3, 4, 5] in 2.7 s"),
    ]  # fmt: skip
    found = recovery.restored(lines, STARTED)
    assert found == recovery.Recovery(ready_s=4.0, recovery_s=2.75, read_s=2.7, records=1000)


def test_restores_of_several_assignments_add_up() -> None:
    lines = [
        _line(1.0, "engine a: assigned partitions [0, 1, 2]"),
        _line(2.0, "engine a: restored 10 changelog records of partitions [0, 1, 2] in 0.9 s"),
        _line(2.5, "engine a: assigned partitions [3, 4, 5]"),
    ]
    assert recovery.restored(lines, STARTED) is None  # half the partitions
    lines.append(
        _line(3.0, "engine a: restored 5 changelog records of partitions [3, 4, 5] in 0.4 s")
    )
    found = recovery.restored(lines, STARTED)
    assert found is not None
    assert (found.ready_s, found.recovery_s, found.records) == (3.0, 2.0, 15)
    assert found.read_s == pytest.approx(1.3)


def test_not_ready_without_an_assignment_or_a_restore() -> None:
    assert recovery.restored([], STARTED) is None
    assert recovery.restored([_line(1.0, "engine a: assigned partitions [0, 1]")], STARTED) is None


def test_a_reassignment_is_restored_once_its_own_partitions_are() -> None:
    lines = [
        _line(1.0, "engine a: revoked partitions [0, 1, 2, 3, 4, 5]"),
        _line(2.0, "engine a: assigned partitions [0, 1, 2]"),
        _line(2.1, "engine a: restored 0 changelog records of partitions [0, 1] in 0.0 s "
              "(the state of [0, 1] kept through the rebalance)"),
    ]  # fmt: skip
    assert recovery.reassigned(lines) is None  # partition 2 not yet
    lines.append(_line(2.5, "engine a: restored 7 changelog records of partitions [2] in 0.3 s"))
    found = recovery.reassigned(lines)
    assert found is not None
    partitions, restore = found
    assert partitions == frozenset({0, 1, 2})
    assert (restore.records, restore.recovery_s) == (7, 0.5)
    assert restore.read_s == pytest.approx(0.3)
