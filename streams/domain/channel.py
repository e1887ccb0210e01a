"""Which channel a communication goes by, and which one replaces a failed delivery.

:func:`choose_channel` takes the first *eligible* channel in the order the situation dictates:

====  ===========  ==============  =====================================  ==========================
row   preference   rule            order tried                            nothing eligible
====  ===========  ==============  =====================================  ==========================
1     none         any             (nothing: no consent data, no          ``NO_PREFERENCE``
                                   address is known)
2     present      regulatory      PRINT only, whatever ``paperless``     ``NO_POSTAL_ADDRESS``
                                   and the consents say
3     not          not regulatory  PRINT, EMAIL, WEB, PUSH, SMS           see below
      paperless
4     paperless    not regulatory  EMAIL, WEB, PUSH, SMS (never PRINT)    see below
====  ===========  ==============  =====================================  ==========================

A channel is eligible when:

=======  ===========================================================================================
PRINT    a valid postal address (row 3 also needs ``paperless`` false; row 2 does not: a regulatory
         notice is owed on paper, and print has no consent flag to withdraw)
EMAIL    ``email_consent`` and a valid email address
WEB      ``web_consent`` (the document is posted to the customer's portal inbox)
PUSH     ``push_consent``, ``push_registered``, and the event time is not in quiet hours
SMS      ``sms_consent``, a valid phone number, and the event time is not in quiet hours
=======  ===========================================================================================

and, when the template restricts its channels (``allowed``), the channel is one of them.
Consent is absolute: a digital channel without its consent flag is never chosen, by any row, nor by
a fallback. Validity checks and quiet hours are defined in :mod:`streams.domain.contacts`; quiet
hours use the *event's* time so a replay chooses the same channel.

When nothing is eligible the outcome is :class:`Undeliverable`, its code chosen in this order:
``QUIET_HOURS`` (a mobile channel would be eligible after quiet hours; ``retry_at`` says when),
``CHANNEL_UNSUPPORTED`` (the customer can be reached, but not by a channel the template renders),
else ``NO_CONSENTED_CHANNEL`` (row 2: ``NO_POSTAL_ADDRESS``).

:func:`fallback_channel` picks the replacement after a failed delivery (email bounce, returned
mail, failed SMS). Fallbacks carry the *document*, so only document channels are candidates
(PUSH and SMS carry a short notice, never a document, and quiet hours do not apply):

=============  ==========  ====================================  ================================
failed         regulatory  fallback order (failed one excluded)  nothing eligible
=============  ==========  ====================================  ================================
PRINT          yes         none: a regulatory notice goes on     ``NO_FALLBACK``: Air Inc. must
                           paper only                            correct the address
other          yes         PRINT                                 ``NO_FALLBACK``
any            no          not paperless: PRINT, EMAIL, WEB      ``NO_FALLBACK``
any            no          paperless: EMAIL, WEB (never PRINT)   ``NO_FALLBACK``
=============  ==========  ====================================  ================================

So an email bounce becomes a letter for a customer who is not paperless, or for any customer when
the communication is regulatory; a paperless customer's bounced statement goes to the portal if
they consented to web delivery, else it is not re-sent (the bounce is reported to Air Inc., whose
customer record holds the bad address). A customer who chose paperless has opted out of paper for
ordinary correspondence; a bounce does not override that choice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from streams.domain.contacts import (
    in_quiet_hours,
    quiet_hours_end,
    valid_email,
    valid_phone,
    valid_postal_address,
)
from streams.domain.records import Channel, Preference


class UndeliverableCode(StrEnum):
    NO_PREFERENCE = "NO_PREFERENCE"
    NO_POSTAL_ADDRESS = "NO_POSTAL_ADDRESS"
    NO_CONSENTED_CHANNEL = "NO_CONSENTED_CHANNEL"
    QUIET_HOURS = "QUIET_HOURS"
    CHANNEL_UNSUPPORTED = "CHANNEL_UNSUPPORTED"
    NO_FALLBACK = "NO_FALLBACK"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelChoice:
    channel: Channel
    reason: str
    """Why this channel, for the audit trail (no personal data)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Undeliverable:
    """No channel may be used now. ``reason`` names no contact data."""

    code: UndeliverableCode
    reason: str
    retry_at: int | None = None
    """``QUIET_HOURS`` only: when quiet hours end (UTC ms), the earliest a retry can succeed."""


PAPER_ORDER: Sequence[Channel] = (
    Channel.PRINT,
    Channel.EMAIL,
    Channel.WEB,
    Channel.PUSH,
    Channel.SMS,
)
PAPERLESS_ORDER: Sequence[Channel] = (Channel.EMAIL, Channel.WEB, Channel.PUSH, Channel.SMS)
MOBILE_CHANNELS = frozenset({Channel.PUSH, Channel.SMS})


def _reachable(preference: Preference, channel: Channel) -> bool:
    """Consent and contact data allow ``channel`` (quiet hours and ``paperless`` not considered)."""
    if channel is Channel.PRINT:
        return valid_postal_address(preference.postal_address)
    if channel is Channel.EMAIL:
        return preference.email_consent and valid_email(preference.email)
    if channel is Channel.WEB:
        return preference.web_consent
    if channel is Channel.PUSH:
        return preference.push_consent and preference.push_registered
    return preference.sms_consent and valid_phone(preference.phone)


def _permitted(channel: Channel, allowed: Collection[str] | None) -> bool:
    return allowed is None or not allowed or channel in allowed


_REGULATORY_PRINT = ChannelChoice(channel=Channel.PRINT, reason="regulatory: always print")
_FIRST_ELIGIBLE: Mapping[tuple[bool, Channel], ChannelChoice] = {
    (paperless, channel): ChannelChoice(
        channel=channel,
        reason=(
            f"{'paperless' if paperless else 'not paperless'}: first eligible channel of "
            + ", ".join(c.value for c in (PAPERLESS_ORDER if paperless else PAPER_ORDER))
        ),
    )
    for paperless in (False, True)
    for channel in Channel
}
"""Every choice :func:`choose_channel` can make, made once (they are immutable)."""


def choose_channel(
    preference: Preference | None,
    *,
    regulatory: bool,
    at_ms: int,
    allowed: Collection[str] | None = None,
) -> ChannelChoice | Undeliverable:
    """The channel for a communication at event time ``at_ms`` (see the module docstring).

    ``allowed`` is the template's channel list (None or empty: every channel).
    """
    if preference is None:
        return Undeliverable(
            code=UndeliverableCode.NO_PREFERENCE,
            reason="no preference record for the customer: no consent data and no address known",
        )
    if regulatory:
        if not valid_postal_address(preference.postal_address):
            return Undeliverable(
                code=UndeliverableCode.NO_POSTAL_ADDRESS,
                reason="regulatory communication needs print but no valid postal address is known",
            )
        if not _permitted(Channel.PRINT, allowed):
            return Undeliverable(
                code=UndeliverableCode.CHANNEL_UNSUPPORTED,
                reason="regulatory communication needs print but the template does not render it",
            )
        return _REGULATORY_PRINT

    order = PAPERLESS_ORDER if preference.paperless else PAPER_ORDER
    quiet_until: int | None = None
    quiet_blocked = False
    unsupported = False
    for channel in order:
        if not _reachable(preference, channel):
            continue
        if not _permitted(channel, allowed):
            unsupported = True
            continue
        if channel in MOBILE_CHANNELS and in_quiet_hours(preference.quiet_hours, at_ms):
            quiet_blocked = True
            if preference.quiet_hours is not None:
                quiet_until = quiet_hours_end(preference.quiet_hours, at_ms)
            continue
        return _FIRST_ELIGIBLE[(bool(preference.paperless), channel)]
    if quiet_blocked:
        return Undeliverable(
            code=UndeliverableCode.QUIET_HOURS,
            reason="only mobile channels are eligible and the customer is in quiet hours",
            retry_at=quiet_until,
        )
    if unsupported:
        return Undeliverable(
            code=UndeliverableCode.CHANNEL_UNSUPPORTED,
            reason="the template renders none of the channels the customer can be reached by",
        )
    return Undeliverable(
        code=UndeliverableCode.NO_CONSENTED_CHANNEL,
        reason=f"no consented channel with valid contact data among {_names(order)}",
    )


def fallback_channel(
    preference: Preference | None,
    failed_channel: str,
    *,
    regulatory: bool = False,
    allowed: Collection[str] | None = None,
) -> ChannelChoice | Undeliverable:
    """The channel replacing ``failed_channel`` after a failed delivery, or why there is none.

    See the fallback table in the module docstring. ``allowed`` is the template's channel list.
    """
    if preference is None:
        return Undeliverable(
            code=UndeliverableCode.NO_PREFERENCE,
            reason="no preference record for the customer: no fallback channel can be chosen",
        )
    if regulatory:
        order: Sequence[Channel] = (Channel.PRINT,)
    elif preference.paperless:
        order = (Channel.EMAIL, Channel.WEB)
    else:
        order = (Channel.PRINT, Channel.EMAIL, Channel.WEB)
    for channel in order:
        if channel == failed_channel:
            continue
        if _reachable(preference, channel) and _permitted(channel, allowed):
            return ChannelChoice(channel=channel, reason=f"fallback after {failed_channel} failed")
    return Undeliverable(
        code=UndeliverableCode.NO_FALLBACK,
        reason=f"no eligible fallback after {failed_channel} failed among {_names(order)}",
    )


def _names(channels: Sequence[Channel]) -> str:
    return ", ".join(c.value for c in channels)
