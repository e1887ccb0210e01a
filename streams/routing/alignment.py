"""May this event be decided now? The reference side of the join: rules and templates.

Pure logic over positions, end offsets and timestamps; no Kafka, no clock. The worker feeds it
through :class:`~streams.routing.engine_adapters.ReferenceAdmission` and waits with
:class:`~streams.routing.join_gate.JoinGate`.

The preferences side needs no rule here: the events and the preferences are co-partitioned and
the engine hands a partition group's records over in timestamp order, waiting for an input with
nothing fetched yet (:mod:`streams.engine.ordering`, as Kafka Streams' task idle time), so an
event meets every preference of its partition published before it.

Rules and templates are small compacted topics held whole by every worker
(:class:`~streams.routing.reference.ReferenceView`), read apart from the engine's consumer. An
event with timestamp T that arrived at the worker at A (worker clock) may go when every
partition of the topic either applied a record with a timestamp > T, or was applied up to the
end offset observed at or after ``min(T, A)`` (:func:`reference_covers`): a rule or template
published before the event is in the view. The minimum keeps a producer clock running ahead
from making every event wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Verdict(StrEnum):
    """The answer for one event; every value but ``WAIT`` lets it go (the gate counts them)."""

    CAUGHT_UP = "caught_up"
    WAIT = "wait"

    @property
    def may_go(self) -> bool:
        return self is not Verdict.WAIT


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


class ReferenceProgress(Protocol):
    """How far a reference view has applied its topic
    (:class:`~streams.routing.reference.ReferenceView` is one)."""

    def partition_states(self) -> list[ReferencePartition]: ...
