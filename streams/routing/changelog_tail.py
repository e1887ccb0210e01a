"""Where table recovery has read a changelog partition to its end: after its last committed record.

Under exactly-once every transaction ends with a marker, an offset that takes space in the
partition but is never delivered to a consumer. A changelog partition's end (its last stable
offset) therefore usually sits one past a marker, and a recovery that waits for the record just
below the end waits for ever. faust-streaming 0.15.3 ends such a recovery by asking the consumer
where its fetch position is, which is already at the end while the last records fetched are still
queued for the table: those were then skipped (a whole ``preferences`` partition missing after a
restart). Reading the tail of each partition tells where its last committed record really is;
recovery can then end when that record was applied, and never earlier.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Protocol, TypeVar

from streams.errors import AirExstreamError

TP = TypeVar("TP", bound=Hashable)

FIRST_WINDOW = 64
"""Offsets read back from the end at first; the window grows 16-fold until a record is found."""
GROWTH = 16


class Record(Protocol):
    @property
    def offset(self) -> int: ...


class TailReader(Protocol[TP]):
    """The slice of a started ``AIOKafkaConsumer`` (no group, ``read_committed``) used here."""

    def assign(self, partitions: list[TP]) -> None: ...

    def seek(self, partition: TP, offset: int) -> None: ...

    async def getmany(
        self, *partitions: TP, timeout_ms: int = 0
    ) -> Mapping[TP, list[Record]]: ...  # pragma: no cover - protocol

    async def position(self, partition: TP) -> int: ...


class TailUnread(AirExstreamError, TimeoutError):
    """The tails could not be read within the deadline (the broker is slow or unreachable):
    retriable; the caller falls back to faust's own end check."""

    retriable = True


async def recovery_ends(
    reader: TailReader[TP],
    ends: Mapping[TP, int],
    *,
    deadline_s: float = 20.0,
    first_window: int = FIRST_WINDOW,
) -> dict[TP, int]:
    """For each partition, one past the offset of its last committed record below ``ends[tp]``
    (its last stable offset), or 0 when it holds no committed record. Raises
    :class:`TailUnread` past ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    result: dict[TP, int] = {tp: 0 for tp, end in ends.items() if end <= 0}
    window = dict.fromkeys(ends, first_window)
    pending = [tp for tp, end in ends.items() if end > 0]
    while pending:
        starts = {tp: max(0, ends[tp] - window[tp]) for tp in pending}
        last = await _read_tails(reader, ends, starts, deadline)
        still: list[TP] = []
        for tp in pending:
            if tp in last:
                result[tp] = last[tp] + 1
            elif starts[tp] == 0:
                result[tp] = 0  # only markers and aborted records
            else:
                window[tp] *= GROWTH
                still.append(tp)
        pending = still
    return result


async def _read_tails(
    reader: TailReader[TP], ends: Mapping[TP, int], starts: Mapping[TP, int], deadline: float
) -> dict[TP, int]:
    """The last record offset below each partition's end, read from ``starts``."""
    reader.assign(list(starts))
    for tp, start in starts.items():
        reader.seek(tp, start)
    last: dict[TP, int] = {}
    reading = set(starts)
    while reading:
        if time.monotonic() > deadline:
            raise TailUnread(f"{len(reading)} changelog partition(s) not read to their end")
        batches = await reader.getmany(*reading, timeout_ms=200)
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    last[tp] = max(last.get(tp, -1), record.offset)
        reading = {tp for tp in reading if await reader.position(tp) < ends[tp]}
    return last
