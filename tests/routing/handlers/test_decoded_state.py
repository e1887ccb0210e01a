"""Decoded table values: never a value the table does not hold, bounded, dropped on revoke."""

from __future__ import annotations

import pytest

from streams.routing.handlers.decoded_state import DecodedValues

pytestmark = pytest.mark.unit


def counting() -> tuple[DecodedValues[str], list[bytes]]:
    seen: list[bytes] = []

    def decode(raw: bytes) -> str:
        seen.append(raw)
        return raw.decode()

    return DecodedValues(decode, max_entries=3), seen


def test_equal_bytes_are_decoded_once_and_changed_bytes_again() -> None:
    values, seen = counting()
    assert values.get(0, b"k", b"one") == "one"
    fresh = bytearray(b"one")
    assert values.get(0, b"k", bytes(fresh)) == "one"  # equal bytes, another object
    assert seen == [b"one"]
    assert values.get(0, b"k", b"two") == "two"  # the table changed underneath
    assert seen == [b"one", b"two"]
    assert (values.hits, values.decodes) == (1, 2)


def test_a_taken_value_is_forgotten_until_kept_again() -> None:
    values, seen = counting()
    values.get(1, b"k", b"v1")
    taken = values.take(1, b"k", b"v1")
    assert taken == "v1"
    assert len(values) == 0
    values.get(1, b"k", b"v1")  # not kept again: decoded afresh
    assert seen == [b"v1", b"v1"]
    values.keep(1, b"k", b"v2", "v2")
    assert values.get(1, b"k", b"v2") == "v2"
    assert seen == [b"v1", b"v1"]


def test_a_failing_decode_remembers_nothing() -> None:
    def decode(raw: bytes) -> str:
        raise ValueError(raw)

    values: DecodedValues[str] = DecodedValues(decode)
    with pytest.raises(ValueError, match="bad"):
        values.get(0, b"k", b"bad")
    assert len(values) == 0


def test_at_most_max_entries_are_kept_oldest_first_out() -> None:
    values, seen = counting()
    for n in range(5):
        values.get(0, f"k{n}".encode(), f"v{n}".encode())
    assert len(values) == 3
    seen.clear()
    values.get(0, b"k4", b"v4")
    assert seen == []  # recent: still kept
    values.get(0, b"k0", b"v0")
    assert seen == [b"v0"]  # the oldest went first


def test_revoked_partitions_are_dropped_others_kept() -> None:
    values, _ = counting()
    values.get(0, b"a", b"1")
    values.get(1, b"b", b"2")
    values.discard(1, b"missing")
    values.forget([0, 5])
    assert len(values) == 1
    values.discard(1, b"b")
    assert len(values) == 0
