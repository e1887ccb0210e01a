"""May this event be decided now? Timestamp alignment of the inputs an event is joined with.

Pure logic over positions, end offsets and timestamps; no Kafka, no Faust, no clock. The worker
(``streams/routing/app.py``, through :mod:`streams.routing.join_gate`) feeds it and waits.

Why: the events and the preferences are two co-partitioned topics read independently. After a
backlog (a first start, an outage, a new worker, a replay) the events agent would otherwise
decide thousands of events against a preferences table that holds only the first few percent of
what was published before them. Kafka Streams avoids this by choosing the next record of a
partition group by timestamp, waiting up to its task idle time for an input that has nothing
buffered; this module states the same rule for one event.

The preferences side (:class:`TableAlignment`), per partition p of the preferences topic. An
event of partition p with timestamp T may go when

1. ``PAST``: the table has applied a preference record of partition p with a timestamp > T: in
   offset order every earlier record is applied (as in Kafka Streams, records within one
   partition are taken in offset order; a later record with an *older* timestamp is not waited
   for), or
2. ``CAUGHT_UP``: partition p of the table is applied up to the end offset (last stable offset
   under read_committed) observed when checked: nothing published before the check is missing, or
3. ``IDLE``: the end offset is above what was applied, but the table's agent has applied nothing
   for ``idle_grace_s`` (a grace period, seconds): the offsets left are transaction markers or
   aborted records, which a read_committed consumer never delivers, or
4. ``STALLED``: a wait on partition p already gave up and the partition has not moved since:
   the next events of p do not wait again for the same stuck partition.

Otherwise ``WAIT``. The caller bounds the wait (``alignment_max_wait_s``) and then marks the
partition stalled (:meth:`TableAlignment.gave_up`), logs and counts it.

The reference side (:func:`reference_covers`): rules and templates are small compacted topics
held whole by every worker (:class:`~streams.routing.reference.ReferenceView`). An event with
timestamp T that arrived at the worker at A (worker clock) may go when every partition of the
topic either applied a record with a timestamp > T, or was applied up to the end offset observed
at or after ``min(T, A)``: a rule or template published before the event is in the view. The
minimum keeps a producer clock running ahead from making every event wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """The answer for one event; every value but ``WAIT`` lets it go."""

    PAST = "past"
    CAUGHT_UP = "caught_up"
    IDLE = "idle"
    STALLED = "stalled"
    WAIT = "wait"

    @property
    def may_go(self) -> bool:
        return self is not Verdict.WAIT


@dataclass(slots=True)
class PartitionProgress:
    """How far one partition of the table's input has been applied to the table."""

    next_offset: int | None = None
    """The offset after the last record applied (processed, dead-lettered included)."""
    last_timestamp_ms: int | None = None
    """The timestamp of that record."""
    stalled_at: int | None = None
    """The applied position (-1: none known) when a wait on this partition gave up."""


class TableAlignment:
    """The preferences side: per partition, what the table has applied (see the module doc)."""

    def __init__(self, *, idle_grace_s: float) -> None:
        self.idle_grace_s = idle_grace_s
        self._progress: dict[int, PartitionProgress] = {}

    def applied(self, partition: int, offset: int, timestamp_ms: int) -> None:
        """The table's agent finished the record at ``offset`` of ``partition``."""
        progress = self._progress.setdefault(partition, PartitionProgress())
        if progress.next_offset is None or offset + 1 > progress.next_offset:
            progress.next_offset = offset + 1
            progress.last_timestamp_ms = timestamp_ms

    def forget(self, partitions: Iterable[int]) -> None:
        """The partitions left this worker (a rebalance): what was applied no longer counts."""
        for partition in partitions:
            self._progress.pop(partition, None)

    def progress(self, partition: int) -> PartitionProgress:
        return self._progress.get(partition, PartitionProgress())

    def verdict(
        self,
        partition: int,
        *,
        event_timestamp_ms: int,
        end_offset: int | None,
        committed_offset: int | None,
        table_idle_s: float,
    ) -> Verdict:
        """May an event of ``partition`` with ``event_timestamp_ms`` go now?

        ``end_offset``: the table input partition's end (last stable offset) as last observed,
        None when not known yet. ``committed_offset``: the consumer group's committed offset of
        that partition (records below it were applied by an earlier owner or run), None when
        unknown. ``table_idle_s``: seconds since the table's agent applied any record."""
        progress = self._progress.get(partition, PartitionProgress())
        if progress.last_timestamp_ms is not None and progress.last_timestamp_ms > (
            event_timestamp_ms
        ):
            return Verdict.PAST
        applied = _max_known(progress.next_offset, committed_offset)
        if end_offset is not None and end_offset >= 0:
            if end_offset <= (applied if applied is not None else 0):
                return Verdict.CAUGHT_UP
            if table_idle_s >= self.idle_grace_s:
                return Verdict.IDLE
        if progress.stalled_at is not None and progress.stalled_at == _or_none(applied):
            return Verdict.STALLED
        return Verdict.WAIT

    def gave_up(self, partition: int, committed_offset: int | None) -> None:
        """A wait on ``partition`` ran out: later events go at once until the partition moves."""
        progress = self._progress.setdefault(partition, PartitionProgress())
        progress.stalled_at = _or_none(_max_known(progress.next_offset, committed_offset))


def _or_none(offset: int | None) -> int:
    return -1 if offset is None else offset


def _max_known(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass(frozen=True, slots=True)
class ReferencePartition:
    """One partition of a reference topic as its view has consumed it."""

    position: int | None
    """The next offset the view will apply (every record below it is applied)."""
    end_offset: int | None
    """The partition's end (last stable offset) as last observed by the view's consumer."""
    observed_at_ms: int | None
    """When that end offset was observed (worker clock, ms since the epoch)."""
    last_timestamp_ms: int | None
    """The timestamp of the last record the view applied from this partition."""


def reference_covers(
    partitions: Iterable[ReferencePartition], *, event_timestamp_ms: int, arrived_at_ms: int
) -> bool:
    """True when every record of the reference topic published before the event (timestamp
    ``event_timestamp_ms``, taken by the worker at ``arrived_at_ms``) is applied: see the
    module doc."""
    cutoff = min(event_timestamp_ms, arrived_at_ms)
    for part in partitions:
        if part.last_timestamp_ms is not None and part.last_timestamp_ms > event_timestamp_ms:
            continue
        if (
            part.position is not None
            and part.end_offset is not None
            and part.observed_at_ms is not None
            and part.observed_at_ms >= cutoff
            and part.position >= part.end_offset
        ):
            continue
        return False
    return True


def covered_through(partitions: Iterable[ReferencePartition]) -> int | None:
    """The latest cutoff (ms) these states prove covered for good: every partition applied up to
    the end observed at its ``observed_at_ms`` proves every record published before the earliest
    of those times applied; applying never goes back, so an event whose cutoff (the smaller of
    its timestamp and its arrival) is at or below it is covered whatever the view observes later
    (:func:`reference_covers` would say so with these states). None: nothing proven (a
    partition still applying or never observed, or no partition at all)."""
    through: int | None = None
    for part in partitions:
        if (
            part.position is None
            or part.end_offset is None
            or part.observed_at_ms is None
            or part.position < part.end_offset
        ):
            return None
        if through is None or part.observed_at_ms < through:
            through = part.observed_at_ms
    return through
