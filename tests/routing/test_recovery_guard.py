"""Changelog positions that table recovery may trust (streams/routing/recovery_guard.py).

The crash test lost a whole partition of the preferences table after a restart: faust's recovery
asked for the positions at its first empty wait, the consumer had already fetched the partition
(position past the commit marker) while its records were still queued, the partition was marked
read and its records were skipped. These tests replay that sequence of looks with faust's rule
(a partition whose applied offset is below its end counts as read when the reported position is
at or above the end)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust import types as faust_types

from streams.routing.faust_compat import settled_changelog_positions
from streams.routing.recovery_guard import NOT_SETTLED, SettledPositions

pytestmark = pytest.mark.unit

CHANGELOG = "router-preferences-changelog"
TP = faust_types.TP(CHANGELOG, 2)
STREAM_TP = faust_types.TP("air.account-events.v1", 2)
"""An input (stream) partition of the worker: never a changelog."""
END = 190
"""faust's highwater: the last stable offset minus one, the offset of the commit marker."""


def faust_marks_read(reported: int | None, applied: int, highwater: int) -> bool:
    """faust-streaming 0.15.3 ``Recovery._slurp_changelogs.detect_aborted_tx`` for one partition."""
    return applied < highwater and reported is not None and reported >= highwater


def test_a_partition_fetched_but_still_queued_is_not_marked_read() -> None:
    positions = SettledPositions()
    # first empty wait after the restore started (the wait count was left over from before):
    # the consumer already fetched all 190 records and the marker, none was taken from the queue
    reported = positions.look(TP, END + 1)
    assert not faust_marks_read(reported, applied=-1, highwater=END)
    # what faust did before: the raw position marks the partition read, its records are skipped
    assert faust_marks_read(END + 1, applied=-1, highwater=END)


def test_a_position_that_held_across_two_looks_ends_the_partition() -> None:
    positions = SettledPositions()
    positions.look(TP, END + 1)
    # the queued records were applied (up to offset 189, the marker is never delivered), and
    # the next look comes after another empty wait
    reported = positions.look(TP, END + 1)
    assert reported == END + 1
    assert faust_marks_read(reported, applied=END - 1, highwater=END)


def test_a_position_still_moving_counts_at_its_lower_look() -> None:
    positions = SettledPositions()
    assert positions.look(TP, 0) == NOT_SETTLED
    assert positions.look(TP, END + 1) == 0
    assert positions.look(TP, END + 1) == END + 1


def test_a_seek_or_a_rebalance_forgets_the_earlier_looks() -> None:
    positions = SettledPositions()
    positions.look(TP, END + 1)
    positions.sought([TP])
    # a new recovery sought back to 0 and fetched to the end again before this look
    assert positions.look(TP, END + 1) == NOT_SETTLED
    positions.reset()
    assert positions.look(TP, END + 1) == NOT_SETTLED
    other = faust_types.TP("router-suppression-changelog", 2)
    positions.look(other, 5)
    positions.sought([TP])
    assert positions.look(other, 5) == 5, "a seek of one partition leaves the others"


def test_no_position_is_passed_on_and_starts_over() -> None:
    positions = SettledPositions()
    positions.look(TP, END + 1)
    assert positions.look(TP, None) is None
    assert positions.look(TP, END + 1) == NOT_SETTLED


@dataclass
class FakeConsumer:
    positions: dict[Any, int] = field(default_factory=dict)
    sought: list[dict[Any, int]] = field(default_factory=list)

    async def position(self, tp: Any) -> int | None:
        return self.positions.get(tp)

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        self.sought.append(dict(partitions))
        for tp, offset in partitions.items():
            self.positions[tp] = offset


@dataclass
class FakeApp:
    consumer: FakeConsumer
    in_recovery: bool = True
    tables: Any = field(default_factory=lambda: SimpleNamespace(changelog_topics={CHANGELOG}))


def test_only_a_changelog_partition_during_a_recovery_is_held_back() -> None:
    positions = SettledPositions()
    # a stream partition: the consumer's own position, at every look, during a recovery too
    for _ in range(3):
        assert positions.for_recovery(STREAM_TP, 7, changelog=False, in_recovery=True) == 7
    # a changelog partition outside a recovery: its own position, and no look is counted
    assert positions.for_recovery(TP, END + 1, changelog=True, in_recovery=False) == END + 1
    assert positions.for_recovery(TP, END + 1, changelog=True, in_recovery=True) == NOT_SETTLED
    assert positions.for_recovery(TP, END + 1, changelog=True, in_recovery=True) == END + 1


async def test_stream_partitions_get_the_consumers_own_position() -> None:
    app = FakeApp(FakeConsumer({TP: END + 1, STREAM_TP: 42}))
    await settled_changelog_positions(app, SettledPositions(), set(), signal=None)  # type: ignore[arg-type]
    consumer: Any = app.consumer
    assert await consumer.position(STREAM_TP) == 42, "not held back at its first look"
    assert await consumer.position(TP) == NOT_SETTLED
    await consumer.seek_wait({STREAM_TP: 40})
    assert await consumer.position(STREAM_TP) == 40, "a seek moves it at once"
    app.in_recovery = False  # recovery ended: changelog positions are the consumer's own too
    assert await consumer.position(TP) == END + 1


async def test_the_worker_reports_settled_positions_to_recovery() -> None:
    app = FakeApp(FakeConsumer({TP: END + 1}))
    guard = SettledPositions()
    await settled_changelog_positions(app, guard, set(), signal=None)  # type: ignore[arg-type]
    consumer: Any = app.consumer
    assert await consumer.position(TP) == NOT_SETTLED
    assert await consumer.position(TP) == END + 1
    await consumer.seek_wait({TP: 0})
    assert app.consumer.sought == [{TP: 0}]
    app.consumer.positions[TP] = END + 1  # fetched to the end right after the seek
    assert await consumer.position(TP) == NOT_SETTLED
    # the next rebalance forgets every look and does not wrap the consumer twice
    await settled_changelog_positions(app, guard, set(), signal=None)  # type: ignore[arg-type]
    assert await consumer.position(TP) == NOT_SETTLED
    assert await consumer.position(TP) == END + 1


# ---- faust-streaming's own recovery loop, driven step by step (no broker, no clock)


@dataclass
class ChangelogEvent:
    message: Any


@dataclass
class Record:
    tp: Any
    offset: int


class ScriptedQueue:
    """The changelog queue: an empty ``get`` is the loop's 5 s wait running out."""

    def __init__(self, recovery: Any) -> None:
        self.items: list[ChangelogEvent] = []
        self.recovery = recovery

    async def get(self) -> ChangelogEvent:
        if self.items:
            return self.items.pop(0)
        if self.recovery.ended:
            self.recovery.should_stop = True
        raise TimeoutError


class FetchingConsumer:
    """Fetches the partition (records 0..2, then the commit marker at 3) during the first
    position request: the records reach the queue while faust's loop is busy asking."""

    def __init__(self, queue: ScriptedQueue) -> None:
        self.queue = queue
        self.fetched = False

    async def position(self, tp: Any) -> int:
        if not self.fetched:
            self.fetched = True
            self.queue.items.extend(ChangelogEvent(Record(tp, o)) for o in range(3))
        return 4

    async def seek_wait(self, partitions: Any) -> None:
        return None


class RecoveringTable:
    recovery_buffer_size = 1000

    def __init__(self) -> None:
        self.applied: list[int] = []

    def apply_changelog_batch(self, batch: list[ChangelogEvent]) -> None:
        self.applied.extend(e.message.offset for e in batch)

    async def on_changelog_event(self, event: ChangelogEvent) -> None:
        return None


def recovery_state(table: RecoveringTable) -> Any:
    """The attributes of ``faust.tables.recovery.Recovery`` its changelog loop uses."""
    from collections import Counter, defaultdict, deque

    from faust.tables.recovery import Recovery

    state: Any = SimpleNamespace(
        active_tps={TP},
        standby_tps=set(),
        tp_to_table={TP: table},
        active_offsets=Counter({TP: -1}),
        active_highwaters=Counter({TP: 3}),
        standby_offsets=Counter(),
        standby_highwaters=Counter(),
        _active_events_received_at={},
        _standby_events_received_at={},
        buffers=defaultdict(list),
        buffer_sizes={},
        _processing_times=deque(),
        _last_active_event_processed_at=None,
        num_samples_required_for_estimate=999,
        _actives_span=None,
        _standbys_span=None,
        signal_recovery_end=SimpleNamespace(set=lambda: None, clear=lambda: None),
        in_recovery=True,
        ended=False,
        should_stop=False,
    )
    state.tables = SimpleNamespace(standbys_ready=True, on_standbys_ready=lambda: None)
    for name in ("need_recovery", "active_remaining", "standby_remaining"):
        setattr(state, name, getattr(Recovery, name).__get__(state))
    state.standby_remaining_total = lambda: 0
    state.flush_buffers = Recovery.flush_buffers.__get__(state)

    def ended() -> None:
        state.in_recovery = state.app.in_recovery = False
        state.ended = True

    state._set_recovery_ended = ended
    queue = ScriptedQueue(state)
    state.tables.changelog_queue = queue
    state.app = SimpleNamespace(
        in_transaction=True,
        in_recovery=True,
        tables=SimpleNamespace(changelog_topics={CHANGELOG}),
        consumer=FetchingConsumer(queue),
    )
    return state


async def run_recovery_loop(state: Any) -> None:
    from faust.tables.recovery import Recovery

    slurp: Any = Recovery.__dict__["_slurp_changelogs"]
    await slurp.fun(state)


async def test_faust_alone_skips_a_partition_fetched_during_its_position_check() -> None:
    table = RecoveringTable()
    state = recovery_state(table)
    await run_recovery_loop(state)
    assert state.ended
    assert table.applied == [], "faust-streaming 0.15.3 as it is: the partition's records lost"


async def test_with_settled_positions_every_record_is_applied_before_recovery_ends() -> None:
    table = RecoveringTable()
    state = recovery_state(table)
    await settled_changelog_positions(state.app, SettledPositions(), set(), signal=None)
    await run_recovery_loop(state)
    assert state.ended
    assert table.applied == [0, 1, 2]
    assert state.active_offsets[TP] == 3
