"""Event batches as data: validation, conversion to ``DeliveryEvent``, and the replay rule.

Pure: no aiohttp, no Kafka, no clock (the caller passes ``now``).

Validation
    A body is a JSON array of 1..``max_events`` Experience-Insights-shaped events (how such
    batches reach a system other than Experience Insights is not public: this is the receiver's
    contract, ``docs/exstream-emulator.md``). Each event is mapped by
    :func:`streams.webhook.mapping.to_delivery_event`. A batch with any invalid event is refused
    whole (nothing of it is written; the body is dead-lettered once): Exstream re-sends batches,
    and a batch half written and half refused could not be retried as a unit. Every failure
    raises :class:`PayloadError` with a stable ``code`` and a message naming the field (and the
    event's position), never quoting a value.

Replay rule (:class:`ReplayGuard`)
    With HMAC authentication the signature check already refuses anything signed more than the
    tolerance ago. On top of it, per event id:

    - first time seen: write it (``NEW``); the id is remembered with the SHA-256 of the event's
      canonical JSON once Kafka confirmed the write;
    - seen again with the same content (Exstream re-sending a batch, or a copy in another
      batch): not written again (``DUPLICATE``);
    - seen again with different content: the batch is refused with 409 (``CONFLICT``) before
      anything of it is written: one event id cannot describe two different things;
    - seen again while the first copy is still being written: wait for that write and answer
      like it (``IN_FLIGHT``).

    Ids are remembered for ``retention_s`` and at most ``max_entries`` of them (oldest forgotten
    first), so memory stays bounded. The guard is per process: a duplicate arriving after the
    retention, or at another instance, is written again. Delivery-event consumers stay
    idempotent on ``event_id`` (tracking does).

    Invalid batches are remembered the same way (by body digest) so that Exstream's retries of
    one invalid batch produce a single dead letter, not one per attempt.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

import orjson

from streams.domain.records import DeliveryEvent
from streams.webhook.mapping import ChannelNames, PayloadError, digest, to_delivery_event

DEFAULT_MAX_EVENTS = 1000

__all__ = ["ParsedEvent", "PayloadError", "parse_batch"]


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    event: DeliveryEvent
    digest: str
    """SHA-256 of the event's canonical JSON: what a re-sent copy must match."""


def parse_batch(
    body: bytes, *, max_events: int = DEFAULT_MAX_EVENTS, names: ChannelNames | None = None
) -> list[ParsedEvent]:
    """Every event of a batch body; :class:`PayloadError` when the body or any event is
    invalid. No other exception escapes, whatever ``body`` holds."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise PayloadError("NOT_JSON", "the body is not valid UTF-8 JSON") from None
    if not isinstance(payload, list):
        raise PayloadError("NOT_ARRAY", "the body must be a JSON array of events")
    if not payload:
        raise PayloadError("EMPTY_BATCH", "the batch holds no event")
    if len(payload) > max_events:
        raise PayloadError("TOO_MANY_EVENTS", f"a batch holds at most {max_events} events")
    out = []
    for i, raw in enumerate(payload):
        try:
            out.append(ParsedEvent(to_delivery_event(raw, names), digest(raw)))
        except PayloadError as exc:
            raise PayloadError(exc.code, f"event {i}: {exc}") from None
    return out


def customer_key(body: bytes) -> bytes | None:
    """The record key for a (possibly invalid) batch: the customer id of its first event when one
    can be read, so that a dead letter lands where the valid events would have; None otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    first = payload[0] if isinstance(payload, list) and payload else None
    user = first.get("user") if isinstance(first, dict) else None
    customer = user.get("CustomerId") if isinstance(user, dict) else None
    return customer.encode() if isinstance(customer, str) and customer else None


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

    def peek(self, key: str, digest: str, now: float) -> Decision:
        """What :meth:`begin` would decide, without registering anything."""
        entry = self._entries.get(key)
        if entry is None or now - entry.seen_at > self.retention_s:
            return Decision.NEW
        if entry.digest != digest:
            return Decision.CONFLICT
        return Decision.DUPLICATE if entry.done else Decision.IN_FLIGHT

    def committed(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.done

    def abandon(self, key: str) -> None:
        """The write of ``key`` failed: forget it, so that a retry is written."""
        entry = self._entries.get(key)
        if entry is not None and not entry.done:
            del self._entries[key]
