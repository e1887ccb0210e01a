from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.contacts import (
    DAY_MS,
    HOUR_MS,
    in_quiet_hours,
    local_hour,
    quiet_hours_end,
    valid_email,
    valid_phone,
    valid_postal_address,
)
from tests.domain.factories import address, quiet

pytestmark = pytest.mark.unit

MIDNIGHT = 1_699_920_000_000  # 2023-11-14T00:00:00Z


def at(hour: float) -> int:
    return MIDNIGHT + int(hour * HOUR_MS)


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("pat@example.com", True),
        ("pat.lee+bills@mail.example.co.uk", True),
        ("p@x.io", True),
        (None, False),
        ("", False),
        ("pat", False),
        ("pat@", False),
        ("@example.com", False),
        ("pat@example", False),
        ("pat@@example.com", False),
        ("pat@exa mple.com", False),
        ("pat lee@example.com", False),
        (".pat@example.com", False),
        ("pat.@example.com", False),
        ("pa..t@example.com", False),
        ("pat@-example.com", False),
        ("pat@example.c", False),
        ("pat@example.123", False),
        ("a" * 65 + "@example.com", False),
        ("a@" + "b" * 250 + ".com", False),
    ],
)
def test_email_validity(email: str | None, ok: bool) -> None:
    assert valid_email(email) is ok


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+15551234567", True),
        ("+1 (555) 123-4567", True),
        ("+44 20 7946 0958", True),
        ("+4915112345678", True),
        (None, False),
        ("", False),
        ("5551234567", False),
        ("+0551234567", False),
        ("+1555", False),
        ("+1234567890123456", False),
        ("+1555abc4567", False),
    ],
)
def test_phone_validity(phone: str | None, ok: bool) -> None:
    assert valid_phone(phone) is ok


@pytest.mark.parametrize(
    ("overrides", "ok"),
    [
        ({}, True),
        ({"postal_code": "SW1A 1AA", "country": "GB"}, True),
        ({"line1": "  "}, False),
        ({"city": ""}, False),
        ({"postal_code": ""}, False),
        ({"postal_code": "1234567890123"}, False),
        ({"postal_code": "12#45"}, False),
        ({"country": "USA"}, False),
        ({"country": "us"}, False),
    ],
)
def test_postal_address_validity(overrides: dict[str, str], ok: bool) -> None:
    assert valid_postal_address(address(**overrides)) is ok


def test_missing_address_is_invalid() -> None:
    assert not valid_postal_address(None)


@pytest.mark.parametrize(
    ("start", "end", "offset", "hour", "is_quiet"),
    [
        (22, 7, 0, 21.99, False),
        (22, 7, 0, 22.0, True),
        (22, 7, 0, 23.5, True),
        (22, 7, 0, 0.0, True),
        (22, 7, 0, 6.99, True),
        (22, 7, 0, 7.0, False),
        (22, 7, 0, 12.0, False),
        (9, 17, 0, 8.99, False),
        (9, 17, 0, 9.0, True),
        (9, 17, 0, 16.99, True),
        (9, 17, 0, 17.0, False),
        (0, 24, 0, 13.0, True),  # whole day
        (8, 8, 0, 8.5, False),  # equal hours: no quiet hours
        # 22-07 local at UTC-5: quiet from 03:00 to 12:00 UTC
        (22, 7, -300, 2.99, False),
        (22, 7, -300, 3.0, True),
        (22, 7, -300, 11.99, True),
        (22, 7, -300, 12.0, False),
        # 22-07 local at UTC+5:30: quiet from 16:30 to 01:30 UTC
        (22, 7, 330, 16.49, False),
        (22, 7, 330, 16.5, True),
        (22, 7, 330, 1.49, True),
        (22, 7, 330, 1.5, False),
        # uninterpretable windows are always quiet
        (25, 7, 0, 12.0, True),
        (-1, 7, 0, 12.0, True),
        (22, 7, 24 * 60, 12.0, True),
    ],
)
def test_quiet_hours(start: int, end: int, offset: int, hour: float, is_quiet: bool) -> None:
    assert in_quiet_hours(quiet(start, end, offset), at(hour)) is is_quiet


def test_no_quiet_hours_is_never_quiet() -> None:
    assert not in_quiet_hours(None, at(3))


@pytest.mark.parametrize(
    ("start", "end", "offset", "hour", "ends_at"),
    [
        (22, 7, 0, 23.0, 24 + 7),
        (22, 7, 0, 2.0, 7),
        (9, 17, 0, 10.0, 17),
        (22, 7, -300, 4.0, 12),
    ],
)
def test_quiet_hours_end(start: int, end: int, offset: int, hour: float, ends_at: int) -> None:
    assert quiet_hours_end(quiet(start, end, offset), at(hour)) == at(ends_at)


def test_quiet_hours_end_outside_window_or_uninterpretable_is_none() -> None:
    assert quiet_hours_end(quiet(22, 7), at(12)) is None
    assert quiet_hours_end(quiet(30, 7), at(12)) is None
    assert quiet_hours_end(quiet(0, 24), at(12)) is None  # whole day: never ends


@given(
    st.integers(0, 24),
    st.integers(0, 24),
    st.integers(-14 * 60, 14 * 60),
    st.integers(0, 2**42),
)
def test_quiet_window_end_is_after_and_outside(start: int, end: int, offset: int, t: int) -> None:
    window = quiet(start, end, offset)
    inside = in_quiet_hours(window, t)
    assert inside == (start != end and _naive_quiet(start, end, local_hour(t, offset)))
    if inside and {start, end} != {0, 24}:
        ends = quiet_hours_end(window, t)
        assert ends is not None
        assert t < ends <= t + DAY_MS
        assert not in_quiet_hours(window, ends)
        assert in_quiet_hours(window, ends - 1)


def _naive_quiet(start: int, end: int, hour: int) -> bool:
    hours = set()
    h = start % 24
    for _ in range(24):
        hours.add(h)
        h = (h + 1) % 24
        if h == end % 24:
            break
    return hour in hours
