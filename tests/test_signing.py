"""Callback signatures: valid, forged, replayed with a new timestamp, stale, rotated keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.signing import SignatureError, sign, verify

pytestmark = pytest.mark.unit

KEY = b"k1"
NOW = 1_800_000_000


def test_a_valid_signature_verifies_and_returns_its_time() -> None:
    header = sign(KEY, b'{"a":1}', NOW)
    assert verify([KEY], header, b'{"a":1}', now=NOW + 10) == NOW


@pytest.mark.parametrize(
    ("header", "body", "code"),
    [
        (None, b"x", "MISSING"),
        ("", b"x", "MISSING"),
        ("garbage", b"x", "MALFORMED"),
        ("t=abc,v1=00", b"x", "MALFORMED"),
        ("v1=00", b"x", "MALFORMED"),
        (sign(KEY, b"x", NOW), b"y", "MISMATCH"),  # body altered
        (sign(b"other", b"x", NOW), b"x", "MISMATCH"),  # forged with another key
        (sign(KEY, b"x", NOW - 301), b"x", "STALE"),  # replayed later
        (sign(KEY, b"x", NOW + 301), b"x", "STALE"),
    ],
)
def test_bad_signatures_are_refused_with_a_code(header: str | None, body: bytes, code: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify([KEY], header, body, now=NOW)
    assert info.value.code == code


def test_a_replay_with_a_fresh_timestamp_does_not_verify() -> None:
    digest = sign(KEY, b"x", NOW - 1000).partition(",v1=")[2]
    with pytest.raises(SignatureError) as info:
        verify([KEY], f"t={NOW},v1={digest}", b"x", now=NOW)
    assert info.value.code == "MISMATCH"


def test_rotation_accepts_either_key() -> None:
    old, new = b"old", b"new"
    assert verify([new, old], sign(old, b"x", NOW), b"x", now=NOW) == NOW
    assert verify([new, old], sign(new, b"x", NOW), b"x", now=NOW) == NOW
    with pytest.raises(SignatureError):
        verify([new], sign(old, b"x", NOW), b"x", now=NOW)


@given(st.binary(max_size=512), st.binary(min_size=1, max_size=64))
def test_round_trip_for_any_body_and_key(body: bytes, key: bytes) -> None:
    assert verify([key], sign(key, body, NOW), body, now=NOW) == NOW
