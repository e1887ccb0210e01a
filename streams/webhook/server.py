"""The event receiver over HTTP: ``POST /hooks/exstream``, ``GET /healthz``, ``GET /metrics``.

A batch of Experience-Insights-shaped events goes through, in order:

1. size: over ``max_body_bytes`` (1 MiB) -> 413;
2. the sender (``auth``): ``hmac`` checks ``X-Exstream-Signature`` (:func:`streams.signing.verify`,
   current and previous secret, time tolerance); ``bearer`` checks ``Authorization: Bearer
   <shared secret>`` (current or previous, constant time). Refused -> 401, nothing written;
3. payload (:func:`streams.webhook.events.parse_batch`) -> 400, and the raw body is written to the
   dead-letter topic (``<delivery topic>.dlq``) once, so that nothing is lost; nothing of an
   invalid batch reaches the delivery-events topic;
4. replay rule (:class:`streams.webhook.events.ReplayGuard`): an event id already seen with other
   content -> 409 for the whole batch, nothing written; copies already written are not written
   again;
5. each new ``DeliveryEvent`` is produced (keyed by customer id, ``acks=all``, idempotent
   producer) and the answer (200, ``{"accepted", "duplicates"}``) waits for Kafka's delivery
   reports; any not confirmed within the timeout -> 503 with ``Retry-After``, so that Exstream
   re-sends the batch and nothing is lost (the copies already written are then duplicates).

Every error is ``application/problem+json``. Logs name event ids and reasons, never bodies.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web

from streams.codec import Codecs
from streams.deadletter.letters import dead_letter_headers, make_dead_letter
from streams.domain.records import DeadLetter, DeliveryEvent
from streams.errors import AirExstreamError
from streams.kafka_writer import KafkaWriteError, KafkaWriter
from streams.metrics import add_metrics_route
from streams.signing import SIGNATURE_HEADER, SignatureError, verify
from streams.webhook.events import (
    DEFAULT_MAX_EVENTS,
    Decision,
    ParsedEvent,
    PayloadError,
    ReplayGuard,
    body_digest,
    customer_key,
    parse_batch,
)
from streams.webhook.mapping import ChannelNames
from streams.webhook.metrics import Reason, WebhookMetrics

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
HOOK_PATH = "/hooks/exstream"
RETRIABLE_AFTER_S = 5
"""Retry-After of a 503 answered for a retriable failure the handler did not expect."""
EVENT_ID_RECORD_HEADER = "x-exstream-event-id"
MAX_SIGNATURE_CHARS = 1024
"""Longer signature headers are malformed: ``t=<10 digits>,v1=<64 hex>`` is 81 characters, and a
few signatures side by side (during a secret rotation) stay far below this."""

Headers = Sequence[tuple[str, bytes]]


def problem(
    status: int, title: str, detail: str, *, retry_after: int | None = None, **extra: Any
) -> web.Response:
    """An RFC 9457 problem response (with ``Retry-After`` when the client should come back)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM, headers=headers
    )


def _safe(text: str | None) -> str:
    """An unauthenticated header value fit for a log line (bounded, no control characters)."""
    if text is None:
        return "-"
    return repr(text[:80])


def _raw(header_value: str) -> bytes:
    """A request header's bytes as received: aiohttp decodes headers as UTF-8 with
    ``surrogateescape``, so bytes that are not UTF-8 come back as they were."""
    return header_value.encode("utf-8", "surrogateescape")


def _verify_signature(
    secrets: list[bytes], header: str | None, body: bytes, *, now: int, tolerance_s: int
) -> None:
    """:func:`verify`, with any header it cannot parse refused as MALFORMED.

    ``verify`` expects an ASCII header: a non-ASCII digest (``hmac.compare_digest`` raises
    TypeError), a Unicode digit in the timestamp (``str.isdigit`` accepts it, ``int`` does not) or
    a timestamp of thousands of digits (``int`` refuses it) must be a 401, not a server error.
    """
    if header is not None and (not header.isascii() or len(header) > MAX_SIGNATURE_CHARS):
        raise SignatureError("MALFORMED", "signature header is not t=...,v1=...")
    verify(secrets, header, body, now=now, tolerance_s=tolerance_s)


# --------------------------------------------------------------------------- Kafka


class SinkError(KafkaWriteError):
    """Kafka did not confirm a write (error or timeout): the caller answers 503."""


class EventSink(Protocol):
    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Return once the record is durably written; raise :class:`SinkError` otherwise."""
        ...

    def close(self) -> None: ...


class KafkaSink(KafkaWriter):
    """The receiver's :class:`~streams.kafka_writer.KafkaWriter`: raises :class:`SinkError`.
    Its ``murmur2`` partitioner puts delivery events in the partition of the customer's commands
    and tracking state (co-partitioned topics)."""

    def __init__(self, client_config: Mapping[str, str], *, timeout_s: float = 10.0) -> None:
        super().__init__(
            client_config,
            timeout_s=timeout_s,
            linger_ms=5,
            thread_name="webhook-kafka-poll",
            error=SinkError,
        )


# --------------------------------------------------------------------------- the receiver


AUTH_MODES = ("hmac", "bearer")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    secrets: tuple[bytes, ...]
    """The current webhook secret first, then the one being rotated out (if any)."""
    auth: str = "hmac"
    """``hmac`` (signed bodies, with a time tolerance) or ``bearer`` (a shared secret)."""
    topic: str
    """The delivery-events topic (prefixed as the topology says)."""
    dlq_topic: str
    codecs: Codecs = field(default_factory=Codecs)
    """The process's codecs (``Codecs.from_settings``): how the records are framed."""
    tolerance_s: int = 300
    max_body_bytes: int = 1024 * 1024
    max_events: int = DEFAULT_MAX_EVENTS
    channel_names: ChannelNames = field(default_factory=ChannelNames)
    retry_after_s: int = 5
    replay_retention_s: float | None = None
    """How long event ids are remembered; default twice ``tolerance_s``."""
    replay_max_entries: int = 100_000

    def __post_init__(self) -> None:
        if not self.secrets or not all(self.secrets):
            raise ValueError("at least one non-empty webhook secret is required")
        if self.tolerance_s <= 0 or self.max_body_bytes <= 0 or self.max_events <= 0:
            raise ValueError("tolerance_s, max_body_bytes and max_events must be positive")
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}")


class WebhookReceiver:
    """One receiver: its config, its Kafka sink, its replay memory and metrics."""

    def __init__(
        self,
        config: WebhookConfig,
        sink: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sink = sink
        self.metrics = WebhookMetrics()
        retention = config.replay_retention_s or 2.0 * config.tolerance_s
        self.events = ReplayGuard(retention_s=retention, max_entries=config.replay_max_entries)
        self.invalid = ReplayGuard(retention_s=retention, max_entries=config.replay_max_entries)
        self._inflight: dict[tuple[int, str], asyncio.Future[bool]] = {}
        self._clock = clock
        self._monotonic = monotonic
        self._event_codec = config.codecs.for_topic(config.topic, DeliveryEvent)
        self._letter_codec = config.codecs.for_topic(config.dlq_topic, DeadLetter)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes, middlewares=[_errors])
        app.router.add_post(HOOK_PATH, self.hook)
        app.router.add_get("/healthz", self.healthz)
        add_metrics_route(app, self.metrics.registry)
        app.on_startup.append(self._prepare)
        app.on_cleanup.append(self._close)
        return app

    async def _prepare(self, _app: web.Application) -> None:
        """Register the schemas now: a registry that does not answer stops the receiver at
        start instead of failing its first requests."""
        for codec in (self._event_codec, self._letter_codec):
            await asyncio.to_thread(codec.prepare)

    async def _close(self, _app: web.Application) -> None:
        await asyncio.to_thread(self.sink.close)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def hook(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self.metrics.received.inc()
        try:
            return await self._handle(request)
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    def _reject(self, reason: str) -> None:
        self.metrics.rejected.labels(reason).inc()

    def _authenticate(self, request: web.Request, body: bytes) -> web.Response | None:
        if self.config.auth == "bearer":
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            given = _raw(token.strip())
            if scheme.lower() == "bearer" and any(
                hmac.compare_digest(given, secret) for secret in self.config.secrets
            ):
                return None
            code = "MISSING" if not token else "MISMATCH"
            self._reject(Reason.signature(code))
            log.warning("event batch refused: bearer %s", code)
            return problem(401, "Unauthorized", "a valid bearer secret is required", code=code)
        try:
            _verify_signature(
                list(self.config.secrets),
                request.headers.get(SIGNATURE_HEADER),
                body,
                now=int(self._clock()),
                tolerance_s=self.config.tolerance_s,
            )
        except SignatureError as exc:
            self._reject(Reason.signature(exc.code))
            log.warning("event batch refused: signature %s", exc.code)
            return problem(401, "Unauthorized", str(exc), code=exc.code)
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        limit = self.config.max_body_bytes
        try:
            if request.content_length is not None and request.content_length > limit:
                raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
            body = await request.read()  # the app's client_max_size also stops chunked bodies
        except web.HTTPRequestEntityTooLarge:
            self._reject(Reason.TOO_LARGE)
            log.warning("event batch refused: body too large")
            return problem(413, "Payload too large", f"the body exceeds {limit} bytes")
        refused = self._authenticate(request, body)
        if refused is not None:
            return refused
        try:
            events = parse_batch(
                body, max_events=self.config.max_events, names=self.config.channel_names
            )
        except PayloadError as exc:
            return await self._invalid(request, body, exc)
        return await self._accept(events)

    async def _once(
        self, guard: ReplayGuard, key: str, digest: str, write: Callable[[], Awaitable[None]]
    ) -> Decision:
        """Apply the replay rule around ``write``; raises :class:`SinkError` when the write (or
        the identical one in flight it waited for) failed."""
        decision = guard.begin(key, digest, self._monotonic())
        slot = (id(guard), key)
        if decision is Decision.IN_FLIGHT:
            if not await asyncio.shield(self._inflight[slot]):
                raise SinkError("the identical event in flight was not written")
            return Decision.DUPLICATE
        if decision is not Decision.NEW:
            return decision
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inflight[slot] = done
        written = False
        try:
            await write()
            written = True
        finally:
            if written:
                guard.commit(key, self._monotonic())
            else:
                guard.abandon(key)
            done.set_result(written)
            del self._inflight[slot]
        return Decision.NEW

    def _conflict(self, events: list[ParsedEvent]) -> str | None:
        """The first event id that names other content than before (or elsewhere in the batch)."""
        now = self._monotonic()
        seen: dict[str, str] = {}
        for p in events:
            event_id = p.event.event_id
            if seen.setdefault(event_id, p.digest) != p.digest:
                return event_id
            if self.events.peek(event_id, p.digest, now) is Decision.CONFLICT:
                return event_id
        return None

    async def _accept(self, events: list[ParsedEvent]) -> web.Response:
        conflict = self._conflict(events)
        if conflict is not None:
            self._reject(Reason.CONFLICT)
            log.warning("event batch refused: event %s reused with other content", _safe(conflict))
            return problem(
                409,
                "Conflict",
                "an event id of this batch was already received with different content",
                eventId=conflict,
            )

        def writer(event: DeliveryEvent) -> Callable[[], Awaitable[None]]:
            async def write() -> None:
                await self.sink.send(
                    self.config.topic,
                    event.customer_id.encode(),
                    self._event_codec.encode(event),
                    [(EVENT_ID_RECORD_HEADER, event.event_id.encode())],
                )

            return write

        outcomes = await asyncio.gather(
            *(self._once(self.events, p.event.event_id, p.digest, writer(p.event)) for p in events),
            return_exceptions=True,
        )
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            self.metrics.kafka_errors.inc()
            log.error("%d event(s) of a batch not written: %s", len(failed), failed[0])
            return self._unavailable()
        new = sum(1 for o in outcomes if o is Decision.NEW)
        duplicates = len(outcomes) - new
        self.metrics.accepted.inc(new)
        self.metrics.duplicates.inc(duplicates)
        log.info("event batch: %d written, %d duplicate(s)", new, duplicates)
        return web.json_response({"accepted": new, "duplicates": duplicates})

    async def _invalid(self, request: web.Request, body: bytes, exc: PayloadError) -> web.Response:
        self._reject(Reason.INVALID_PAYLOAD)
        log.warning("event batch invalid: %s", exc.code)
        headers: list[tuple[str, bytes | None]] = []
        if request.content_type:
            headers.append(("content-type", _raw(request.content_type)))
        letter = make_dead_letter(
            source_topic=self.config.topic,
            partition=-1,  # never was on Kafka: no partition nor offset
            offset=-1,
            key=customer_key(body),
            value=body,
            headers=headers,
            error_type=exc.code,
            reason=f"invalid delivery event batch: {exc}",
            failed_at=int(self._clock() * 1000),
        )

        async def write() -> None:
            await self.sink.send(
                self.config.dlq_topic,
                letter.original_key,
                self._letter_codec.encode(letter),
                dead_letter_headers(letter),
            )

        digest = body_digest(body)
        try:
            decision = await self._once(self.invalid, digest, digest, write)
        except SinkError as err:
            self.metrics.kafka_errors.inc()
            log.error("invalid event batch not dead-lettered: %s", err)
            return self._unavailable()
        if decision is Decision.NEW:
            self.metrics.dead_letters.inc()
        return problem(400, "Invalid payload", str(exc), code=exc.code)

    def _unavailable(self) -> web.Response:
        return problem(
            503,
            "Service unavailable",
            "the event could not be stored; retry later",
            retry_after=self.config.retry_after_s,
        )


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return problem(exc.status, exc.reason, exc.text or exc.reason)
        raise
    except AirExstreamError as exc:
        if not exc.retriable:
            raise
        # e.g. the schema registry did not answer: nothing was written, the sender retries
        log.warning("request not served, retriable: %s", exc)
        return problem(
            503,
            "Service unavailable",
            "the event could not be stored; retry later",
            retry_after=RETRIABLE_AFTER_S,
        )


def build_receiver(
    *,
    secrets: Sequence[bytes],
    client_config: Mapping[str, str],
    topic: str,
    dlq_topic: str,
    codecs: Codecs | None = None,
    kafka_timeout_s: float = 10.0,
    **options: Any,
) -> WebhookReceiver:
    """A receiver writing through a new :class:`KafkaSink` (closed with the app)."""
    config = WebhookConfig(
        secrets=tuple(secrets),
        topic=topic,
        dlq_topic=dlq_topic,
        codecs=codecs or Codecs(),
        **options,
    )
    return WebhookReceiver(config, KafkaSink(client_config, timeout_s=kafka_timeout_s))
