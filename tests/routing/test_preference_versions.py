"""The versions the preferences table keeps per customer, and the one an event is joined with."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.routing.preference_versions import (
    Version,
    Versions,
    decode,
    encode,
    latest_value,
    value_as_of,
    with_version,
)

pytestmark = pytest.mark.unit

DAY = 24 * 3_600_000


def add(raw: bytes | None, offset: int, ts: int, value: bytes | None, **kw: int) -> bytes | None:
    options = {"history_ms": 7 * DAY, "max_versions": 16} | kw
    return with_version(raw, Version(offset, ts, value), **options)


def test_an_event_gets_the_version_in_force_at_its_timestamp() -> None:
    raw = add(None, 0, 1_000, b"A")
    raw = add(raw, 7, 2_000, b"B")
    assert value_as_of(raw, 999) is None  # before the customer's first preference
    assert value_as_of(raw, 1_000) == b"A"
    assert value_as_of(raw, 1_999) == b"A"
    assert value_as_of(raw, 2_000) == b"B"
    assert value_as_of(raw, 10**12) == b"B"
    assert latest_value(raw) == b"B"


def test_a_later_change_applied_first_does_not_affect_an_earlier_event() -> None:
    # the preferences agent ran ahead: B (t=2000) applied before the event at t=1500 is decided
    raw = add(add(None, 0, 1_000, b"A"), 1, 2_000, b"B")
    assert value_as_of(raw, 1_500) == b"A"


def test_writing_the_same_record_again_changes_nothing() -> None:
    raw = add(add(None, 0, 1_000, b"A"), 1, 2_000, b"B")
    assert add(raw, 1, 2_000, b"B") == raw
    assert add(raw, 0, 1_000, b"A") == raw


def test_a_deletion_is_a_version_and_a_lone_deletion_deletes_the_key() -> None:
    raw = add(add(None, 0, 1_000, b"A"), 1, 2_000, None)
    assert value_as_of(raw, 1_500) == b"A"
    assert value_as_of(raw, 2_500) is None
    assert latest_value(raw) is None
    assert add(None, 3, 1_000, None) is None


def test_versions_beyond_the_retention_are_dropped_and_the_oldest_kept_stands_in() -> None:
    raw = add(None, 0, 0, b"A")
    raw = add(raw, 1, 1 * DAY, b"B")
    raw = add(raw, 2, 10 * DAY, b"C")  # A is not needed by any event within 7 days of C
    decoded = decode(raw)
    assert [v.value for v in decoded.versions] == [b"B", b"C"]
    assert decoded.trimmed
    assert value_as_of(raw, 0) == b"B"  # older than every version kept: the best there is


def test_at_most_max_versions_are_kept() -> None:
    raw = None
    for i in range(10):
        raw = add(raw, i, 1_000 + i, bytes([i]), max_versions=3)
    assert [v.value for v in decode(raw).versions] == [bytes([7]), bytes([8]), bytes([9])]


def test_a_value_from_before_versioning_is_valid_since_always() -> None:
    legacy = b"\x00plain-avro"
    assert value_as_of(legacy, 0) == legacy
    assert latest_value(legacy) == legacy
    raw = add(legacy, 5, 2_000, b"B")
    assert value_as_of(raw, 1_000) == legacy
    assert value_as_of(raw, 2_000) == b"B"
    assert value_as_of(None, 5) is None
    assert latest_value(None) is None


versions = st.lists(
    st.builds(
        Version,
        st.integers(min_value=0, max_value=2**40),
        st.integers(min_value=-(2**50), max_value=2**50),
        st.one_of(st.none(), st.binary(max_size=20)),
    ),
    max_size=6,
)


@given(versions, st.booleans())
def test_the_encoding_round_trips(vs: list[Version], trimmed: bool) -> None:
    value = Versions(tuple(vs), trimmed)
    assert decode(encode(value)) == value


@given(
    st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=12, unique=True),
    st.integers(min_value=-10, max_value=6_000),
)
def test_as_of_equals_a_scan_of_every_version_when_nothing_is_dropped(
    stamps: list[int], at: int
) -> None:
    raw = None
    for offset, ts in enumerate(stamps):  # applied in offset order, timestamps in any order
        raw = add(raw, offset, ts, f"v{offset}".encode(), max_versions=100)
    in_force = [(ts, o) for o, ts in enumerate(stamps) if ts <= at]
    expected = f"v{max(in_force)[1]}".encode() if in_force else None
    assert value_as_of(raw, at) == expected


def _as_of_by_decoding(raw: bytes, at: int) -> bytes | None:
    """value_as_of's definition over :func:`decode` (the in-place scan must give the same)."""
    decoded = decode(raw)
    chosen = None
    for v in decoded.versions:
        if v.timestamp_ms > at:
            break
        chosen = v
    if chosen is None:
        return decoded.versions[0].value if decoded.trimmed and decoded.versions else None
    return chosen.value


@given(versions, st.booleans(), st.integers(min_value=-(2**51), max_value=2**51))
def test_as_of_scans_the_encoding_as_decoding_it_would(
    vs: list[Version], trimmed: bool, at: int
) -> None:
    raw = encode(Versions(tuple(vs), trimmed))
    assert value_as_of(raw, at) == _as_of_by_decoding(raw, at)
