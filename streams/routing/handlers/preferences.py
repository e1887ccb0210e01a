"""Storing one customer preference record: :class:`PreferencesHandler`.

Per record of ``air.preferences.v1``, inside the worker's exactly-once transaction:

1. a record without a key is dead-lettered (``MISSING_KEY``), and one outside its key's murmur2
   partition too (``WRONG_PARTITION``): stored there, no event of its customer would meet it;
2. a tombstone (no value) adds a "deleted" version; otherwise the value is decoded
   (:func:`~streams.routing.handlers.decode.decode_or_dead_letter`), must be keyed by its
   ``customer_id`` (else ``KEY_MISMATCH``) and be usable
   (:func:`~streams.domain.reference_checks.preference_problems`, else ``INVALID_PREFERENCE``:
   the customer's previous preference stays in force);
3. the preference is stored as a new version of the customer's versions
   (:mod:`streams.routing.preference_versions`, at the record's offset and timestamp), in the
   table's state encoding whatever it arrived as (JSON too), so readers decode without headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from streams.domain.records import Preference
from streams.domain.reference_checks import preference_problems
from streams.routing.handlers.decode import decode_or_dead_letter, key_mismatch
from streams.routing.handlers.ports import DeadLetter, Decode, InputRecord, StateTable, timestamp_ms
from streams.routing.partitioning import WRONG_PARTITION, partition_problem
from streams.routing.preference_versions import Version, with_version


class PreferenceCounters(Protocol):
    """The worker's running totals (:class:`~streams.routing.app.Counters` is one)."""

    preferences: int


class PreferencesHandler:
    """Stores preference records as versions per customer (see the module docstring)."""

    def __init__(
        self,
        *,
        table: StateTable,
        decode: Decode[Preference],
        encode_state: Callable[[Preference], bytes],
        dead_letter: DeadLetter,
        counters: PreferenceCounters,
        partition_counts: Mapping[str, int],
        history_ms: int,
        max_versions: int,
        registry_wait_s: float,
    ) -> None:
        self._table = table
        self._decode = decode
        self._encode_state = encode_state
        self._dead_letter = dead_letter
        self._counters = counters
        self._partition_counts = partition_counts
        self._history_ms = history_ms
        self._max_versions = max_versions
        self._wait_s = registry_wait_s

    async def handle(self, record: InputRecord) -> None:
        """Store ``record`` (or dead-letter it)."""
        key = record.key
        if key is None:
            await self._dead_letter(
                record, "MISSING_KEY", "preference record has no customer id key"
            )
            return
        misplaced = partition_problem(key, record.partition, self._partition_counts[record.topic])
        if misplaced is not None:  # applied here, no event of this customer would see it
            await self._dead_letter(record, WRONG_PARTITION, misplaced)
            return
        if record.value is None:
            await self.put_version(record, key, None)
            return
        preference = await decode_or_dead_letter(
            self._decode, record, self._dead_letter, wait_s=self._wait_s
        )
        if preference is None:
            return
        if key != preference.customer_id.encode():
            reason = key_mismatch(key, preference.customer_id)
            await self._dead_letter(record, "KEY_MISMATCH", reason)
            return
        problems = preference_problems(preference)
        if problems:  # the customer's previous preference, if any, stays in force
            await self._dead_letter(record, "INVALID_PREFERENCE", "; ".join(problems))
            return
        await self.put_version(record, key, self._encode_state(preference))
        self._counters.preferences += 1

    async def put_version(self, record: InputRecord, key: bytes, value: bytes | None) -> None:
        """Add the version ``record`` sets (``value``; None: deleted) to ``key``'s versions."""
        versions = with_version(
            self._table.get(key),
            Version(record.offset, timestamp_ms(record), value),
            history_ms=self._history_ms,
            max_versions=self._max_versions,
        )
        await self._table.put(record, key, versions)
