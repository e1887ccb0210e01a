"""Which partition numbers a process holds (pure: no Kafka).

Stores, ``on_assigned`` and ``on_revoked`` speak of partition numbers. Inputs with another
partition count than the stores' (a one-partition reference topic beside six-partition customer
topics) are assigned independently of them: their partition 0 says nothing about who owns the
customer partition 0. So the numbers held are those of the assigned partitions of inputs whose
partition count is a store's; with no store, or no input of a store's count, those of every input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def held_numbers(
    assigned: Iterable[tuple[str, int]],
    partition_counts: Mapping[str, int],
    store_counts: Iterable[int],
) -> set[int]:
    """The partition numbers held, given the assigned (topic, partition) pairs, every input's
    partition count and every store's."""
    pairs = list(assigned)
    counts = set(store_counts) & set(partition_counts.values())
    if not counts:
        return {p for _t, p in pairs}
    return {p for t, p in pairs if partition_counts.get(t) in counts}
