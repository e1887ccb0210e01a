"""Which Experience Insights events Exstream sends for one composed customer, per channel (pure).

Each communication first reports ``Exstream-Generated`` (document generated). Then, per channel
of the emulated flow (its output channels are named as below; a deployment names its own):

========  =====================================================================================
PRINT     ``Exstream-PrintFile`` (print file written), ``Exstream-PrintMail`` (the mail house's
          output channel delivered: mailed)
EMAIL     ``Exstream-Email-Submit``, ``Exstream-Email-POST`` [, ``Exstream-Email-OPEN``], or
          ``Exstream-Email-Submit``, ``Exstream-Email-NDLV`` (not delivered: a bounce)
WEB       ``Exstream-Portal``
SMS       ``Exstream-SMS``
PUSH      ``Exstream-Push``
========  =====================================================================================

A dispatch that fails ends with ``Exstream-<channelName>-Failed``. Opening an email is the
customer's choice: only a share of delivered emails report ``Exstream-Email-OPEN``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

OUTPUT_CHANNELS: dict[str, tuple[str, ...]] = {
    "PRINT": ("PrintFile", "PrintMail"),
    "EMAIL": ("Email-Submit", "Email-POST"),
    "WEB": ("Portal",),
    "SMS": ("SMS",),
    "PUSH": ("Push",),
}
FIRST_CHANNEL = {"PRINT": "PrintFile", "EMAIL": "Email", "WEB": "Portal", "SMS": "SMS"}
GENERATED = "Exstream-Generated"


def failed_type(channel: str) -> str:
    """The failure event of a channel's (first) output channel."""
    return f"Exstream-{FIRST_CHANNEL.get(channel, channel.title())}-Failed"


@dataclass(frozen=True, slots=True)
class EventStep:
    schema_type: str
    msg: str | None = None
    """Why a dispatch failed (``Failed`` events only)."""


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Shares of customers with each unhappy ending (0..1), drawn per customer."""

    bounce_rate: float = 0.0
    failure_rate: float = 0.0
    open_rate: float = 0.5


def plan(channel: str, outcomes: Outcomes, rng: random.Random) -> list[EventStep]:
    """The delivery events of one generated document, in order (after ``Exstream-Generated``)."""
    if rng.random() < outcomes.failure_rate:
        return [EventStep(failed_type(channel), msg="DISPATCH_FAILED: output queue rejected it")]
    path = OUTPUT_CHANNELS.get(channel)
    if path is None:
        return [EventStep(failed_type(channel), msg=f"UNSUPPORTED_CHANNEL: {channel}")]
    if channel == "EMAIL" and rng.random() < outcomes.bounce_rate:
        return [EventStep("Exstream-Email-Submit"), EventStep("Exstream-Email-NDLV")]
    steps = [EventStep(f"Exstream-{name}") for name in path]
    if channel == "EMAIL" and rng.random() < outcomes.open_rate:
        steps.append(EventStep("Exstream-Email-OPEN"))
    return steps
