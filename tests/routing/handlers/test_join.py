"""The join admission over plain fakes: when an event (or a document request) may be decided,
what wakes it, and what a rebalance or a wait that runs out does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from streams.routing.alignment import ReferencePartition, TableAlignment, Verdict
from streams.routing.handlers.join import JoinAdmission
from streams.routing.handlers.ports import InputRecord
from streams.routing.join_gate import GateCounters, JoinGate, ProgressSignal
from tests.domain.factories import T0
from tests.routing.handlers.fakes import Record

pytestmark = pytest.mark.unit

GRACE_S = 5.0
EVENTS = "air.account-events.v1"
PREFS = "air.preferences.v1"


@dataclass
class Clock:
    now: float = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return T0 + 60_000  # the worker's clock: after every record's timestamp here


@dataclass
class Positions:
    ends: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)

    def end_offset(self, partition: int) -> int | None:
        return self.ends.get(partition)

    def committed_offset(self, partition: int) -> int | None:
        return self.committed.get(partition)


@dataclass
class Generations:
    rebalanced: bool = False
    left: list[int] = field(default_factory=list)

    def is_current(self, record: InputRecord) -> bool:
        return not self.rebalanced

    def leave_for_reread(self, record: InputRecord) -> None:
        self.left.append(record.offset)


@dataclass
class View:
    states: list[ReferencePartition] = field(default_factory=list)
    """No partition: the view covers every event (a view whose consumer is not running)."""

    def partition_states(self) -> list[ReferencePartition]:
        return self.states


BEHIND = ReferencePartition(position=3, end_offset=9, observed_at_ms=T0, last_timestamp_ms=None)
"""A reference partition with records published before any event here still to apply."""


@dataclass
class World:
    max_wait_s: float = 300.0
    clock: Clock = field(default_factory=Clock)
    positions: Positions = field(default_factory=Positions)
    generations: Generations = field(default_factory=Generations)
    rules: View = field(default_factory=View)
    templates: View = field(default_factory=View)
    counters: GateCounters = field(default_factory=GateCounters)

    def __post_init__(self) -> None:
        self.alignment = TableAlignment(idle_grace_s=GRACE_S)
        # recheck far beyond the test's deadline: only a notification can wake a waiter in time
        self.gate = JoinGate(
            signal=ProgressSignal(),
            max_wait_s=self.max_wait_s,
            recheck_s=300,
            counters=self.counters,
            clock=self.clock.monotonic,
        )
        self.join = JoinAdmission(
            gate=self.gate,
            alignment=self.alignment,
            positions=self.positions,
            generations=self.generations,
            rules=self.rules,
            templates=self.templates,
            monotonic=self.clock.monotonic,
            now_ms=self.clock.wall_ms,
        )

    def verdict(self, event: Record) -> Verdict:
        return self.join.verdict(event, self.clock.wall_ms(), self.clock.monotonic())


def event(at_ms: int = T0, *, partition: int = 1, offset: int = 0) -> Record:
    return Record(EVENTS, partition, offset, b"cust-1", b"{}", timestamp=at_ms / 1000)


def pref(at_ms: int, *, partition: int = 1, offset: int = 0) -> Record:
    return Record(PREFS, partition, offset, b"cust-1", b"{}", timestamp=at_ms / 1000)


async def test_an_event_waits_while_its_partitions_preferences_are_behind() -> None:
    world = World()
    world.positions.ends[1] = 10
    assert world.verdict(event()) is Verdict.WAIT


async def test_a_preference_later_than_the_event_lets_it_go() -> None:
    world = World()
    world.positions.ends[1] = 10
    world.join.preference_applied(pref(T0 + 1, offset=4))
    assert world.verdict(event(T0)) is Verdict.PAST
    # another partition's progress says nothing about this one
    assert world.verdict(event(T0, partition=2)) is not Verdict.PAST


async def test_the_committed_offset_of_the_events_partition_counts_as_applied() -> None:
    world = World()
    world.positions.ends.update({1: 10, 2: 10})
    world.positions.committed.update({1: 10, 2: 4})
    assert world.verdict(event(partition=1)) is Verdict.CAUGHT_UP
    assert world.verdict(event(partition=2)) is Verdict.WAIT


async def test_a_table_idle_for_the_grace_since_the_event_arrived_lets_it_go() -> None:
    world = World()
    world.positions.ends[1] = 10
    world.join.preference_applied(pref(T0 - 5, offset=2))
    arrived = world.clock.monotonic()
    world.clock.now += GRACE_S - 0.1
    assert world.join.verdict(event(), world.clock.wall_ms(), arrived) is Verdict.WAIT
    world.clock.now += 0.1
    assert world.join.verdict(event(), world.clock.wall_ms(), arrived) is Verdict.IDLE
    # idleness counts from the event's arrival when it came after the last record applied
    later = world.clock.monotonic() - 1.0
    assert world.join.verdict(event(), world.clock.wall_ms(), later) is Verdict.WAIT


async def test_assignment_and_revocation_restart_the_idle_time() -> None:
    world = World()
    world.positions.ends[1] = 10
    start = world.clock.monotonic()
    world.clock.now += GRACE_S
    world.join.preferences_assigned()
    assert world.join.verdict(event(), world.clock.wall_ms(), start) is Verdict.WAIT
    world.clock.now += GRACE_S
    world.join.preferences_revoked([3])
    assert world.join.verdict(event(), world.clock.wall_ms(), start) is Verdict.WAIT
    world.clock.now += GRACE_S
    assert world.join.verdict(event(), world.clock.wall_ms(), start) is Verdict.IDLE


async def test_a_revoked_partitions_progress_no_longer_counts() -> None:
    world = World()
    world.positions.ends[1] = 10
    world.join.preference_applied(pref(T0 + 1, offset=4))
    world.join.preferences_revoked([1])
    assert world.verdict(event(T0)) is Verdict.WAIT


@pytest.mark.parametrize("behind", ["rules", "templates"])
async def test_a_reference_view_behind_the_event_holds_it(behind: str) -> None:
    world = World()
    world.positions.committed[1] = world.positions.ends[1] = 10
    getattr(world, behind).states = [BEHIND]
    assert world.verdict(event()) is Verdict.WAIT
    getattr(world, behind).states = [
        ReferencePartition(position=9, end_offset=9, observed_at_ms=T0, last_timestamp_ms=None)
    ]
    assert world.verdict(event()) is Verdict.CAUGHT_UP


async def test_a_waiting_event_goes_when_the_preferences_catch_up() -> None:
    world = World()
    world.positions.ends[1] = 10
    task = asyncio.create_task(world.join.await_inputs(event(T0)))
    await asyncio.sleep(0)
    assert not task.done()
    world.join.preference_applied(pref(T0 - 1, offset=3))  # progress, not past the event
    await asyncio.sleep(0)
    assert not task.done()
    world.join.preference_applied(pref(T0 + 1, offset=4))
    await asyncio.wait_for(task, timeout=30)
    assert world.counters.waited == 1
    assert world.counters.by_verdict == {"past": 1}
    assert world.counters.gave_up == 0


async def test_a_wait_that_runs_out_marks_the_partition_stalled_at_its_committed_offset() -> None:
    world = World(max_wait_s=0.0)
    world.positions.ends[1] = 10
    world.positions.committed[1] = 6
    await asyncio.wait_for(world.join.await_inputs(event()), timeout=30)
    assert world.counters.gave_up == 1
    assert world.alignment.progress(1).stalled_at == 6
    # the next event of the partition does not wait again for the same stuck partition
    assert world.verdict(event(offset=1)) is Verdict.STALLED


async def test_a_rebalance_ends_the_wait_and_the_event_is_left_for_a_reread() -> None:
    world = World()
    world.positions.ends[1] = 10
    waiting = event(offset=8)
    task = asyncio.create_task(world.join.await_inputs(waiting))
    await asyncio.sleep(0)
    assert not task.done()
    world.generations.rebalanced = True
    world.gate.signal.notify()
    await asyncio.wait_for(task, timeout=30)
    assert world.counters.gave_up == 0
    assert not world.join.still_current(waiting)
    assert world.generations.left == [8]
    assert world.counters.stale_skipped == 1


async def test_an_event_of_the_current_generation_is_still_current() -> None:
    world = World()
    assert world.join.still_current(event())
    assert world.generations.left == []
    assert world.counters.stale_skipped == 0


async def test_a_document_request_waits_for_the_templates_only() -> None:
    world = World()
    world.positions.ends[1] = 10  # preferences behind: not a document request's concern
    world.rules.states = [BEHIND]
    assert await asyncio.wait_for(world.join.templates_admitted(event()), timeout=30)
    assert world.counters.by_verdict == {"caught_up": 1}

    world.templates.states = [BEHIND]
    task = asyncio.create_task(world.join.templates_admitted(event(offset=1)))
    await asyncio.sleep(0)
    assert not task.done()
    world.templates.states = [
        ReferencePartition(position=9, end_offset=9, observed_at_ms=T0, last_timestamp_ms=None)
    ]
    world.gate.signal.notify()
    assert await asyncio.wait_for(task, timeout=30)


async def test_a_document_request_caught_by_a_rebalance_is_left_for_a_reread() -> None:
    world = World()
    world.templates.states = [BEHIND]
    task = asyncio.create_task(world.join.templates_admitted(event(offset=5)))
    await asyncio.sleep(0)
    world.generations.rebalanced = True
    world.gate.signal.notify()
    assert not await asyncio.wait_for(task, timeout=30)
    assert world.generations.left == [5]
    assert world.counters.stale_skipped == 1
