"""When the routing worker commits: early once it has caught up, at the latest every interval.

Under exactly_once a command becomes visible to ``read_committed`` consumers when its
transaction commits, so the commit cadence is the floor of the worker's latency. Each commit
also costs a round trip per open transaction (one per input partition group) while record
processing waits for it, so committing often under a backlog costs throughput: the fixed
interval faust offers has to choose one of the two.

:class:`CommitCadence` lets the worker have both. A commit is due when

- ``max_interval_s`` has passed since the last commit (the bound under load: the old fixed
  interval, ``AIR_EXSTREAM_COMMIT_INTERVAL_S``), or
- ``min_interval_s`` has passed (``AIR_EXSTREAM_MIN_COMMIT_INTERVAL_S``) and the worker is
  live: at most ``live_lag`` records (:data:`LIVE_LAG_RECORDS`) of its input partitions are on
  the broker and not yet processed, summed over the partitions.

Not "nothing left": on a steady stream of 100 events/s a few events are always on their way
through the worker (each waits tens of milliseconds for the join's reference check), so a
commit waiting for zero came about once a second (measured: p50 1,093 ms). Under a backlog the
lag is thousands of records, so commits come every ``max_interval_s`` as before; and a worker
that falls behind because it commits often sees its lag grow past ``live_lag`` and commits less.
A partition's lag counts offsets, so a transaction's commit marker after its last record counts
one; a partition whose end or position is not known yet counts none.

With ``min_interval_s`` unset (or not below ``max_interval_s``) the cadence is the fixed
interval. Pure: the caller passes the clock and the positions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.routing.metrics import PartitionPosition, lag

LIVE_LAG_RECORDS = 100
"""Records not yet processed, over all input partitions, up to which the worker counts as live."""


def total_lag(positions: Iterable[PartitionPosition]) -> int:
    """Offsets between each partition's next offset to process and its end, summed (partitions
    with either unknown count none)."""
    return sum(lag(p) or 0 for p in positions)


@dataclass(frozen=True, slots=True)
class CommitCadence:
    """The commit rule of the module doc; ``min_interval_s=None``: a fixed interval."""

    max_interval_s: float
    min_interval_s: float | None = None
    live_lag: int = LIVE_LAG_RECORDS

    def __post_init__(self) -> None:
        if self.max_interval_s <= 0:
            raise ValueError("the commit interval must be positive")
        if self.min_interval_s is not None and self.min_interval_s <= 0:
            raise ValueError("the minimum commit interval must be positive")

    @property
    def adaptive(self) -> bool:
        return self.min_interval_s is not None and self.min_interval_s < self.max_interval_s

    @property
    def tick_s(self) -> float:
        """How often the worker should ask :meth:`due` (faust's commit timer interval)."""
        if self.adaptive and self.min_interval_s is not None:
            return self.min_interval_s
        return self.max_interval_s

    def due(self, *, since_last_s: float, positions: Iterable[PartitionPosition]) -> bool:
        """Whether to commit now, ``since_last_s`` seconds after the last commit."""
        if since_last_s >= self.max_interval_s or not self.adaptive:
            return True
        assert self.min_interval_s is not None
        return since_last_s >= self.min_interval_s and total_lag(positions) <= self.live_lag
