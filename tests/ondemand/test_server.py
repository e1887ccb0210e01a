"""The on-demand service over loopback HTTP against the emulator in-process (Kafka faked)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from streams.codec import codec_for
from streams.domain.records import AuditRecord, DocumentMetadata
from streams.emulator.design import seed
from streams.emulator.faults import FaultConfig
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
from streams.exstream.settings import ExstreamSettings
from streams.metrics import parse_samples
from streams.ondemand.auth import KeyStore, new_key
from streams.ondemand.kafka import WriteError
from streams.ondemand.links import _b64, _unb64
from streams.ondemand.server import FixedTemplates, OnDemandConfig, OnDemandService, pdf_response
from streams.simulator.generator import template_catalogue
from tests.exstream.templates import synced

pytestmark = pytest.mark.component

CLIENT_SECRET = "emulator-client-secret"
LINK_SECRET = b"link-secret-for-tests"
CUSTOMER = "cust-000001"
OTHER = "cust-000002"
METADATA_TOPIC = "air.document-metadata.v1"
AUDIT_TOPIC = "audit.intake.v1"

PARAMS: dict[str, dict[str, str]] = {
    "policy-copy": {
        "policy_number": "P-123",
        "renewal_date": "2026-03-01",
        "premium": "420.00",
        "currency": "EUR",
    },
    "invoice": {
        "amount_due": "12.50",
        "due_date": "2026-02-01",
        "statement_period": "2026-01",
        "currency": "EUR",
    },
    "confirmation-letter": {
        "service_id": "svc-1",
        "change_type": "UPGRADE",
        "effective_date": "2026-02-01",
        "loyalty_tier": "gold",
    },
    "account-summary": {
        "previous_status": "ACTIVE",
        "new_status": "SUSPENDED",
        "effective_date": "2026-02-01",
    },
}


@dataclass
class FakeWriter:
    """Kafka stand-in (component tests only): records what would be written."""

    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    fail: bool = False
    closed: bool = False

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail:
            raise WriteError("broker down")
        self.records.append((topic, key, value))

    def close(self) -> None:
        self.closed = True


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Harness:
    base: str
    service: OnDemandService
    emulator: Emulator
    writer: FakeWriter
    session: aiohttp.ClientSession
    bearer: str
    other_bearer: str
    now: list[float]

    async def get(self, path: str, bearer: str | None = None, **kwargs: Any) -> Reply:
        headers = dict(kwargs.pop("headers", {}))
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = path if path.startswith("http") else f"{self.base}{path}"
        async with self.session.get(url, headers=headers, **kwargs) as r:
            raw = await r.read()
            ctype = r.headers.get("Content-Type", "")
            body: Any = orjson.loads(raw) if "json" in ctype else raw
            return Reply(r.status, body, dict(r.headers))

    async def document(
        self, doc: str = "invoice", customer: str = CUSTOMER, **params: str
    ) -> Reply:
        query = {**PARAMS.get(doc, {}), **params}
        return await self.get(
            f"/v1/customers/{customer}/documents/{doc}", self.bearer, params=query
        )


Factory = Callable[..., Any]


@pytest.fixture
async def harness_factory() -> AsyncIterator[Factory]:
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(
        faults: FaultConfig | None = None, writer: FakeWriter | None = None, **options: Any
    ) -> Harness:
        emulator = Emulator(
            EmulatorConfig(
                client_id="air",
                client_secret=CLIENT_SECRET,
                faults=faults or FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0),
            ),
            Runtime(design=seed(template_catalogue()), rng=random.Random(1)),
            seed=1,
        )
        exstream = TestServer(emulator.app(), host="127.0.0.1")
        await exstream.start_server()
        servers.append(exstream)
        bearer, key = new_key("portal-a", CUSTOMER)
        other_bearer, other_key = new_key("portal-b", OTHER)
        now = [time.time()]
        writer = writer or FakeWriter()
        config = OnDemandConfig(
            exstream=ExstreamSettings(
                url=str(exstream.make_url("")).rstrip("/"),
                client_id="air",
                client_secret=CLIENT_SECRET,
            ),
            link_secrets=(LINK_SECRET,),
            metadata_topic=METADATA_TOPIC,
            audit_topic=AUDIT_TOPIC,
            **options,
        )
        service = OnDemandService(
            config,
            KeyStore([key, other_key]),
            writer,
            FixedTemplates(tuple(synced(template_catalogue()))),
            clock=lambda: now[0],
        )
        server = TestServer(service.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        base = str(server.make_url("")).rstrip("/")
        return Harness(base, service, emulator, writer, session, bearer, other_bearer, now)

    yield make
    for session in sessions:
        await session.close()
    for server in reversed(servers):
        await server.close()


def _problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert isinstance(reply.body, dict)
    assert reply.body["status"] == status
    return reply.body


@pytest.mark.parametrize("doc", list(PARAMS))
async def test_each_document_type_returns_a_pdf_and_its_records(
    harness_factory: Factory, doc: str
) -> None:
    h: Harness = await harness_factory()
    reply = await h.document(doc, language="fr")
    assert reply.status == 200, reply.body
    assert reply.body.startswith(b"%PDF")
    assert reply.headers["Content-Type"] == "application/pdf"
    document_id = reply.headers["X-Document-Id"]
    disposition = reply.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="{doc}-{document_id}.pdf"'
    assert reply.headers["Cache-Control"].startswith("no-store")
    assert reply.headers["X-Template-Version"] == "2"
    topics = {topic: (key, value) for topic, key, value in h.writer.records}
    assert set(topics) == {METADATA_TOPIC, AUDIT_TOPIC}
    metadata = codec_for(DocumentMetadata).decode(topics[METADATA_TOPIC][1])
    audit = codec_for(AuditRecord).decode(topics[AUDIT_TOPIC][1])
    assert topics[METADATA_TOPIC][0] == topics[AUDIT_TOPIC][0] == CUSTOMER.encode()
    assert metadata.document_id == document_id
    assert metadata.origin == "ON_DEMAND"
    assert metadata.language == "fr"
    assert metadata.channel == "WEB"
    assert audit.kind == "DOCUMENT_PRODUCED"
    assert audit.details["document_id"] == document_id
    assert audit.communication_id == metadata.communication_id
    for value in PARAMS[doc].values():  # query data never reaches the audit trail
        assert value not in audit.details.values()


async def test_wrong_customer_is_403(harness_factory: Factory) -> None:
    h: Harness = await harness_factory()
    _problem(await h.document("invoice", customer=OTHER), 403)
    assert h.writer.records == []


async def test_missing_and_bad_credentials_are_401(harness_factory: Factory) -> None:
    h: Harness = await harness_factory()
    path = f"/v1/customers/{CUSTOMER}/documents/invoice"
    missing = await h.get(path, params=PARAMS["invoice"])
    _problem(missing, 401)
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    _problem(await h.get(path, "portal-a.not-the-secret", params=PARAMS["invoice"]), 401)
    _problem(await h.get(path, "nobody.secret-value", params=PARAMS["invoice"]), 401)
    _problem(await h.get(path, headers={"Authorization": "Basic YTpi"}), 401)


async def test_validation_errors(harness_factory: Factory) -> None:
    h: Harness = await harness_factory()
    _problem(await h.document("statement"), 404)
    body = _problem(await h.get(f"/v1/customers/{CUSTOMER}/documents/invoice", h.bearer), 422)
    assert "amount_due" in body["missing"]
    _problem(await h.document("invoice", delivery="fax"), 400)
    dup = await h.get(
        f"/v1/customers/{CUSTOMER}/documents/invoice?currency=EUR&currency=USD", h.bearer
    )
    _problem(dup, 400)


async def test_signed_link_works_then_expires(harness_factory: Factory) -> None:
    h: Harness = await harness_factory(link_ttl_s=60)
    reply = await h.document("policy-copy", delivery="url")
    assert reply.status == 201, reply.body
    url = reply.body["url"]
    assert url.startswith(f"{h.base}/v1/documents/")
    pdf = await h.get(url)  # the link is the credential: no API key
    assert pdf.status == 200
    assert pdf.body.startswith(b"%PDF")
    assert pdf.headers["X-Document-Id"] == reply.body["documentId"]
    h.now[0] += 61
    _problem(await h.get(url), 410)


def test_pdf_response_headers() -> None:
    fresh = pdf_response(
        b"%PDF-1.7",
        "doc-1",
        'attachment; filename="invoice-doc-1.pdf"',
        {"X-Template-Id": "TPL", "X-Template-Version": "2"},
    )
    cached = pdf_response(b"%PDF-1.7", "doc-1", 'inline; filename="document-doc-1.pdf"')
    for response in (fresh, cached):
        assert response.status == 200
        assert response.body == b"%PDF-1.7"
        assert response.content_type == "application/pdf"
    common = [
        ("Cache-Control", "no-store, private"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Document-Id", "doc-1"),
    ]
    assert [(k, v) for k, v in fresh.headers.items() if k != "Content-Type"] == [
        ("Content-Disposition", 'attachment; filename="invoice-doc-1.pdf"'),
        *common,
        ("X-Template-Id", "TPL"),
        ("X-Template-Version", "2"),
    ]
    assert [(k, v) for k, v in cached.headers.items() if k != "Content-Type"] == [
        ("Content-Disposition", 'inline; filename="document-doc-1.pdf"'),
        *common,
    ]


async def test_a_cached_link_answers_inline_without_template_headers(
    harness_factory: Factory,
) -> None:
    h: Harness = await harness_factory()
    link = (await h.document("invoice", delivery="url")).body
    pdf = await h.get(link["url"])
    assert pdf.status == 200
    assert h.service.metrics.value("link_cache_total", result="hit") == 1
    document_id = link["documentId"]
    assert pdf.headers["Content-Disposition"] == f'inline; filename="invoice-{document_id}.pdf"'
    assert pdf.headers["Cache-Control"] == "no-store, private"
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    assert pdf.headers["X-Document-Id"] == document_id
    assert "X-Template-Id" not in pdf.headers


async def test_tampered_links_are_refused(harness_factory: Factory) -> None:
    h: Harness = await harness_factory()
    first = (await h.document("invoice", delivery="url")).body
    second = (await h.document("invoice", delivery="url")).body
    token = first["url"].rsplit("/", 1)[1]
    payload, mac = token.split(".")
    claims = orjson.loads(_unb64(payload))
    claims["d"] = second["documentId"]  # point it at another document
    forged = _b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    _problem(await h.get(f"/v1/documents/{forged}.{mac}"), 403)
    _problem(await h.get(f"/v1/documents/{payload}.{mac[:-2]}AA"), 403)
    _problem(await h.get("/v1/documents/garbage"), 403)


async def test_a_link_whose_document_left_the_cache_is_gone(harness_factory: Factory) -> None:
    """Exstream publishes no store to read a generated document back from: a valid link whose
    bytes left the cache answers 410 (ask again), never another document."""
    h: Harness = await harness_factory(cache_entries=0)
    link = (await h.document("account-summary", delivery="url")).body
    _problem(await h.get(link["url"]), 410)
    assert h.service.metrics.value("link_cache_total", result="miss") == 1


async def test_slow_exstream_is_504_within_the_budget(harness_factory: Factory) -> None:
    budget = 0.5
    h: Harness = await harness_factory(
        FaultConfig(latency_median_ms=2000.0, latency_p99_ms=2000.0), budget_s=budget
    )
    started = time.monotonic()
    reply = await h.document("invoice")
    elapsed = time.monotonic() - started
    _problem(reply, 504)
    assert elapsed < budget + 1.0
    assert h.writer.records == []


async def test_exstream_outage_is_503_with_retry_after(harness_factory: Factory) -> None:
    h: Harness = await harness_factory(
        FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0, outages=((0.0, 600.0),))
    )
    reply = await h.document("invoice")
    _problem(reply, 503)
    assert int(reply.headers["Retry-After"]) >= 1


async def test_exstream_rate_limit_is_503_with_retry_after(harness_factory: Factory) -> None:
    h: Harness = await harness_factory(
        FaultConfig(
            latency_median_ms=0.0, latency_p99_ms=0.0, rate_limit_per_s=0.01, rate_limit_burst=1
        )
    )
    statuses = [(await h.document("invoice")).status for _ in range(3)]
    assert statuses[0] == 200
    assert 503 in statuses[1:]


async def test_full_service_refuses_at_once(harness_factory: Factory) -> None:
    h: Harness = await harness_factory(
        FaultConfig(latency_median_ms=800.0, latency_p99_ms=800.0), max_concurrency=1
    )
    first = asyncio.create_task(h.document("invoice"))
    for _ in range(500):  # until the first request holds the only slot
        if h.service.metrics.value("in_flight") >= 1:
            break
        await asyncio.sleep(0.01)
    started = time.monotonic()
    busy = await h.document("invoice")
    assert time.monotonic() - started < 0.5  # refused at once, not queued
    _problem(busy, 503)
    assert busy.headers["Retry-After"] == "1"
    assert (await first).status == 200


async def test_unconfirmed_records_mean_no_document(harness_factory: Factory) -> None:
    h: Harness = await harness_factory(writer=FakeWriter(fail=True))
    reply = await h.document("invoice")
    _problem(reply, 503)
    assert "Retry-After" in reply.headers


async def test_operations_endpoints(harness_factory: Factory) -> None:
    h: Harness = await harness_factory()
    assert (await h.document("invoice")).status == 200
    assert (await h.get("/healthz")).status == 200
    metrics = await h.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = parse_samples(metrics.body.decode())
    route = "/v1/customers/{customer_id}/documents/{document_type}"
    assert samples[f'air_exstream_ondemand_requests_total{{route="{route}",status="200"}}'] == 1
    assert samples[f'air_exstream_ondemand_request_duration_seconds_count{{route="{route}"}}'] == 1
    assert samples['air_exstream_ondemand_documents_total{type="INVOICE"}'] == 1
    assert samples['air_exstream_ondemand_exstream_calls_total{outcome="ok"}'] == 1
    assert samples["air_exstream_ondemand_cache_entries"] == 0
    assert samples["air_exstream_ondemand_cache_evictions_total"] == 0
    assert samples["air_exstream_ondemand_in_flight"] == 0
    spec = await h.get("/openapi.yaml")
    assert spec.status == 200
    assert b"openapi: 3" in spec.body
    assert b"/v1/customers/{customerId}/documents/{documentType}" in spec.body
