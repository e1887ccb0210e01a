"""The bound on delivery events parked for a communication the tracker does not know yet (pure).

Exstream can report on a communication before its command is registered; such events wait
("park") and are applied when it is. :func:`decide_parking` bounds how many wait per
communication id; :mod:`streams.routing.tracking` carries the decision out and explains the
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

MAX_PARKED_PER_COMMUNICATION = 32
"""Most delivery events parked for one unknown communication id (why 32: see
:mod:`streams.routing.tracking`)."""

PARKED_LIMIT = "PARKED_LIMIT"
"""Dead-letter code of a delivery event refused because its communication's parking is full."""


class ParkDecision(StrEnum):
    PARK = "PARK"
    """Park the event until its command is registered."""
    DUPLICATE = "DUPLICATE"
    """An event with this id is already parked: ignore it."""
    LIMIT = "LIMIT"
    """The communication has :data:`MAX_PARKED_PER_COMMUNICATION` events parked: dead-letter it."""


def decide_parking(
    parked_event_ids: Sequence[str | None],
    event_id: str,
    *,
    limit: int = MAX_PARKED_PER_COMMUNICATION,
) -> ParkDecision:
    """What to do with delivery event ``event_id`` for a communication the tracker does not know,
    ``parked_event_ids`` being the ids of the events already parked for it (one per entry, in
    order; ``None`` for an entry that cannot be decoded, which counts but matches nothing).
    A duplicate is recognised before the limit: an event already parked is ignored, not
    dead-lettered, even when the communication's parking is full."""
    if event_id in parked_event_ids:
        return ParkDecision.DUPLICATE
    if len(parked_event_ids) >= limit:
        return ParkDecision.LIMIT
    return ParkDecision.PARK


def parked_limit_reason(communication_id: str, event_id: str, parked: int) -> str:
    """The dead letter's reason for a refused event: ids and counts only, never contact data."""
    return (
        f"delivery event {event_id!r} for communication {communication_id!r} was not parked: "
        f"{parked} events already wait for that communication's command, at most "
        f"{MAX_PARKED_PER_COMMUNICATION} are kept per communication (a real one has a handful "
        "of delivery steps); replay it from the dead-letter topic (air-exstream dlq replay) if "
        "the command turns up"
    )
