"""When may an input record be decided? :class:`JoinAdmission`, the events' side of the join.

An event is decided only once the preferences of its partition, and the rules and templates,
published before it are applied (:mod:`streams.routing.alignment` says when; the wait itself
is :class:`~streams.routing.join_gate.JoinGate`'s, bounded by ``alignment_max_wait_s``). A
document request waits the same way for the templates only.

The waits run outside the worker's commit lock: the preferences agent and the commits go on
meanwhile. A rebalance ends a wait; the record is then left for a re-read from its partition's
committed offset (:meth:`JoinAdmission.still_current`), never processed in the new generation.

The preferences agent reports every record it finished
(:meth:`JoinAdmission.preference_applied`, dead-lettered ones too) and the worker reports
rebalances (:meth:`~JoinAdmission.preferences_revoked`,
:meth:`~JoinAdmission.preferences_assigned`); the reference views wake waiters themselves
through the gate's :class:`~streams.routing.join_gate.ProgressSignal`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Protocol

from streams.routing.alignment import ReferencePartition, TableAlignment, Verdict, reference_covers
from streams.routing.handlers.ports import InputRecord, timestamp_ms
from streams.routing.join_gate import JoinGate


class TablePositions(Protocol):
    """Where each partition of the preferences topic stands, as the worker's consumer knows it."""

    def end_offset(self, partition: int) -> int | None:
        """The partition's end (last stable offset) as last fetched; None when not known."""
        ...

    def committed_offset(self, partition: int) -> int | None:
        """The group's committed offset of the partition; None when not known."""
        ...


class Generations(Protocol):
    """The consumer group generation a record was read in, against the current one."""

    def is_current(self, record: InputRecord) -> bool:
        """False once a rebalance came after ``record`` was read."""
        ...

    def leave_for_reread(self, record: InputRecord) -> None:
        """Let ``record`` go unprocessed without moving any commit past it: its partition is
        read again from the committed offset."""
        ...


class ReferenceProgress(Protocol):
    """How far a reference view has applied its topic
    (:class:`~streams.routing.reference.ReferenceView` is one)."""

    def partition_states(self) -> list[ReferencePartition]: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


class JoinAdmission:
    """Holds an event (or a document request) until its join inputs are aligned (see the
    module docstring)."""

    def __init__(
        self,
        *,
        gate: JoinGate,
        alignment: TableAlignment,
        positions: TablePositions,
        generations: Generations,
        rules: ReferenceProgress,
        templates: ReferenceProgress,
        monotonic: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self._gate = gate
        self._alignment = alignment
        self._positions = positions
        self._generations = generations
        self._rules = rules
        self._templates = templates
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._table_applied_at = monotonic()
        """When the preferences agent last applied a record (or a rebalance reset idleness)."""

    # ---- what the preferences side reports

    def preference_applied(self, record: InputRecord) -> None:
        """The preferences agent finished ``record`` (stored or dead-lettered)."""
        self._alignment.applied(record.partition, record.offset, timestamp_ms(record))
        self._table_applied_at = self._monotonic()
        self._gate.signal.notify()

    def preferences_revoked(self, partitions: Iterable[int]) -> None:
        """These preferences partitions left this worker: what was applied there no longer
        counts."""
        self._alignment.forget(partitions)
        self._table_applied_at = self._monotonic()  # idle from now on at the earliest
        self._gate.signal.notify()  # a waiting event re-checks (its own partition may have gone)

    def preferences_assigned(self) -> None:
        """Partitions were assigned: the table is idle from now on at the earliest."""
        self._table_applied_at = self._monotonic()

    # ---- the events' side

    def verdict(self, record: InputRecord, arrived_at_ms: int, arrived_at: float) -> Verdict:
        """May event ``record`` (taken at ``arrived_at_ms`` wall clock, ``arrived_at``
        monotonic) be decided now?"""
        timestamp = timestamp_ms(record)
        partition = record.partition
        verdict = self._alignment.verdict(
            partition,
            event_timestamp_ms=timestamp,
            end_offset=self._positions.end_offset(partition),
            committed_offset=self._positions.committed_offset(partition),
            # idle: nothing applied since this event arrived (or since the last record)
            table_idle_s=self._monotonic() - max(self._table_applied_at, arrived_at),
        )
        if not verdict.may_go:
            return verdict
        for view in (self._rules, self._templates):
            if not reference_covers(
                view.partition_states(), event_timestamp_ms=timestamp, arrived_at_ms=arrived_at_ms
            ):
                return Verdict.WAIT
        return verdict

    async def await_inputs(self, record: InputRecord) -> None:
        """Wait (bounded) until event ``record`` may be decided; outside the commit lock, so
        the preferences agent and the commits go on meanwhile."""
        arrived_at_ms = self._now_ms()
        partition = record.partition
        await self._gate.admit(
            partial(self.verdict, record, arrived_at_ms, self._monotonic()),
            what=f"the inputs joined with {record.topic}/{partition}",
            # a rebalance ends the wait (the caller then skips the record)
            interrupted=lambda: not self._generations.is_current(record),
            on_give_up=lambda: self._alignment.gave_up(
                partition, self._positions.committed_offset(partition)
            ),
        )

    def still_current(self, record: InputRecord) -> bool:
        """False when a rebalance came while ``record`` waited in the gate: its partition is
        read again from its committed offset (faust skips a record of an older generation the
        same way). It is left without telling the consumer, so that no commit of the new
        generation can move past the records before it; it is not processed, since the guard
        would then take the records before it for redeliveries."""
        if self._generations.is_current(record):
            return True
        self._generations.leave_for_reread(record)
        self._gate.counters.stale_skipped += 1
        return False

    async def templates_admitted(self, record: InputRecord) -> bool:
        """Wait (bounded, outside the commit lock) until every template version published
        before the document request ``record`` is in the templates view; False when ``record``
        must be left for a re-read (:meth:`still_current`)."""
        arrived_at_ms, timestamp = self._now_ms(), timestamp_ms(record)

        def verdict() -> Verdict:
            covered = reference_covers(
                self._templates.partition_states(),
                event_timestamp_ms=timestamp,
                arrived_at_ms=arrived_at_ms,
            )
            return Verdict.CAUGHT_UP if covered else Verdict.WAIT

        await self._gate.admit(
            verdict,
            what=f"the templates published before {record.topic}/{record.partition}",
            interrupted=lambda: not self._generations.is_current(record),
        )
        return self.still_current(record)
