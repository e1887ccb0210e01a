"""How fetched commands become batches, and what identifies a batch (pure).

A batch is a run of consecutive commands of one partition, ``[first, last]`` offsets. Its id
(:func:`batch_id`) is a hash of the sink's group, the commands topic, the partition and the
range: the same range always has the same id, which the sink gives Exstream as the job's
external id.

After a restart the sink must cut the *same* batches again (a fetch after a restart returns
other record counts than before, so free cutting would give other ranges and ids). So the ranges
of batches that were intended before the crash (:mod:`streams.sink.intents`) are cut first and
exactly; records after them are cut freely, at most ``size`` commands per batch, and never across
an intended range. A record that cannot be decoded ends the batch before it and is a unit of its
own (its dead letter), so ranges never overlap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")
C = TypeVar("C")


def batch_id(group: str, topic: str, partition: int, first: int, last: int) -> str:
    digest = hashlib.sha256(f"{group}\x1f{topic}\x1f{partition}\x1f{first}\x1f{last}".encode())
    return f"air-batch-{digest.hexdigest()[:32]}"


@dataclass(frozen=True, slots=True)
class Range:
    first: int
    last: int


@dataclass(slots=True)
class Cut(Generic[R, C]):
    """A batch (``items`` of records and their decoded commands) or a bad record (``bad``)."""

    first: int
    last: int
    items: list[tuple[R, C]] = field(default_factory=list)
    recovered: bool = False
    """The range was intended before a restart: look it up before sending it."""
    bad: tuple[R, Exception] | None = None


class Batcher(Generic[R, C]):
    """Cuts one partition's records into batches, honouring recovered ranges."""

    def __init__(self, size: int, recovered: Iterable[Range] = ()) -> None:
        self.size = size
        self.recovered = sorted(recovered, key=lambda r: r.first)
        self._current: Cut[R, C] | None = None

    def feed(
        self,
        records: Sequence[R],
        offset: Callable[[R], int],
        decode: Callable[[R], C],
    ) -> list[Cut[R, C]]:
        """Batches completed by ``records`` (in offset order); a trailing free batch is closed
        too (the next fetch starts a new one), a recovered one waits for its last record."""
        out: list[Cut[R, C]] = []
        for record in records:
            o = offset(record)
            self.recovered = [r for r in self.recovered if r.last >= o]
            intended = next((r for r in self.recovered if r.first <= o <= r.last), None)
            current = self._current
            if current is not None and (
                (intended is None and current.recovered)
                or (
                    intended is not None
                    and (not current.recovered or current.first != intended.first)
                )
            ):
                out.append(current)  # a boundary: close what was open
                self._current = current = None
            try:
                command = decode(record)
            except Exception as exc:  # noqa: BLE001 - the caller's decode raises its own errors
                if current is not None:
                    out.append(current)
                    self._current = None
                out.append(Cut(o, o, bad=(record, exc)))
                continue
            if current is None:
                if intended is not None:
                    current = Cut(intended.first, intended.last, recovered=True)
                else:
                    current = Cut(o, o)
                self._current = current
            current.items.append((record, command))
            if not current.recovered:
                current.last = o
            if (current.recovered and o >= current.last) or (
                not current.recovered and len(current.items) >= self.size
            ):
                out.append(current)
                self._current = None
        current = self._current
        if current is not None and not current.recovered:
            out.append(current)
            self._current = None
        return out
