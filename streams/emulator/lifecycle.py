"""Which delivery events Exstream reports for one composed item, per channel (pure).

After ``ACCEPTED`` and ``COMPOSED``, each channel has its own path:

========  ==============================================================
PRINT     PRINTED, MAILED
EMAIL     EMAIL_SENT, EMAIL_DELIVERED, EMAIL_OPENED (or EMAIL_SENT, EMAIL_BOUNCED)
WEB       WEB_POSTED
SMS       SMS_DELIVERED
PUSH      PUSH_DELIVERED
========  ==============================================================

An item that fails (composition or dispatch) ends with ``FAILED`` and an exception code. Opening
an email is the customer's choice: only a share of delivered emails report EMAIL_OPENED.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from streams.domain.records import DeliveryStatus as S

CHANNEL_PATHS: dict[str, tuple[S, ...]] = {
    "PRINT": (S.PRINTED, S.MAILED),
    "EMAIL": (S.EMAIL_SENT, S.EMAIL_DELIVERED),
    "WEB": (S.WEB_POSTED,),
    "SMS": (S.SMS_DELIVERED,),
    "PUSH": (S.PUSH_DELIVERED,),
}

TERMINAL = frozenset(
    {S.MAILED, S.EMAIL_DELIVERED, S.EMAIL_OPENED, S.EMAIL_BOUNCED, S.WEB_POSTED}
    | {S.SMS_DELIVERED, S.PUSH_DELIVERED, S.FAILED}
)


@dataclass(frozen=True, slots=True)
class Step:
    status: S
    bounce_type: str | None = None
    exception_code: str | None = None
    exception_text: str | None = None


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Shares of items with each unhappy ending (0..1), drawn per item."""

    bounce_rate: float = 0.0
    failure_rate: float = 0.0
    open_rate: float = 0.5


def plan(channel: str, outcomes: Outcomes, rng: random.Random) -> list[Step]:
    """The lifecycle events of one item after composition, in order."""
    if rng.random() < outcomes.failure_rate:
        return [
            Step(
                S.FAILED,
                exception_code="DISPATCH_FAILED",
                exception_text="output queue rejected the item",
            )
        ]
    path = CHANNEL_PATHS.get(channel)
    if path is None:
        return [
            Step(
                S.FAILED,
                exception_code="UNSUPPORTED_CHANNEL",
                exception_text=f"channel {channel!r}",
            )
        ]
    if channel == "EMAIL" and rng.random() < outcomes.bounce_rate:
        bounce = "HARD" if rng.random() < 0.7 else "SOFT"
        return [Step(S.EMAIL_SENT), Step(S.EMAIL_BOUNCED, bounce_type=bounce)]
    steps = [Step(status) for status in path]
    if channel == "EMAIL" and rng.random() < outcomes.open_rate:
        steps.append(Step(S.EMAIL_OPENED))
    return steps
