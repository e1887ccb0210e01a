"""Changelog positions that table recovery may trust: a partition's position counts only once
it held at two consecutive looks.

Why: under exactly_once a changelog partition ends with a transaction marker, an offset that is
never delivered, so faust-streaming 0.15.3 cannot see its recovery finish by offsets alone. Its
recovery loop waits up to 5 s at a time for a changelog record and, after two waits in a row
without one, asks the consumer where each unfinished partition's fetch position is; a position
at or above the partition's end counts as "read to the end", and the partition's applied offset
is set to the end. Records still below that offset, taken from the queue later, are then skipped
as already applied.

That count of empty waits is not reset when a new recovery starts. A worker that waited for its
group (a restart after a crash waits about one session timeout for the dead member to leave)
enters recovery with it already above two, so the first empty wait after the changelogs are
resumed asks for the positions at once. The consumer thread fetches meanwhile: a partition whose
records were fetched (position at its end) but not yet taken from the queue was marked read, and
all its records were then skipped. Seen as one whole partition of the ``preferences`` table
missing after a restart (1,487 commands missing in the crash test: every event of partition 2
was decided without its customer's preference).

Here a position is reported as the lower of the position seen at this look and at the previous
look of the same partition (none before the first look since the last seek: ``-1``). The loop
asks only after an empty wait of at least 5 s, so a position that already held at the previous
look belongs to records that were handed over at least that long ago and have been taken from
the queue: the partition ends at most one wait later than before, never with records unread.

Only changelog partitions during a recovery are held back (:meth:`SettledPositions.for_recovery`);
the faust side is :func:`streams.routing.faust_compat.settled_changelog_positions`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

NOT_SETTLED = -1
"""Reported at a partition's first look: below every end, so nothing is marked read."""


class SettledPositions:
    """The fetch positions of changelog partitions as table recovery may use them."""

    def __init__(self) -> None:
        self._previous: dict[Hashable, int] = {}

    def sought(self, partitions: Iterable[Hashable]) -> None:
        """Recovery moved these partitions (a seek): earlier looks no longer count."""
        for tp in partitions:
            self._previous.pop(tp, None)

    def reset(self) -> None:
        """A rebalance: no look counts any more."""
        self._previous.clear()

    def for_recovery(
        self, tp: Hashable, position: int | None, *, changelog: bool, in_recovery: bool
    ) -> int | None:
        """The position to report for ``tp`` when the consumer's is ``position``: settled for
        a changelog partition during a recovery (the only place of the race), the consumer's
        own otherwise (a stream partition, or any partition once recovery has ended), and
        then without counting as a look."""
        if not (changelog and in_recovery):
            return position
        return self.look(tp, position)

    def look(self, tp: Hashable, position: int | None) -> int | None:
        """The position to report for ``tp`` when the consumer's is ``position``."""
        if position is None:
            self._previous.pop(tp, None)
            return None
        previous = self._previous.get(tp)
        self._previous[tp] = position
        if previous is None:
            return NOT_SETTLED
        return min(previous, position)
