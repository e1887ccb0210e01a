"""Which offsets the sink may commit: only past commands Exstream has accepted (pure).

Batches of one partition may complete out of order (several are in flight); the committable
offset of a partition is the end of the longest run of completed batches from its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class OffsetTracker:
    _pending: dict[int, dict[int, int]] = field(default_factory=dict)
    """partition -> {first offset: last offset} of batches in flight or done-but-blocked."""
    _done: dict[int, set[int]] = field(default_factory=dict)
    _next: dict[int, int] = field(default_factory=dict)
    """partition -> the next offset not yet covered by a completed run."""

    def started(self, partition: int, first: int, last: int) -> None:
        self._pending.setdefault(partition, {})[first] = last
        self._next.setdefault(partition, first)

    def completed(self, partition: int, first: int) -> None:
        self._done.setdefault(partition, set()).add(first)

    def committable(self) -> dict[int, int]:
        """partition -> offset to commit (next to read) for partitions that advanced."""
        out: dict[int, int] = {}
        for partition, batches in self._pending.items():
            done = self._done.get(partition, set())
            position = self._next[partition]
            moved = False
            while True:
                starts = [f for f in batches if f >= position and f in done]
                if not starts or min(starts) != min(f for f in batches if f >= position):
                    break
                first = min(starts)
                position = batches.pop(first) + 1
                done.discard(first)
                moved = True
            if moved:
                self._next[partition] = position
                out[partition] = position
        return out

    def in_flight(self) -> int:
        return sum(len(b) for b in self._pending.values())

    def forget(self, partitions: set[int]) -> None:
        """Revoked partitions: their uncommitted batches will be re-read by the next owner."""
        for p in partitions:
            self._pending.pop(p, None)
            self._done.pop(p, None)
            self._next.pop(p, None)
