"""Experience-Insights-shaped events -> :class:`~streams.domain.records.DeliveryEvent` (pure).

Exstream reports delivery and engagement as EI events (``schemaType`` in the ``expctr``
envelope). Each maps onto one project status:

==========================================  ===================  ===============================
``schemaType``                               status               public source / choice
==========================================  ===================  ===============================
``Exstream-Generated``                       COMPOSED             public (document generated)
``Exstream-Email-Submit``                    EMAIL_SENT           public (handed to Notifications)
``Exstream-Email-POST``                      EMAIL_DELIVERED      public (posted to recipient)
``Exstream-Email-OPEN``                      EMAIL_OPENED         public
``Exstream-Email-NDLV``                      EMAIL_BOUNCED, HARD  public status name; the bounce
                                                                  type is this mapping's choice
``Exstream-<print file channel>``            PRINTED              public pattern; channel name
                                                                  is deployment configuration
``Exstream-<mail house channel>``            MAILED               public pattern; no public
                                                                  "mailed" event (see below)
``Exstream-<portal channel>``                WEB_POSTED           public pattern
``Exstream-<SMS channel>``                   SMS_DELIVERED        public pattern
``Exstream-<push channel>``                  PUSH_DELIVERED       public pattern
``Exstream-<any channel>-Failed``            FAILED               public pattern
==========================================  ===================  ===============================

Exstream publishes no event for print completion or mailing: a deployment that needs MAILED
configures the mail house's delivery as an output channel of its own (its delivery event is
then ``Exstream-<that channel>``). Soft bounces and SMS/push delivery receipts have no public
equivalent either; the SMS and push channels' delivery events stand for "delivered". Channel
names are :class:`ChannelNames` (defaults match the emulator's flow).

Which of our communications an event is about comes from the ``user`` namespace (the output
manifest's metadata): ``AirCommunicationId``, ``CustomerId``, ``AirChannel``, and optionally
``DocumentId`` and ``ExstreamJobId``. The event id is ``expctr.eventId`` when present, else a hash
of the event's canonical JSON (so a re-sent copy has the same id). The time is
``expctr.eventDate``, else the ``creationTime`` of ``exstreamJob`` or
``exstreamEmailStatistics``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from streams.domain.records import Channel, DeliveryEvent, DeliveryStatus
from streams.errors import AirExstreamError

CHANNELS = frozenset(c.value for c in Channel)
MAX_LONG = 2**63 - 1
PREFIX = "Exstream-"


class PayloadError(AirExstreamError, ValueError):
    """An event that is not a valid delivery event. ``code`` is stable for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ChannelNames:
    """Output channel names of the deployment's flow -> the status their delivery means."""

    delivered: dict[str, str] = field(
        default_factory=lambda: {
            "PrintFile": DeliveryStatus.PRINTED.value,
            "PrintMail": DeliveryStatus.MAILED.value,
            "Portal": DeliveryStatus.WEB_POSTED.value,
            "SMS": DeliveryStatus.SMS_DELIVERED.value,
            "Push": DeliveryStatus.PUSH_DELIVERED.value,
        }
    )


EMAIL_STATUSES = {
    "Submit": (DeliveryStatus.EMAIL_SENT.value, None),
    "POST": (DeliveryStatus.EMAIL_DELIVERED.value, None),
    "OPEN": (DeliveryStatus.EMAIL_OPENED.value, None),
    "NDLV": (DeliveryStatus.EMAIL_BOUNCED.value, "HARD"),
}


def canonical(event: Any) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def digest(event: Any) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def _object(parent: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(
            "MISSING_FIELD" if value is None else "BAD_TYPE", f"{key} must be an object"
        )
    return value


def _text(parent: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = parent.get(key)
    if value is None:
        if required:
            raise PayloadError("MISSING_FIELD", f"{where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise PayloadError("BAD_TYPE", f"{where}.{key} must be a string")
    if not value.strip():
        if required:
            raise PayloadError("BAD_VALUE", f"{where}.{key} must not be empty")
        return None
    return value


def _time_ms(value: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("no time zone")
        ms = round(moment.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(
            "BAD_VALUE", f"{where} must be an ISO-8601 date-time with a zone"
        ) from None
    if not 0 <= ms <= MAX_LONG:
        raise PayloadError("BAD_VALUE", f"{where} is out of range")
    return ms


def status_of(schema_type: str, names: ChannelNames) -> tuple[str, str | None, bool]:
    """``(status, bounce type, failed)`` of a ``schemaType``; PayloadError when unknown."""
    if not schema_type.startswith(PREFIX):
        raise PayloadError("UNKNOWN_STATUS", "schemaType is not an Exstream event type")
    rest = schema_type[len(PREFIX) :]
    if rest == "Generated":
        return DeliveryStatus.COMPOSED.value, None, False
    if rest.endswith("-Failed") and rest[: -len("-Failed")]:
        return DeliveryStatus.FAILED.value, None, True
    if rest.startswith("Email-"):
        known = EMAIL_STATUSES.get(rest[len("Email-") :])
        if known is None:
            raise PayloadError(
                "UNKNOWN_STATUS", "schemaType names an email status this receiver does not map"
            )
        return known[0], known[1], False
    status = names.delivered.get(rest)
    if status is None:
        raise PayloadError(
            "UNKNOWN_STATUS", "schemaType names an output channel this receiver does not map"
        )
    return status, None, False


def to_delivery_event(event: Any, names: ChannelNames | None = None) -> DeliveryEvent:
    """The :class:`DeliveryEvent` of one EI event; :class:`PayloadError` when it is invalid.
    No other exception escapes, whatever ``event`` holds. Messages name fields, never values."""
    names = names or ChannelNames()
    if not isinstance(event, dict):
        raise PayloadError("NOT_OBJECT", "each event must be a JSON object")
    envelope = _object(event, "expctr")
    user = _object(event, "user")
    job = _object(event, "exstreamJob", required=False)
    email = _object(event, "exstreamEmailStatistics", required=False)
    schema_type = _text(envelope, "schemaType", "expctr") or ""
    status, bounce, failed = status_of(schema_type, names)
    channel = _text(user, "AirChannel", "user") or ""
    if channel not in CHANNELS:
        raise PayloadError(
            "UNKNOWN_CHANNEL", f"user.AirChannel must be one of {', '.join(sorted(CHANNELS))}"
        )
    when = (
        _text(envelope, "eventDate", "expctr", required=False)
        or _text(job, "creationTime", "exstreamJob", required=False)
        or _text(email, "creationTime", "exstreamEmailStatistics", required=False)
    )
    if when is None:
        raise PayloadError("MISSING_FIELD", "expctr.eventDate (or a creationTime) is required")
    event_id = _text(envelope, "eventId", "expctr", required=False) or f"ei-{digest(event)[:32]}"
    exception_code = exception_text = None
    if failed:
        msg = _text(job, "msg", "exstreamJob", required=False)
        code, sep, text = (msg or "").partition(":")
        if sep and code.strip().replace("_", "").isalnum() and code.strip().isupper():
            exception_code, exception_text = code.strip(), text.strip() or None
        else:
            exception_code = "DELIVERY_FAILED"
            exception_text = msg
        exception_text = exception_text or f"{schema_type} reported by Exstream"
    return DeliveryEvent(
        event_id=event_id,
        communication_id=_text(user, "AirCommunicationId", "user") or "",
        customer_id=_text(user, "CustomerId", "user") or "",
        job_id=_text(user, "ExstreamJobId", "user", required=False),
        document_id=_text(user, "DocumentId", "user", required=False),
        channel=channel,
        status=status,
        occurred_at=_time_ms(when, "the event time"),
        bounce_type=bounce,
        exception_code=exception_code,
        exception_text=exception_text,
    )
