"""The on-demand document service over HTTP (aiohttp). Contract: ``docs/ondemand-openapi.yaml``.

Routes:

- ``GET /v1/customers/{customerId}/documents/{documentType}``: compose one document now
  (``policy-copy``, ``invoice``, ``confirmation-letter``, ``account-summary``); the data the
  template needs as query parameters; the PDF, or with ``?delivery=url`` a signed, expiring link;
- ``GET /v1/documents/{token}``: the PDF behind a signed link (the link is the credential),
  served from the service's document cache (Exstream publishes no store to read a generated
  document back from: a link whose document left the cache answers 410, ask again);
- ``GET /healthz``, ``GET /metrics`` (Prometheus text), ``GET /openapi.yaml``.

A document request goes through, in order: API key (401), customer binding (403), validation and
template resolution (400/404/422, :mod:`streams.ondemand.documents`), the concurrency bound
(503 + ``Retry-After`` at once when full: there is no queue), then — all within one time budget
(default 5 s; 504 when it runs out) — Exstream's synchronous composition (its 429/503/outage:
503 + ``Retry-After``; its 504: 504; other failures: 502) and the two Kafka writes
(``DocumentMetadata`` and ``AuditRecord``; not confirmed: 503, the document is not handed out
unrecorded). Every error is ``application/problem+json``.

Logs carry the route template, status, duration, request id and API key id: never paths (a
signed link's token is in its path), query data, customer data or credentials. Run it with
aiohttp's access log off (the CLI does), since that log prints raw paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web

from streams.codec import Codecs
from streams.domain.records import AuditRecord, DocumentMetadata, DocumentType, TemplateVersion
from streams.errors import AirExstreamError
from streams.exstream.client import ExstreamClient
from streams.exstream.settings import ExstreamSettings
from streams.metrics import add_metrics_route
from streams.ondemand.auth import Denial, KeyStore, Principal, may_access
from streams.ondemand.cache import CachedDocument, DocumentCache
from streams.ondemand.documents import (
    ONDEMAND_CHANNEL,
    RESERVED_PARAMS,
    Delivery,
    InvalidRequest,
    order_document,
    safe_filename,
)
from streams.ondemand.exstream import ExstreamFailure, OnDemandClient, Rendered
from streams.ondemand.kafka import RecordWriter, WriteError
from streams.ondemand.links import LinkError, LinkProblem, sign_link, verify_link
from streams.ondemand.metrics import OnDemandMetrics
from streams.ondemand.records import Produced, audit_record, metadata_record

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
DOCUMENT_ROUTE = "/v1/customers/{customer_id}/documents/{document_type}"
LINK_ROUTE = "/v1/documents/{token}"
OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "ondemand-openapi.yaml"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    retry_after: int | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> web.Response:
    """An RFC 9457 problem response (with ``Retry-After`` when the client should come back)."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = str(retry_after)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM, headers=all_headers
    )


def pdf_response(
    pdf: bytes,
    document_id: str,
    disposition: str,
    extra_headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A document for the portal: never cached, never sniffed, its id in ``X-Document-Id``,
    then ``extra_headers`` (a freshly composed one names its template)."""
    headers = {
        "Content-Disposition": disposition,
        "Cache-Control": "no-store, private",
        "X-Content-Type-Options": "nosniff",
        "X-Document-Id": document_id,
        **(extra_headers or {}),
    }
    return web.Response(body=pdf, content_type="application/pdf", headers=headers)


class TemplateSource(Protocol):
    """Where templates come from: the live view of ``exstream.templates.v1``
    (:class:`~streams.routing.reference.ReferenceView`) or, in tests, a fixed list."""

    def values(self) -> list[TemplateVersion]: ...


@dataclass(frozen=True, slots=True)
class FixedTemplates:
    templates: tuple[TemplateVersion, ...]

    def values(self) -> list[TemplateVersion]:
        return list(self.templates)


@dataclass(frozen=True, slots=True, kw_only=True)
class OnDemandConfig:
    exstream: ExstreamSettings
    link_secrets: tuple[bytes, ...]
    """The current link secret first (signs), then the previous one (still verifies)."""
    metadata_topic: str
    audit_topic: str
    codecs: Codecs = field(default_factory=Codecs)
    """The process's codecs (``Codecs.from_settings``): how the records are framed."""
    budget_s: float = 5.0
    """Time for Exstream's composition and the Kafka writes together (504 beyond)."""
    max_concurrency: int = 64
    retry_after_s: int = 1
    """``Retry-After`` when the service itself is full."""
    link_ttl_s: int = 300
    public_url: str | None = None
    """Base of signed links (``https://portal-docs.example``); default: the request's origin."""
    cache_entries: int = 256
    cache_bytes: int = 64 * 1024 * 1024
    openapi_path: Path = OPENAPI_FILE

    def __post_init__(self) -> None:
        if not self.link_secrets or not all(self.link_secrets):
            raise ValueError("at least one non-empty link secret is required")
        if self.budget_s <= 0 or self.max_concurrency < 1 or self.link_ttl_s < 1:
            raise ValueError("budget_s, max_concurrency and link_ttl_s must be positive")


@dataclass
class _Ctx:
    """Per-request facts the logging middleware reports."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    key_id: str = "-"


CTX = web.RequestKey("ondemand_ctx", _Ctx)


class OnDemandService:
    def __init__(
        self,
        config: OnDemandConfig,
        keys: KeyStore,
        writer: RecordWriter,
        templates: TemplateSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.keys = keys
        self.writer = writer
        self.templates = templates
        self.clock = clock
        self.cache = DocumentCache(config.cache_entries, config.cache_bytes)
        self.metrics = OnDemandMetrics(
            cache_entries=lambda: len(self.cache),
            cache_bytes=lambda: self.cache.bytes,
            cache_evictions=lambda: self.cache.evictions,
        )
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._exstream: ExstreamClient | None = None
        self._client: OnDemandClient | None = None
        self._metadata_codec = config.codecs.for_topic(config.metadata_topic, DocumentMetadata)
        self._audit_codec = config.codecs.for_topic(config.audit_topic, AuditRecord)
        try:
            self._openapi: bytes | None = config.openapi_path.read_bytes()
        except OSError:
            self._openapi = None

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._observe])
        app.router.add_get(DOCUMENT_ROUTE, self.document)
        app.router.add_get(LINK_ROUTE, self.link)
        app.router.add_get("/healthz", self.health)
        add_metrics_route(app, self.metrics.registry)
        app.router.add_get("/openapi.yaml", self.openapi)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        # the schemas are registered now: a registry that does not answer stops the service
        for codec in (self._metadata_codec, self._audit_codec):
            await asyncio.to_thread(codec.prepare)
        # the client's own timeout is a safety net: the budget (asyncio.timeout) bounds a request
        self._exstream = ExstreamClient(
            self.config.exstream, max_connections=self.config.max_concurrency
        )
        self._client = OnDemandClient(self._exstream)

    async def _stop(self, app: web.Application) -> None:
        if self._exstream is not None:
            await self._exstream.close()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)

    @property
    def client(self) -> OnDemandClient:
        if self._client is None:
            raise RuntimeError("the service has not started")
        return self._client

    # ------------------------------------------------------------------ middleware

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        ctx = _Ctx()
        request[CTX] = ctx
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = problem(exc.status, exc.reason, exc.reason)
        except AirExstreamError as exc:
            if not exc.retriable:
                raise
            # e.g. the schema registry did not answer while the records were encoded
            log.warning("request %s not served, retriable: %s", ctx.request_id, exc)
            response = problem(
                503,
                "Service unavailable",
                "the document could not be recorded; retry shortly",
                retry_after=self.config.retry_after_s,
            )
        response.headers["X-Request-Id"] = ctx.request_id
        elapsed = time.monotonic() - started
        self.metrics.observe(route, response.status, elapsed)
        log.info(
            "%s %s -> %d in %.1f ms (request %s, key %s)",
            request.method,
            route,
            response.status,
            elapsed * 1000,
            ctx.request_id,
            ctx.key_id,
        )
        return response

    # ------------------------------------------------------------------ documents

    def _authenticate(self, request: web.Request) -> Principal | web.Response:
        outcome = self.keys.authenticate(request.headers.get("Authorization"), now=self.clock())
        if isinstance(outcome, Principal):
            request[CTX].key_id = outcome.key_id
            return outcome
        detail = {
            Denial.MISSING: "an API key is required (Authorization: Bearer <key_id>.<secret>)",
            Denial.MALFORMED: "the Authorization header is not 'Bearer <key_id>.<secret>'",
            Denial.EXPIRED: "the API key has expired",
        }.get(outcome, "the API key is not valid")
        return problem(
            401,
            "Unauthorized",
            detail,
            headers={"WWW-Authenticate": 'Bearer realm="air-ondemand"'},
        )

    def _busy(self) -> web.Response:
        self.metrics.busy_rejections.inc()
        return problem(
            503,
            "Service busy",
            "too many documents are being produced right now; retry shortly",
            retry_after=self.config.retry_after_s,
        )

    async def document(self, request: web.Request) -> web.StreamResponse:
        principal = self._authenticate(request)
        if isinstance(principal, web.Response):
            return principal
        customer_id = request.match_info["customer_id"]
        if not may_access(principal, customer_id):
            return problem(403, "Forbidden", "this API key may not read that customer's documents")
        if any(len(request.query.getall(name)) > 1 for name in request.query):
            return problem(400, "Invalid query", "each query parameter may be given once")
        try:
            order = order_document(
                self.templates.values(),
                customer_id=customer_id,
                document_slug=request.match_info["document_type"],
                params=dict(request.query),
            )
        except InvalidRequest as exc:
            return problem(exc.status, exc.title, exc.detail, extra=exc.extra)
        if self._slots.locked():
            return self._busy()
        ctx: _Ctx = request[CTX]
        async with self._slots:
            self.metrics.in_flight.inc()
            try:
                async with asyncio.timeout(self.config.budget_s):
                    rendered = await self._exstream_call(
                        self.client.compose(
                            request_id=ctx.request_id,
                            customer_id=customer_id,
                            template=order.template,
                            channel=ONDEMAND_CHANNEL,
                            data=dict(order.data),
                            now_ms=int(self.clock() * 1000),
                        )
                    )
                    if isinstance(rendered, web.Response):
                        return rendered
                    produced = Produced(
                        document_id=rendered.document_id,
                        customer_id=customer_id,
                        document_type=order.document_type,
                        template_id=rendered.template_id,
                        template_version=rendered.template_version,
                        language=order.template.language,
                        channel=ONDEMAND_CHANNEL,
                        produced_at=rendered.produced_at,
                        request_id=ctx.request_id,
                        key_id=principal.key_id,
                        delivery=order.delivery.value,
                    )
                    await self._record(produced)
            except TimeoutError:
                self.metrics.exstream.labels("timeout").inc()
                return self._timeout()
            except WriteError as exc:
                self.metrics.kafka_failures.inc()
                log.warning("records of request %s not confirmed: %s", ctx.request_id, exc)
                return problem(
                    503,
                    "Service unavailable",
                    "the document could not be recorded; retry shortly",
                    retry_after=self.config.retry_after_s,
                )
            finally:
                self.metrics.in_flight.dec()
        self.metrics.documents.labels(order.document_type.value).inc()
        filename = safe_filename(order.document_type, rendered.document_id)
        if order.delivery is Delivery.SECURE_URL:
            return self._link_answer(request, order.document_type, produced, rendered, filename)
        return self._pdf(rendered, filename)

    async def _exstream_call(self, call: Awaitable[Rendered]) -> Rendered | web.Response:
        try:
            rendered = await call
        except ExstreamFailure as exc:
            self.metrics.exstream.labels(exc.kind).inc()
            if exc.kind == "timeout":
                return self._timeout()
            if exc.retriable:
                return problem(
                    503,
                    "Document service unavailable",
                    "the composition service is unavailable; retry later",
                    retry_after=exc.retry_after_s or self.config.retry_after_s,
                )
            if exc.kind == "not_found":
                return problem(404, "Not found", "the document no longer exists")
            log.warning("Exstream failure (%s, status %s)", exc.kind, exc.status)
            return problem(502, "Bad gateway", "the composition service failed")
        self.metrics.exstream.labels("ok").inc()
        return rendered

    def _timeout(self) -> web.Response:
        return problem(
            504,
            "Gateway timeout",
            f"the document was not ready within {self.config.budget_s:g} s",
        )

    async def _record(self, produced: Produced) -> None:
        key = produced.customer_id.encode()
        await asyncio.gather(
            self.writer.send(
                self.config.metadata_topic,
                key,
                self._metadata_codec.encode(metadata_record(produced)),
            ),
            self.writer.send(
                self.config.audit_topic, key, self._audit_codec.encode(audit_record(produced))
            ),
        )

    @staticmethod
    def _pdf(rendered: Rendered, filename: str) -> web.Response:
        return pdf_response(
            rendered.pdf,
            rendered.document_id,
            f'attachment; filename="{filename}"',
            {
                "X-Template-Id": rendered.template_id,
                "X-Template-Version": str(rendered.template_version),
            },
        )

    def _link_answer(
        self,
        request: web.Request,
        document_type: DocumentType,
        produced: Produced,
        rendered: Rendered,
        filename: str,
    ) -> web.Response:
        self.cache.put(
            CachedDocument(rendered.document_id, produced.customer_id, filename, rendered.pdf)
        )
        expires = int(self.clock()) + self.config.link_ttl_s
        token = sign_link(
            self.config.link_secrets[0], rendered.document_id, produced.customer_id, expires
        )
        base = (self.config.public_url or f"{request.scheme}://{request.host}").rstrip("/")
        body = {
            "documentId": rendered.document_id,
            "documentType": document_type.value,
            "templateId": rendered.template_id,
            "templateVersion": rendered.template_version,
            "language": produced.language,
            "contentType": "application/pdf",
            "url": f"{base}/v1/documents/{token}",
            "expiresAt": expires,
            "expiresIn": self.config.link_ttl_s,
        }
        return web.Response(
            status=201,
            body=orjson.dumps(body),
            content_type="application/json",
            headers={"Cache-Control": "no-store, private"},
        )

    async def link(self, request: web.Request) -> web.StreamResponse:
        try:
            grant = verify_link(
                self.config.link_secrets, request.match_info["token"], now=self.clock()
            )
        except LinkError as exc:
            if exc.problem is LinkProblem.EXPIRED:
                return problem(410, "Link expired", "this document link has expired")
            return problem(403, "Forbidden", "this document link is not valid")
        cached = self.cache.get(grant.document_id)
        if cached is not None:
            if cached.customer_id != grant.customer_id:
                return problem(403, "Forbidden", "this document link is not valid")
            self.metrics.link_cache.labels("hit").inc()
            return self._cached_pdf(cached)
        self.metrics.link_cache.labels("miss").inc()
        return problem(
            410,
            "Document no longer available",
            "this document is no longer held; ask for it again",
        )

    @staticmethod
    def _cached_pdf(cached: CachedDocument) -> web.Response:
        return pdf_response(cached.pdf, cached.document_id, f'inline; filename="{cached.filename}"')

    # ------------------------------------------------------------------ operations

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            return problem(404, "Not found", "the OpenAPI description is not installed")
        return web.Response(body=self._openapi, content_type="application/yaml")


__all__ = ["RESERVED_PARAMS", "OnDemandConfig", "OnDemandService", "problem"]
