"""The ``preferences`` table keeps, per customer, the versions an event may still need.

Why: an event is joined with the preference in force at the event's timestamp, not with whatever
the table holds when the event happens to be processed. The events agent waits until every
preference published before the event is applied (:mod:`streams.routing.alignment`), but the
preferences agent does not wait for the events: after a backlog it may already have applied a
change published *after* the event. So the table keeps the earlier versions too, like Kafka
Streams' versioned state stores do for stream-table joins, and the event looks up the version
valid at its timestamp (:func:`value_as_of`).

Value format (the table's bytes, also in its changelog)::

    b"\\xa7\\x01"  flags:u8 (bit 0: older versions were dropped)
    then per version, oldest first: offset:i64  timestamp_ms:i64  length:i32 (-1: tombstone)  bytes

Versions are ordered by (timestamp, offset) and identified by the input record's offset, so
writing the same input record twice (a replay after a crash) changes nothing: the table stays a
pure function of its input, which is what lets the rocksdb store keep its files across a crash.
A value without the magic prefix is a plain Avro preference from before versioning: one version
valid since always.

Retention: a version is kept while an event up to ``history_ms`` older than the newest version
could still need it, and at most ``max_versions`` are kept. An event older than every version
kept gets ``None`` when the history is complete (the customer had no preference then) and the
oldest version kept when older ones were dropped (the best there is, like a late record).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\xa7\x01"
_HEADER = struct.Struct(">qqi")
_TRIMMED = 0x01
_SINCE_ALWAYS = -(2**63)
_VERSIONS_AT = len(MAGIC) + 1
"""Where the first version's header is: after the magic and the flags byte."""


@dataclass(frozen=True, slots=True)
class Version:
    offset: int
    """Offset of the input record that set it (-1: a value from before versioning)."""
    timestamp_ms: int
    """From when it is in force (the input record's Kafka timestamp)."""
    value: bytes | None
    """The Avro-encoded preference; None: deleted (a tombstone)."""


@dataclass(frozen=True, slots=True)
class Versions:
    versions: tuple[Version, ...]
    trimmed: bool = False


def decode(raw: bytes | None) -> Versions:
    if not raw:
        return Versions(())
    if not raw.startswith(MAGIC):
        return Versions((Version(-1, _SINCE_ALWAYS, raw),))
    trimmed = bool(raw[2] & _TRIMMED)
    versions = []
    pos = _VERSIONS_AT
    while pos < len(raw):
        offset, timestamp, length = _HEADER.unpack_from(raw, pos)
        pos += _HEADER.size
        if length < 0:
            versions.append(Version(offset, timestamp, None))
        else:
            versions.append(Version(offset, timestamp, raw[pos : pos + length]))
            pos += length
    return Versions(tuple(versions), trimmed)


def encode(versions: Versions) -> bytes:
    parts = [MAGIC, bytes([_TRIMMED if versions.trimmed else 0])]
    for v in versions.versions:
        if v.value is None:
            parts.append(_HEADER.pack(v.offset, v.timestamp_ms, -1))
        else:
            parts.append(_HEADER.pack(v.offset, v.timestamp_ms, len(v.value)))
            parts.append(v.value)
    return b"".join(parts)


def latest_value(raw: bytes | None) -> bytes | None:
    """The preference in force now (the newest version); None if none or deleted."""
    versions = decode(raw).versions
    return versions[-1].value if versions else None


def value_as_of(raw: bytes | None, timestamp_ms: int) -> bytes | None:
    """The preference in force at ``timestamp_ms`` (see the module doc for older events).

    Once per event: the headers are scanned in place, only the chosen value is copied (what
    :func:`decode` and a scan of its versions give, without a :class:`Version` per version)."""
    if raw is None or not raw.startswith(MAGIC):
        return raw or None
    unpack, size, end = _HEADER.unpack_from, _HEADER.size, len(raw)
    pos = _VERSIONS_AT
    chosen = -1  # the position of the chosen version's header
    while pos < end:
        _offset, timestamp, length = unpack(raw, pos)
        if timestamp > timestamp_ms:
            break
        chosen = pos
        pos += size + max(length, 0)
    if chosen < 0:
        if raw[2] & _TRIMMED and end > _VERSIONS_AT:
            return _value_at(raw, _VERSIONS_AT)
        return None
    return _value_at(raw, chosen)


def _value_at(raw: bytes, pos: int) -> bytes | None:
    """The value of the version whose header is at ``pos`` (None: a tombstone)."""
    _offset, _timestamp, length = _HEADER.unpack_from(raw, pos)
    if length < 0:
        return None
    start = pos + _HEADER.size
    return raw[start : start + length]


def with_version(
    raw: bytes | None, version: Version, *, history_ms: int, max_versions: int
) -> bytes | None:
    """``raw`` with ``version`` added (replacing one from the same offset), old versions past
    the retention dropped; None when nothing is left worth keeping (delete the key)."""
    decoded = decode(raw)
    kept = [v for v in decoded.versions if v.offset != version.offset or v.offset < 0]
    kept.append(version)
    kept.sort(key=lambda v: (v.timestamp_ms, v.offset))
    trimmed = decoded.trimmed
    newest = kept[-1].timestamp_ms
    # v[i] is needed while an event in the retention could fall before v[i + 1]
    first = 0
    while first < len(kept) - 1 and kept[first + 1].timestamp_ms <= newest - history_ms:
        first += 1
    first = max(first, len(kept) - max(1, max_versions))
    if first:
        kept = kept[first:]
        trimmed = True
    if len(kept) == 1 and kept[0].value is None:
        return None  # only a deletion left: as if the customer never had preferences
    return encode(Versions(tuple(kept), trimmed))
