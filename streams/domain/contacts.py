"""Simple validity checks of contact data and quiet hours (no network look-ups).

The checks catch data that certainly cannot work; they do not prove deliverability (bounces and
returned mail report that later, see :func:`streams.domain.channel.fallback_channel`).

- **email**: at most 254 characters; one ``@``; a local part of 1-64 characters from the RFC 5322
  "atext" set plus dots, neither starting nor ending with a dot, no ``..``; a domain of at least two
  dot-separated labels (letters, digits, inner hyphens, at most 63 characters each) whose last label
  is 2-63 letters.
- **phone**: E.164 after removing spaces, hyphens, dots and parentheses: ``+``, a non-zero digit,
  then 7 to 14 more digits.
- **postal address**: ``line1``, ``city`` and ``postal_code`` non-blank, ``postal_code`` at most 12
  letters, digits, spaces or hyphens, ``country`` an upper-case ISO 3166-1 alpha-2 code.
- **quiet hours**: local hours ``[start_hour, end_hour)``, local time being UTC plus
  ``utc_offset_minutes``. ``start_hour > end_hour`` wraps midnight (22 -> 7 is quiet from 22:00 to
  06:59); ``start_hour == end_hour`` means no quiet hours, 0 -> 24 the whole day. Hours must be in
  0..24 and the offset within +/-18 hours; a window outside those bounds cannot be interpreted and
  is treated as *always quiet*, because disturbing a customer is worse than sending by another
  channel.
"""

from __future__ import annotations

import re

from streams.domain.records import PostalAddress, QuietHours

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MAX_OFFSET_MINUTES = 18 * 60

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
_PHONE = re.compile(r"\+[1-9]\d{7,14}")
_PHONE_SEPARATORS = str.maketrans("", "", " -.()")
_POSTAL_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,11}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def valid_email(email: str | None) -> bool:
    if email is None or len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not _LOCAL.fullmatch(local) or local.startswith(".") or local.endswith("."):
        return False
    return ".." not in local and _DOMAIN.fullmatch(domain) is not None


def valid_phone(phone: str | None) -> bool:
    return phone is not None and _PHONE.fullmatch(phone.translate(_PHONE_SEPARATORS)) is not None


def valid_postal_address(address: PostalAddress | None) -> bool:
    if address is None:
        return False
    if not address.line1.strip() or not address.city.strip():
        return False
    return (
        _POSTAL_CODE.fullmatch(address.postal_code.strip()) is not None
        and _COUNTRY.fullmatch(address.country) is not None
    )


def _interpretable(quiet: QuietHours) -> bool:
    return (
        0 <= quiet.start_hour <= 24
        and 0 <= quiet.end_hour <= 24
        and abs(quiet.utc_offset_minutes) <= MAX_OFFSET_MINUTES
    )


def local_hour(at_ms: int, utc_offset_minutes: int) -> int:
    """The hour of day (0-23) at ``at_ms`` in a zone ``utc_offset_minutes`` from UTC."""
    return ((at_ms + utc_offset_minutes * 60_000) % DAY_MS) // HOUR_MS


def in_quiet_hours(quiet: QuietHours | None, at_ms: int) -> bool:
    """Whether ``at_ms`` (UTC) falls in the customer's quiet hours (see the module docstring)."""
    if quiet is None:
        return False
    if not _interpretable(quiet):
        return True
    length = _length_hours(quiet)
    hour = local_hour(at_ms, quiet.utc_offset_minutes)
    return (hour - quiet.start_hour) % 24 < length


def _length_hours(quiet: QuietHours) -> int:
    """Hours in the window: 0 when start equals end, 24 for e.g. 0 -> 24."""
    if quiet.start_hour == quiet.end_hour:
        return 0
    return (quiet.end_hour - quiet.start_hour) % 24 or 24


def quiet_hours_end(quiet: QuietHours, at_ms: int) -> int | None:
    """When the quiet period containing ``at_ms`` ends (UTC ms), or None if it never ends
    (a whole-day or uninterpretable window) or ``at_ms`` is not in quiet hours."""
    if not _interpretable(quiet) or _length_hours(quiet) == 24:
        return None
    if not in_quiet_hours(quiet, at_ms):
        return None
    offset_ms = quiet.utc_offset_minutes * 60_000
    local_ms = at_ms + offset_ms
    end_local = local_ms - local_ms % DAY_MS + (quiet.end_hour % 24) * HOUR_MS
    if end_local <= local_ms:
        end_local += DAY_MS
    return end_local - offset_ms
