"""The choice of the next record of a partition group (pure: no Kafka).

A partition group is partition ``p`` of every input with the same partition count. Its next
record is the buffered head with the smallest timestamp, as Kafka Streams chooses the next
record of a task, with the same idle rule: while a partition of the group has nothing buffered
and is not known to be at its end, a record of it may still come with a smaller timestamp, so
the group waits for it, up to ``max_idle_ms`` from when the wait began; after that the group is
handled without it (enforced processing) until that partition has records or reaches its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Head(NamedTuple):
    """One input partition of a group as the chooser sees it."""

    topic: str
    timestamp_ms: int | None
    """The timestamp of its first buffered record; None: nothing buffered."""
    at_end: bool
    """Nothing buffered and the partition was read to its end (no record is on its way)."""

    @property
    def lagging(self) -> bool:
        """Nothing buffered, but records may be on their way."""
        return self.timestamp_ms is None and not self.at_end


class Choice(NamedTuple):
    """What the group does next."""

    topic: str | None
    """The input whose head record is handled next; None: nothing to hand over now."""
    waiting_since_ms: int | None
    """When the group began waiting for a lagging partition (keep it for the next call);
    None: not waiting."""


def choose_next(
    heads: Sequence[Head], *, now_ms: int, waiting_since_ms: int | None, max_idle_ms: int
) -> Choice:
    """The next record of a group. Ties of timestamps go to the earlier input in ``heads``.
    (One pass, tuples: called once per record handed over.)"""
    first: Head | None = None
    lagging = False
    for head in heads:
        timestamp = head.timestamp_ms
        if timestamp is None:
            lagging = lagging or not head.at_end
        elif first is None or timestamp < (first.timestamp_ms or 0):
            first = head
    if first is None:
        return Choice(None, None)
    if not lagging:
        return Choice(first.topic, None)
    since = now_ms if waiting_since_ms is None else waiting_since_ms
    if now_ms - since >= max_idle_ms:
        return Choice(first.topic, since)
    return Choice(None, since)
