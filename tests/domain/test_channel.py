from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.channel import (
    ChannelChoice,
    Undeliverable,
    UndeliverableCode,
    choose_channel,
    fallback_channel,
)
from streams.domain.contacts import HOUR_MS, in_quiet_hours
from streams.domain.records import Channel, Preference
from tests.domain.factories import address, preference, quiet

pytestmark = pytest.mark.unit

NOON = 1_699_963_200_000  # 2023-11-14T12:00:00Z
NIGHT = NOON + 11 * HOUR_MS  # 23:00 UTC

NOTHING = {
    "email_consent": False,
    "sms_consent": False,
    "push_consent": False,
    "web_consent": False,
}


def outcome(result: ChannelChoice | Undeliverable) -> str:
    return result.channel.value if isinstance(result, ChannelChoice) else result.code.value


def choose(
    pref: Preference | None,
    *,
    regulatory: bool = False,
    at: int = NOON,
    allowed: list[str] | None = None,
) -> str:
    return outcome(choose_channel(pref, regulatory=regulatory, at_ms=at, allowed=allowed))


@pytest.mark.parametrize(
    ("overrides", "regulatory", "at", "allowed", "expected"),
    [
        # row 2: regulatory -> print, whatever paperless and consents say
        ({}, True, NOON, None, "PRINT"),
        ({"paperless": True}, True, NOON, None, "PRINT"),
        ({"paperless": True, **NOTHING}, True, NOON, None, "PRINT"),
        ({"postal_address": None}, True, NOON, None, "NO_POSTAL_ADDRESS"),
        ({"postal_address": address(country="")}, True, NOON, None, "NO_POSTAL_ADDRESS"),
        ({}, True, NOON, ["EMAIL"], "CHANNEL_UNSUPPORTED"),
        # row 3: not paperless -> PRINT, EMAIL, WEB, PUSH, SMS
        ({}, False, NOON, None, "PRINT"),
        ({"postal_address": None}, False, NOON, None, "EMAIL"),
        ({"postal_address": None, "email": "broken"}, False, NOON, None, "WEB"),
        ({"postal_address": None, "email_consent": False}, False, NOON, None, "WEB"),
        (
            {"postal_address": None, "email_consent": False, "web_consent": False},
            False,
            NOON,
            None,
            "PUSH",
        ),
        ({"postal_address": None, **NOTHING, "sms_consent": True}, False, NOON, None, "SMS"),
        ({"postal_address": None, **NOTHING}, False, NOON, None, "NO_CONSENTED_CHANNEL"),
        ({}, False, NOON, ["EMAIL", "WEB"], "EMAIL"),
        # row 4: paperless -> EMAIL, WEB, PUSH, SMS, never PRINT
        ({"paperless": True}, False, NOON, None, "EMAIL"),
        ({"paperless": True, "email": None}, False, NOON, None, "WEB"),
        (
            {"paperless": True, "email_consent": False, "web_consent": False},
            False,
            NOON,
            None,
            "PUSH",
        ),
        (
            {
                "paperless": True,
                "email_consent": False,
                "web_consent": False,
                "push_registered": False,
            },
            False,
            NOON,
            None,
            "SMS",
        ),
        (
            {"paperless": True, **NOTHING, "sms_consent": True, "phone": "12"},
            False,
            NOON,
            None,
            "NO_CONSENTED_CHANNEL",
        ),
        ({"paperless": True, **NOTHING}, False, NOON, None, "NO_CONSENTED_CHANNEL"),
        ({"paperless": True}, False, NOON, ["PRINT"], "CHANNEL_UNSUPPORTED"),
        ({"paperless": True}, False, NOON, ["PRINT", "WEB"], "WEB"),
        # quiet hours (22-07 UTC) block mobile channels only
        ({"paperless": True, "quiet_hours": quiet(22, 7)}, False, NIGHT, None, "EMAIL"),
        (
            {"paperless": True, **NOTHING, "push_consent": True, "quiet_hours": quiet(22, 7)},
            False,
            NIGHT,
            None,
            "QUIET_HOURS",
        ),
        (
            {"paperless": True, **NOTHING, "sms_consent": True, "quiet_hours": quiet(22, 7)},
            False,
            NOON,
            None,
            "SMS",
        ),
        (
            {"postal_address": None, **NOTHING, "sms_consent": True, "quiet_hours": quiet(22, 7)},
            False,
            NIGHT,
            None,
            "QUIET_HOURS",
        ),
        # quiet hours in the customer's local time: 23:00 UTC is 18:00 at UTC-5
        (
            {"paperless": True, **NOTHING, "sms_consent": True, "quiet_hours": quiet(22, 7, -300)},
            False,
            NIGHT,
            None,
            "SMS",
        ),
        ({"quiet_hours": quiet(22, 7)}, True, NIGHT, None, "PRINT"),  # print has no quiet hours
    ],
)
def test_precedence_table(
    overrides: dict[str, Any], regulatory: bool, at: int, allowed: list[str] | None, expected: str
) -> None:
    assert (
        choose(preference(**overrides), regulatory=regulatory, at=at, allowed=allowed) == expected
    )


@pytest.mark.parametrize("regulatory", [True, False])
def test_no_preference_is_undeliverable(regulatory: bool) -> None:
    assert choose(None, regulatory=regulatory) == "NO_PREFERENCE"
    assert outcome(fallback_channel(None, "EMAIL")) == "NO_PREFERENCE"


def test_quiet_hours_outcome_says_when_to_retry() -> None:
    pref = preference(
        **{**NOTHING, "paperless": True, "sms_consent": True}, quiet_hours=quiet(22, 7)
    )
    result = choose_channel(pref, regulatory=False, at_ms=NIGHT)
    assert isinstance(result, Undeliverable)
    assert result.code is UndeliverableCode.QUIET_HOURS
    assert result.retry_at == NOON - 12 * HOUR_MS + 31 * HOUR_MS  # 07:00 the next day


def test_reasons_carry_no_contact_data() -> None:
    pref = preference(postal_address=None, email="someone@example.org", phone="+15550000000")
    for regulatory in (True, False):
        result = choose_channel(pref, regulatory=regulatory, at_ms=NOON)
        assert "someone@example.org" not in result.reason
        assert "+15550000000" not in result.reason


@pytest.mark.parametrize(
    ("overrides", "failed", "regulatory", "expected"),
    [
        # email bounced: print for a customer on paper, or for a regulatory communication
        ({}, "EMAIL", False, "PRINT"),
        ({"paperless": True}, "EMAIL", True, "PRINT"),
        ({"paperless": True}, "EMAIL", False, "WEB"),
        ({"paperless": True, "web_consent": False}, "EMAIL", False, "NO_FALLBACK"),
        ({"postal_address": None}, "EMAIL", False, "WEB"),
        ({"postal_address": None}, "EMAIL", True, "NO_FALLBACK"),
        ({"postal_address": None, "web_consent": False}, "EMAIL", False, "NO_FALLBACK"),
        # returned mail
        ({}, "PRINT", True, "NO_FALLBACK"),
        ({}, "PRINT", False, "EMAIL"),
        ({"email_consent": False}, "PRINT", False, "WEB"),
        # mobile and web failures
        ({}, "SMS", False, "PRINT"),
        ({"paperless": True}, "SMS", False, "EMAIL"),
        ({"paperless": True}, "PUSH", False, "EMAIL"),
        ({"paperless": True}, "WEB", False, "EMAIL"),
        ({"paperless": True, "email_consent": False}, "WEB", False, "NO_FALLBACK"),
        ({}, "WEB", False, "PRINT"),
    ],
)
def test_fallback_table(
    overrides: dict[str, Any], failed: str, regulatory: bool, expected: str
) -> None:
    result = fallback_channel(preference(**overrides), failed, regulatory=regulatory)
    assert outcome(result) == expected


def test_fallback_respects_template_channels() -> None:
    assert outcome(fallback_channel(preference(), "EMAIL", allowed=["WEB"])) == "WEB"


# ------------------------------------------------------------------ properties

preferences = st.builds(
    preference,
    paperless=st.booleans(),
    email_consent=st.booleans(),
    sms_consent=st.booleans(),
    push_consent=st.booleans(),
    web_consent=st.booleans(),
    push_registered=st.booleans(),
    email=st.sampled_from([None, "pat@example.com", "not-an-email"]),
    phone=st.sampled_from([None, "+15551234567", "12"]),
    postal_address=st.sampled_from([None, address(), address(postal_code="")]),
    quiet_hours=st.one_of(
        st.none(), st.builds(quiet, st.integers(0, 24), st.integers(0, 24), st.integers(-600, 600))
    ),
)
times = st.integers(0, 2**42)
allowed_lists = st.one_of(st.none(), st.lists(st.sampled_from(list(Channel)), max_size=3))
CONSENT = {
    Channel.EMAIL: "email_consent",
    Channel.SMS: "sms_consent",
    Channel.PUSH: "push_consent",
    Channel.WEB: "web_consent",
}


@given(preferences, st.booleans(), times, allowed_lists)
def test_consent_is_absolute(
    pref: Preference, regulatory: bool, at: int, allowed: list[Channel] | None
) -> None:
    result = choose_channel(pref, regulatory=regulatory, at_ms=at, allowed=allowed)
    if isinstance(result, ChannelChoice) and result.channel in CONSENT:
        assert getattr(pref, CONSENT[result.channel])


@given(preferences, st.sampled_from(list(Channel)), st.booleans(), allowed_lists)
def test_fallback_never_uses_a_channel_without_consent(
    pref: Preference, failed: Channel, regulatory: bool, allowed: list[Channel] | None
) -> None:
    result = fallback_channel(pref, failed, regulatory=regulatory, allowed=allowed)
    if isinstance(result, ChannelChoice):
        assert result.channel != failed
        assert result.channel not in (Channel.SMS, Channel.PUSH)
        if result.channel in CONSENT:
            assert getattr(pref, CONSENT[result.channel])
        if pref.paperless and not regulatory:
            assert result.channel is not Channel.PRINT
        if regulatory:
            assert result.channel is Channel.PRINT


@given(preferences, times, allowed_lists)
def test_regulatory_is_print_or_undeliverable(
    pref: Preference, at: int, allowed: list[Channel] | None
) -> None:
    result = choose_channel(pref, regulatory=True, at_ms=at, allowed=allowed)
    assert isinstance(result, Undeliverable) or result.channel is Channel.PRINT


@given(preferences, times, allowed_lists)
def test_non_regulatory_choice_properties(
    pref: Preference, at: int, allowed: list[Channel] | None
) -> None:
    result = choose_channel(pref, regulatory=False, at_ms=at, allowed=allowed)
    if isinstance(result, Undeliverable):
        assert result.code is not UndeliverableCode.NO_POSTAL_ADDRESS
        if result.code is UndeliverableCode.QUIET_HOURS:
            assert in_quiet_hours(pref.quiet_hours, at)
        return
    channel = result.channel
    if allowed:
        assert channel in allowed
    if pref.paperless:
        assert channel is not Channel.PRINT
    if channel in (Channel.SMS, Channel.PUSH):
        assert not in_quiet_hours(pref.quiet_hours, at)
    if channel is Channel.EMAIL:
        assert pref.email == "pat@example.com"
    if channel is Channel.SMS:
        assert pref.phone == "+15551234567"
    if channel is Channel.PUSH:
        assert pref.push_registered
    if channel is Channel.PRINT:
        assert pref.postal_address == address()
