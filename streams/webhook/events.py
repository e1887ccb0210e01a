"""Delivery callbacks as data: validation, conversion to ``DeliveryEvent``, and the replay rule.

Pure: no aiohttp, no Kafka, no clock (the caller passes ``now``).

Validation
    The body must be a JSON object with the fields of the contract (docs/exstream-emulator.md,
    "Delivery callbacks"): ``eventId``, ``communicationId``, ``customerId`` non-empty strings;
    ``channel`` one of PRINT/EMAIL/WEB/SMS/PUSH; ``status`` a :class:`DeliveryStatus`;
    ``occurredAt`` a non-negative integer (ms since the epoch); ``jobId``, ``documentId``,
    ``exceptionCode``, ``exceptionText`` strings or null; ``bounceType`` HARD/SOFT or null, and
    required for ``EMAIL_BOUNCED``. Unknown extra fields are ignored (forward compatibility).
    When the ``X-Exstream-Event-Id`` header is present it must equal ``eventId``. Every failure
    raises :class:`PayloadError` with a stable ``code`` and a message naming the field, never
    quoting its value.

Replay rule (:class:`ReplayGuard`)
    The signature check already refuses anything signed more than the tolerance ago, so a
    captured callback can only be replayed within that window. On top of it, per event id:

    - first time seen: write it (``NEW``); the id is remembered with the SHA-256 of the body once
      Kafka confirmed the write;
    - seen again with a byte-identical body (an Exstream retry, whatever its new signature):
      answer 200 without writing again (``DUPLICATE``);
    - seen again with a different body: refuse with 409 (``CONFLICT``) — the same event id
      cannot describe two different things;
    - seen again while the first copy is still being written: wait for that write and answer
      like it (``IN_FLIGHT``).

    Ids are remembered for ``retention_s`` (default twice the signature tolerance) and at most
    ``max_entries`` of them (oldest forgotten first), so memory stays bounded. The guard is
    per process: a duplicate arriving after the retention, or at another instance, is written
    again. Delivery-event consumers must therefore stay idempotent on ``event_id`` (the
    pipeline is at-least-once in any case: a write Kafka confirms after the receiver answered
    503 is written again on Exstream's retry).

    Invalid bodies are remembered the same way (by body digest) so that Exstream's retries of
    one invalid callback produce a single dead letter, not one per attempt.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from streams.domain.records import Channel, DeliveryEvent, DeliveryStatus

CHANNELS = frozenset(c.value for c in Channel)
STATUSES = frozenset(s.value for s in DeliveryStatus)
BOUNCE_TYPES = frozenset({"HARD", "SOFT"})
MAX_LONG = 2**63 - 1

REQUIRED_TEXT = ("eventId", "communicationId", "customerId")
OPTIONAL_TEXT = ("jobId", "documentId", "exceptionCode", "exceptionText")


class PayloadError(ValueError):
    """A callback body that is not a valid delivery event. ``code`` is stable for machines."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _required_text(payload: dict[str, Any], key: str) -> str:
    if key not in payload or payload[key] is None:
        raise PayloadError("MISSING_FIELD", f"{key} is required")
    value = payload[key]
    if not isinstance(value, str):
        raise PayloadError("BAD_TYPE", f"{key} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise PayloadError("BAD_VALUE", f"{key} must not be empty")
    return value


def _optional_text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(
            "BAD_TYPE", f"{key} must be a string or null, got {type(value).__name__}"
        )
    return value or None  # the domain's convention: missing is None, never ""


def _enum(payload: dict[str, Any], key: str, allowed: frozenset[str], code: str) -> str:
    value = _required_text(payload, key)
    if value not in allowed:
        raise PayloadError(code, f"{key} must be one of {', '.join(sorted(allowed))}")
    return value


def _timestamp(payload: dict[str, Any], key: str) -> int:
    if key not in payload or payload[key] is None:
        raise PayloadError("MISSING_FIELD", f"{key} is required")
    value = payload[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(
            "BAD_TYPE", f"{key} must be an integer (ms since the epoch), got {type(value).__name__}"
        )
    if not 0 <= value <= MAX_LONG:
        raise PayloadError("BAD_VALUE", f"{key} must be between 0 and 2^63-1")
    return value


def parse_callback(body: bytes, header_event_id: str | None = None) -> DeliveryEvent:
    """The :class:`DeliveryEvent` of a callback body; :class:`PayloadError` when it is invalid.

    No other exception escapes, whatever ``body`` holds."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PayloadError("NOT_JSON", "the body is not valid UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise PayloadError("NOT_OBJECT", "the body must be a JSON object")
    event_id = _required_text(payload, "eventId")
    status = _enum(payload, "status", STATUSES, "UNKNOWN_STATUS")
    channel = _enum(payload, "channel", CHANNELS, "UNKNOWN_CHANNEL")
    bounce_type = _optional_text(payload, "bounceType")
    if bounce_type is not None and bounce_type not in BOUNCE_TYPES:
        raise PayloadError("BAD_VALUE", "bounceType must be HARD, SOFT or null")
    if status == DeliveryStatus.EMAIL_BOUNCED and bounce_type is None:
        raise PayloadError("MISSING_FIELD", "bounceType is required when status is EMAIL_BOUNCED")
    if header_event_id is not None and header_event_id != event_id:
        raise PayloadError(
            "EVENT_ID_MISMATCH", "the X-Exstream-Event-Id header does not match eventId"
        )
    return DeliveryEvent(
        event_id=event_id,
        communication_id=_required_text(payload, "communicationId"),
        customer_id=_required_text(payload, "customerId"),
        job_id=_optional_text(payload, "jobId"),
        document_id=_optional_text(payload, "documentId"),
        channel=channel,
        status=status,
        occurred_at=_timestamp(payload, "occurredAt"),
        bounce_type=bounce_type,
        exception_code=_optional_text(payload, "exceptionCode"),
        exception_text=_optional_text(payload, "exceptionText"),
    )


def customer_key(body: bytes) -> bytes | None:
    """The record key for a (possibly invalid) body: its customer id when one can be read, so
    that a dead letter lands where the valid event would have; None otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(payload, dict):
        customer = payload.get("customerId")
        if isinstance(customer, str) and customer:
            return customer.encode()
    return None


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------- replay rule


class Decision(StrEnum):
    NEW = "NEW"
    """Never seen (or forgotten): write it."""
    DUPLICATE = "DUPLICATE"
    """Already written with the same body: answer 2xx, do not write again."""
    CONFLICT = "CONFLICT"
    """Already seen with a different body: refuse (409)."""
    IN_FLIGHT = "IN_FLIGHT"
    """The same body is being written right now: wait for that write's outcome."""


@dataclass(slots=True)
class _Entry:
    digest: str
    seen_at: float
    done: bool


class ReplayGuard:
    """Remembers event ids and body digests (see the module docstring for the rule)."""

    def __init__(self, *, retention_s: float = 600.0, max_entries: int = 100_000) -> None:
        if retention_s <= 0 or max_entries <= 0:
            raise ValueError("retention_s and max_entries must be positive")
        self.retention_s = retention_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.seen_at <= self.retention_s and len(self._entries) <= self.max_entries:
                break
            del self._entries[key]

    def begin(self, key: str, digest: str, now: float) -> Decision:
        """Decide what to do with ``key`` (an event id) carrying a body of ``digest``.

        ``NEW`` registers the key as in flight: call :meth:`commit` once it is written or
        :meth:`abandon` when the write failed (so that the retry is ``NEW`` again)."""
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(digest, now, done=False)
            self._expire(now)  # keep within max_entries
            return Decision.NEW
        if entry.digest != digest:
            return Decision.CONFLICT
        return Decision.DUPLICATE if entry.done else Decision.IN_FLIGHT

    def commit(self, key: str, now: float) -> None:
        """The write of ``key`` is confirmed: later identical copies are duplicates."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.done = True
            entry.seen_at = now
            self._entries[key] = entry  # most recent last, for expiry in insertion order

    def committed(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.done

    def abandon(self, key: str) -> None:
        """The write of ``key`` failed: forget it, so that a retry is written."""
        entry = self._entries.get(key)
        if entry is not None and not entry.done:
            del self._entries[key]
