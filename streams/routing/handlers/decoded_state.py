"""Table values kept decoded between records, the table staying the source of truth.

:class:`DecodedValues` remembers, per partition and key, the raw bytes a value was decoded from
and what they decoded to. A look-up passes the table's *current* bytes: when they equal the
remembered ones the decoded value is returned, otherwise the bytes are decoded again (and
remembered). So whatever changed the table (this worker's writes, table recovery after an
assignment, another handler), a reader never gets a value its table does not hold; the cache
only saves the decoding. Nothing is ever written to a table from it.

A handler that *mutates* a decoded value (the suppression entries of a customer, updated per
event) must :meth:`DecodedValues.take` it first and :meth:`DecodedValues.keep` it again only
once the new bytes are in the table: if anything fails in between, the next record decodes the
table's value afresh instead of seeing a half-applied change.

Memory: at most ``max_entries`` values per cache (the oldest remembered goes first), and a
partition's values are dropped when it is revoked (:meth:`DecodedValues.forget`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_ENTRIES = 200_000
"""Decoded values kept at most per cache (customers active at once on one worker)."""


class DecodedValues(Generic[V]):
    """Decoded table values by (partition, key), checked against the table's bytes."""

    __slots__ = ("_decode", "_entries", "_max_entries", "_size", "decodes", "hits")

    def __init__(self, decode: Callable[[bytes], V], *, max_entries: int = MAX_ENTRIES) -> None:
        self._decode = decode
        self._max_entries = max_entries
        self._entries: dict[int, dict[bytes, tuple[bytes, V]]] = {}
        self._size = 0
        self.hits = 0
        self.decodes = 0

    def __len__(self) -> int:
        return self._size

    def get(self, partition: int, key: bytes, raw: bytes) -> V:
        """``raw`` (the table's current value of ``key``) decoded; raises what ``decode``
        raises (nothing is remembered then)."""
        entries = self._entries.get(partition)
        if entries is not None:
            found = entries.get(key)
            if found is not None and (found[0] is raw or found[0] == raw):
                self.hits += 1
                return found[1]
        value = self._decode(raw)
        self.decodes += 1
        self.keep(partition, key, raw, value)
        return value

    def take(self, partition: int, key: bytes, raw: bytes) -> V:
        """As :meth:`get`, and forget it: the caller may mutate the value, then :meth:`keep` it
        with the bytes it wrote."""
        value = self.get(partition, key, raw)
        self._entries[partition].pop(key, None)
        self._size -= 1
        return value

    def keep(self, partition: int, key: bytes, raw: bytes, value: V) -> None:
        """Remember that ``raw`` (now the table's value of ``key``) decodes to ``value``."""
        entries = self._entries.setdefault(partition, {})
        if entries.pop(key, None) is None:
            self._size += 1
        entries[key] = (raw, value)
        if self._size > self._max_entries:
            self._evict_one()

    def discard(self, partition: int, key: bytes) -> None:
        entries = self._entries.get(partition)
        if entries is not None and entries.pop(key, None) is not None:
            self._size -= 1

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop every value of ``partitions`` (revoked: their tables are no longer ours)."""
        for partition in partitions:
            dropped = self._entries.pop(partition, None)
            if dropped:
                self._size -= len(dropped)

    def _evict_one(self) -> None:
        largest = max(self._entries.values(), key=len)
        oldest = next(iter(largest))  # dicts keep insertion order: the least recently kept
        del largest[oldest]
        self._size -= 1
