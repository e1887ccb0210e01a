"""The choice of the next record of a partition group (pure: no Kafka).

A partition group is partition ``p`` of every input with the same partition count. Its next
record is the buffered head with the smallest timestamp, as Kafka Streams chooses the next
record of a task, with the same idle rule: while a partition of the group has nothing buffered
and is not known to be at its end, a record of it may still come with a smaller timestamp, so
the group waits for it, up to ``max_idle_ms`` from when the wait began; after that the group is
handled without it (enforced processing) until that partition has records or reaches its end.

A choice also says how far the chosen input may go on without another choice
(:attr:`Choice.until_ms`): up to the next buffered head of the group, so that a backlog is
merged a run of records at a time rather than one comparison of every head per record.
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
    until_ms: int | None = None
    """The chosen input's next records with timestamps up to this one come before every other
    buffered head of the group (ties included, as ties go to the earlier input): they may be
    handed over without choosing again, as long as no record arrives in the group. None: no
    other head is buffered (no bound while nothing arrives)."""


def choose_next(
    heads: Sequence[Head], *, now_ms: int, waiting_since_ms: int | None, max_idle_ms: int
) -> Choice:
    """The next record of a group. Ties of timestamps go to the earlier input in ``heads``.
    (One pass, tuples: called once per record handed over.)"""
    first: Head | None = None
    first_at = 0
    lagging = False
    for at, head in enumerate(heads):
        timestamp = head.timestamp_ms
        if timestamp is None:
            lagging = lagging or not head.at_end
        elif first is None or timestamp < (first.timestamp_ms or 0):
            first, first_at = head, at
    if first is None:
        return Choice(None, None)
    if not lagging:
        return Choice(first.topic, None, _until(heads, first_at))
    since = now_ms if waiting_since_ms is None else waiting_since_ms
    if now_ms - since >= max_idle_ms:
        return Choice(first.topic, since, _until(heads, first_at))
    return Choice(None, since)


def _until(heads: Sequence[Head], chosen: int) -> int | None:
    """:attr:`Choice.until_ms` of the head at index ``chosen``: below every other buffered head,
    equal allowed to the heads of the later inputs (a tie goes to the earlier input)."""
    until: int | None = None
    for at, head in enumerate(heads):
        timestamp = head.timestamp_ms
        if at == chosen or timestamp is None:
            continue
        bound = timestamp if at > chosen else timestamp - 1
        if until is None or bound < until:
            until = bound
    return until
