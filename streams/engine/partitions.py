"""The input partitions a process holds: their buffered records, positions and ends, and the
partition groups the next record is chosen from (pure: the engine feeds it what Kafka says).

A record is buffered once: one at or below what is buffered or handled for its partition is
dropped (fetched twice). A partition is *at its end* from the consumer's end-of-partition event
until its next record arrives. Groups are taken in turn; inside a group
:func:`streams.engine.ordering.choose_next` decides, and its choice stands for a run of up to
:data:`RUN_MAX` records of the chosen input, as far as its ``until_ms`` allows: a record
arriving in any partition, or a partition read to its end, ends the run, so the order is the
one a choice per record gives. A group of one input hands over one record per turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from streams.engine.api import Record
from streams.engine.ordering import Head, choose_next

TP = tuple[str, int]

RUN_MAX = 64
"""Records a group's choice hands over before the next group has its turn."""


@dataclass(slots=True)
class _Run:
    """The records a choice lets through without choosing again (see the module doc)."""

    buffer: deque[Record]
    until_ms: int | None
    left: int


@dataclass(slots=True)
class Group:
    """Partition number ``p`` of the inputs with the same partition count."""

    tps: list[TP]
    waiting_since_ms: int | None = None


class InputPartitions:
    """See the module docstring."""

    def __init__(self, *, max_idle_ms: int) -> None:
        self.max_idle_ms = max_idle_ms
        self.assigned: set[TP] = set()
        self.buffers: dict[TP, deque[Record]] = {}
        self.next_offsets: dict[TP, int] = {}
        """The next offset to handle (the committed one, then past each record handled)."""
        self.ends_seen: dict[TP, int] = {}
        self.at_end: set[TP] = set()
        self.groups: list[Group] = []
        self._next_group = 0
        self._run: _Run | None = None

    # ---- assignment

    def assign(self, tps: Iterable[TP]) -> None:
        self.assigned.update(tps)

    def revoke(self, tps: Iterable[TP]) -> None:
        """Forget everything about ``tps`` (buffered records included)."""
        self._run = None
        for tp in tps:
            self.assigned.discard(tp)
            self.buffers.pop(tp, None)
            self.next_offsets.pop(tp, None)
            self.ends_seen.pop(tp, None)
            self.at_end.discard(tp)

    def regroup(self, inputs: Sequence[str], partition_counts: Mapping[str, int]) -> None:
        """Groups of the assigned partitions: per (partition count, partition number), the
        partitions in the order of ``inputs`` (ties of timestamps go to the earlier input)."""
        groups: dict[tuple[int, int], list[TP]] = {}
        for topic in inputs:
            count = partition_counts.get(topic, 0)
            for t, p in sorted(self.assigned):
                if t == topic:
                    groups.setdefault((count, p), []).append((t, p))
        self.groups = [Group(tps) for _key, tps in sorted(groups.items())]
        self._next_group = 0
        self._run = None

    # ---- what the consumer says

    def committed(self, tp: TP, offset: int) -> None:
        """The group's committed offset (a position already handled is not moved back)."""
        if tp in self.assigned and offset >= 0:
            self.next_offsets.setdefault(tp, offset)

    def add(self, record: Record) -> bool:
        """Buffer a fetched record; False (dropped) when its partition is not assigned or the
        record is at or below what is buffered or handled."""
        tp = (record.topic, record.partition)
        if tp not in self.assigned:
            return False
        buffer = self.buffers.setdefault(tp, deque())
        if record.offset < (buffer[-1].offset + 1 if buffer else self.next_offsets.get(tp, 0)):
            return False
        buffer.append(record)
        self.at_end.discard(tp)
        self._run = None  # it may come before the run's next records: choose again
        return True

    def reached_end(self, tp: TP, offset: int) -> None:
        """The consumer read ``tp`` to its end, ``offset`` (end-of-partition event)."""
        if tp in self.assigned:
            self.at_end.add(tp)
            self.ends_seen[tp] = offset
            self._run = None  # a group waiting for it no longer does: choose again

    # ---- handing records over

    def has_buffered(self) -> bool:
        return any(self.buffers.values())

    def buffered(self, tp: TP) -> int:
        return len(self.buffers.get(tp, ()))

    def take_next(self, now_ms: int) -> Record | None:
        """The next record to handle (groups in turn), or None: nothing may be handed over
        now. The caller reports it handled with :meth:`handled`."""
        run = self._run
        if run is not None:
            going = run.buffer
            if (
                going
                and run.left
                and (run.until_ms is None or going[0].timestamp_ms <= run.until_ms)
            ):
                run.left -= 1
                return going.popleft()
            self._run = None
        count = len(self.groups)
        for i in range(count):
            group = self.groups[(self._next_group + i) % count]
            if len(group.tps) == 1:  # one input: offset order, nothing to wait for
                buffer = self.buffers.get(group.tps[0])
                if buffer:
                    self._next_group = (self._next_group + i + 1) % count
                    return buffer.popleft()
                continue
            # a partition read to its end with nothing buffered has no say: left out (the
            # choice is the same; a group's quiet inputs cost nothing per record)
            heads = []
            buffers, at_end = self.buffers, self.at_end
            for tp in group.tps:
                buffer = buffers.get(tp)
                if buffer:
                    heads.append(Head(tp[0], buffer[0].timestamp_ms, False))
                elif tp not in at_end:
                    heads.append(Head(tp[0], None, False))
            choice = choose_next(
                heads,
                now_ms=now_ms,
                waiting_since_ms=group.waiting_since_ms,
                max_idle_ms=self.max_idle_ms,
            )
            group.waiting_since_ms = choice.waiting_since_ms
            if choice.topic is not None:
                self._next_group = (self._next_group + i + 1) % count
                chosen = self.buffers[(choice.topic, group.tps[0][1])]
                self._run = _Run(chosen, choice.until_ms, RUN_MAX - 1)
                return chosen.popleft()
        return None

    def handled(self, record: Record) -> None:
        self.next_offsets[(record.topic, record.partition)] = record.offset + 1

    # ---- positions and ends

    def positions(self) -> dict[TP, int]:
        """The next offset to handle per assigned partition, where known; a partition read to
        its end with nothing buffered is at that end (past any transaction marker)."""
        out: dict[TP, int] = {}
        for tp in self.assigned:
            known = self.next_offsets.get(tp)
            if tp in self.at_end and not self.buffers.get(tp):
                end = self.ends_seen[tp]
                known = end if known is None else max(known, end)
            if known is not None:
                out[tp] = known
        return out

    def ends(self, high_watermark: Callable[[TP], int] | None) -> dict[TP, int]:
        """The last known end per assigned partition: where it was read to its end while
        nothing new arrived since, else ``high_watermark(tp)`` of the last fetch (negative:
        unknown; None: no consumer)."""
        out: dict[TP, int] = {}
        for tp in self.assigned:
            end = self.ends_seen.get(tp, -1)
            if tp in self.at_end:
                out[tp] = end
                continue
            if high_watermark is not None:
                end = max(end, high_watermark(tp))
            if end >= 0:
                out[tp] = end
        return out
