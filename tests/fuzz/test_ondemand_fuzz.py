"""The on-demand service under hostile requests: paths, customer ids, document types, query
strings, API keys and signed links.

The service runs in process against the Exstream emulator (in process too, no injected faults),
with the metadata/audit writer in memory. Every answer must be one the contract
(docs/ondemand-openapi.yaml) allows for that request: 401 without a valid key, 403 for another
customer's documents, 400/404/422 with a problem+json detail for what the request got wrong, a
PDF or a link only for the key's own customer. Never a 5xx: Exstream is healthy here, so not even
the documented 503/504.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from streams.codec import codec_for
from streams.domain.records import AuditRecord, DocumentMetadata, DocumentType
from streams.emulator.design import seed
from streams.emulator.faults import FaultConfig
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
from streams.exstream.settings import ExstreamSettings
from streams.ondemand.auth import ApiKey, KeyStore, hash_secret, new_key
from streams.ondemand.documents import InvalidRequest, order_document, slug_of
from streams.ondemand.links import _b64, _unb64, sign_link
from streams.ondemand.server import FixedTemplates, OnDemandConfig, OnDemandService
from streams.simulator.generator import template_catalogue
from tests.exstream.templates import synced
from tests.fuzz.strategies import (
    HEADER_JUNK,
    HTTP_FUZZ,
    RAW_HEADER_BYTES,
    Reply,
    Served,
    raw_request,
)
from tests.ondemand.test_server import PARAMS, FakeWriter

pytestmark = pytest.mark.component

CLIENT_SECRET = "fuzz-emulator-secret"
LINK_SECRET = b"fuzz-link-secret"
CUSTOMER = "cust-000001"
OTHER = "cust-000002"
NOW = 1_900_000_000.0
FUZZ = settings(HTTP_FUZZ, max_examples=300)


@dataclass
class Portal:
    served: Served
    base: str
    writer: FakeWriter
    bearers: dict[str, str]
    """credential kind -> ``Authorization`` header value."""
    link: str
    """A genuine signed link (path) to one of CUSTOMER's documents."""
    document_id: str


@pytest.fixture
def portal() -> Iterator[Portal]:
    own, own_key = new_key("portal-own", CUSTOMER)
    other, other_key = new_key("portal-other", OTHER)
    expired_secret = "expired-secret-0123456789"
    expired_key = ApiKey("portal-expired", hash_secret(expired_secret), CUSTOMER, NOW - 1)
    emulator = Emulator(
        EmulatorConfig(
            client_id="air",
            client_secret=CLIENT_SECRET,
            faults=FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0),
        ),
        Runtime(design=seed(template_catalogue()), rng=random.Random(1)),
        seed=1,
    )
    writer = FakeWriter()
    with Served() as served:
        exstream = served.start(emulator.app())
        config = OnDemandConfig(
            exstream=ExstreamSettings(
                url=exstream.rstrip("/"), client_id="air", client_secret=CLIENT_SECRET
            ),
            link_secrets=(LINK_SECRET,),
            metadata_topic="air.document-metadata.v1",
            audit_topic="audit.intake.v1",
        )
        service = OnDemandService(
            config,
            KeyStore([own_key, other_key, expired_key]),
            writer,
            FixedTemplates(tuple(synced(template_catalogue()))),
            clock=lambda: NOW,
        )
        base = served.start(service.app())
        bearers = {
            "own": f"Bearer {own}",
            "other": f"Bearer {other}",
            "expired": f"Bearer portal-expired.{expired_secret}",
            "bad_secret": "Bearer portal-own.not-the-secret",
            "unknown_key": f"Bearer nobody.{own.partition('.')[2]}",
            "basic": "Basic cG9ydGFsLW93bjpzZWNyZXQ=",
            "no_dot": "Bearer portal-own",
            "empty_bearer": "Bearer ",
        }
        url = URL(base).with_path(f"/v1/customers/{CUSTOMER}/documents/invoice")
        made = served.request(
            "GET",
            url.with_query({**PARAMS["invoice"], "delivery": "url"}),
            headers={"Authorization": bearers["own"]},
        )
        assert made.status == 201, made
        answer = orjson.loads(made.body)
        link = URL(answer["url"]).path
        writer.records.clear()
        yield Portal(served, base, writer, bearers, link, answer["documentId"])


# --------------------------------------------------------------------------- documents

SLUGS = [slug_of(t) for t in DocumentType]
CUSTOMER_IDS = st.one_of(
    st.just(CUSTOMER),
    st.just(CUSTOMER),
    st.just(CUSTOMER),
    st.sampled_from([OTHER, CUSTOMER.upper(), f" {CUSTOMER}", f"{CUSTOMER}\n", "cust-1"]),
    st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=70),
    HEADER_JUNK.filter(bool),
)
SLUG_CHOICES = st.one_of(
    st.sampled_from([*SLUGS, *SLUGS, "INVOICE", "Invoice", "policy_copy", "statement", " invoice"]),
    HEADER_JUNK.filter(bool),
)
QUERY_VALUES = st.one_of(
    st.text(max_size=20), st.text(max_size=300), st.sampled_from(["", "  ", "\x00", "fr", "url"])
)


@st.composite
def queries(draw_: st.DrawFn, slug: str) -> dict[str, str]:
    """The document's data, then damaged: a field dropped or blanked, junk values, junk or
    reserved parameters, too many parameters."""
    params = dict(PARAMS.get(slug, PARAMS["invoice"]))
    for _ in range(draw_(st.sampled_from([0, 0, 0, 0, 1, 2, 3]))):
        action = draw_(st.sampled_from(["drop", "junk_value", "junk_name", "language", "delivery"]))
        name = draw_(st.sampled_from(sorted(params) or ["x"]))
        if action == "drop":
            params.pop(name, None)
        elif action == "junk_value":
            params[name] = draw_(QUERY_VALUES)
        elif action == "junk_name":
            params[draw_(HEADER_JUNK)] = draw_(QUERY_VALUES)
        elif action == "language":
            params["language"] = draw_(
                st.one_of(st.sampled_from(["fr", "de", "en", "xx", "fr-CA", "e"]), QUERY_VALUES)
            )
        else:
            params["delivery"] = draw_(
                st.one_of(st.sampled_from(["url", "download", "pdf", "fax", "URL"]), QUERY_VALUES)
            )
    if draw_(st.integers(min_value=0, max_value=20)) == 0:
        params.update({f"extra_{i}": "1" for i in range(40)})
    return params


def _document_url(base: str, customer: str, slug: str, params: dict[str, str]) -> URL:
    path = f"/v1/customers/{quote(customer, safe='')}/documents/{quote(slug, safe='')}"
    return URL(f"{base}{path}", encoded=True).with_query(params)


def _routable(segment: str) -> bool:
    """aiohttp's path parameters never hold braces: such a path matches no route."""
    return not any(c in segment for c in "{}")


def _expected(auth: str, customer: str, slug: str, params: dict[str, str]) -> tuple[int, str]:
    """The status the contract demands, and why (for the figures)."""
    principal = {"own": CUSTOMER, "other": OTHER}.get(auth)
    if principal is None:
        return 401, "unauthenticated"
    if customer != principal:
        return 403, "other_customer"
    try:
        order = order_document(
            template_catalogue(), customer_id=customer, document_slug=slug, params=params
        )
    except InvalidRequest as exc:
        return exc.status, f"invalid_{exc.status}"
    return (201 if order.delivery.value == "SECURE_URL" else 200), "served"


@pytest.mark.timeout(240)
def test_document_requests_get_their_contracted_answer_and_no_cross_customer_access(
    portal: Portal,
) -> None:
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(
        auth=st.sampled_from(
            [
                *["own"] * 8,
                "other",
                "missing",
                "expired",
                "bad_secret",
                "unknown_key",
                "basic",
                "no_dot",
                "empty_bearer",
                "junk",
            ]
        ),
        junk=HEADER_JUNK,
        customer=CUSTOMER_IDS,
        slug=SLUG_CHOICES,
        data=st.data(),
    )
    @example(auth="own", junk="", customer=OTHER, slug="invoice", data=None)
    @example(auth="other", junk="", customer=CUSTOMER, slug="policy-copy", data=None)
    def check(auth: str, junk: str, customer: str, slug: str, data: st.DataObject | None) -> None:
        params = data.draw(queries(slug)) if data is not None else dict(PARAMS[slug])
        headers: dict[str, str] = {}
        if auth == "junk":
            headers["Authorization"] = junk
        elif auth != "missing":
            headers["Authorization"] = portal.bearers[auth]
        before = len(portal.writer.records)
        url = _document_url(portal.base, customer, slug, params)
        reply = portal.served.request("GET", url, headers=headers)
        new = portal.writer.records[before:]
        assert reply.status < 500, (reply.status, reply.body[:300])
        if customer in (".", "..") or slug in (".", ".."):
            outcomes[f"dot_segment_{reply.status}"] += 1
            return  # the path itself changes meaning: only the no-5xx rule applies
        if not (_routable(customer) and _routable(slug)):
            assert reply.status == 404, reply
            reply.problem()
            outcomes["unroutable"] += 1
            return
        status, why = _expected(
            auth if auth in ("own", "other") else "none", customer, slug, params
        )
        outcomes[why] += 1
        assert reply.status == status, (why, auth, customer, slug, params, reply)
        if status == 401:
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        if status >= 400:
            reply.problem()
            assert new == [], "nothing is recorded for a refused request"
            return
        _check_served(reply, status, customer, new)

    check()
    total = sum(outcomes.values())
    print(f"\non-demand documents: {total} requests, {dict(sorted(outcomes.items()))}")
    assert outcomes["served"] > 0
    assert outcomes["other_customer"] > 0
    assert outcomes["unauthenticated"] > 0
    assert sum(n for k, n in outcomes.items() if k.startswith("invalid_")) > 0


def _check_served(
    reply: Reply, status: int, customer: str, new: list[tuple[str, bytes, bytes]]
) -> None:
    """A document was handed out: to its own customer, recorded (metadata and audit) first."""
    assert customer in (CUSTOMER, OTHER)
    assert [key for _, key, _ in new] == [customer.encode()] * 2
    metadata = next(v for t, _, v in new if t == "air.document-metadata.v1")
    audit = next(v for t, _, v in new if t == "audit.intake.v1")
    assert codec_for(DocumentMetadata).decode(metadata).customer_id == customer
    assert codec_for(AuditRecord).decode(audit).customer_id == customer
    if status == 200:
        assert reply.body.startswith(b"%PDF")
        assert reply.headers["Content-Type"] == "application/pdf"
    else:
        answer = orjson.loads(reply.body)
        assert answer["url"].startswith("http")
        assert "/v1/documents/" in answer["url"]


# --------------------------------------------------------------------------- signed links


def _flip(text: str, index: int) -> str:
    index %= len(text)
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@st.composite
def tokens(draw_: st.DrawFn, genuine: str, document_id: str) -> tuple[str, str]:
    """(kind, token): the genuine link token and every way to forge, damage or stretch one."""
    payload, mac = genuine.split(".")
    claims = orjson.loads(_unb64(payload))
    kind = draw_(
        st.sampled_from(
            [
                "genuine",
                "flip_payload",
                "flip_mac",
                "junk",
                "reclaim",
                "other_secret",
                "expired",
                "authentic_other_customer",
                "no_dot",
                "two_dots",
                "long",
                "unknown_doc",
            ]
        )
    )
    if kind == "genuine":
        return kind, genuine
    if kind == "flip_payload":
        return kind, f"{_flip(payload, draw_(st.integers(min_value=0)))}.{mac}"
    if kind == "flip_mac":
        return kind, f"{payload}.{_flip(mac, draw_(st.integers(min_value=0)))}"
    if kind == "junk":
        return kind, draw_(HEADER_JUNK)
    if kind == "reclaim":  # change a claim, keep the old signature
        field_name, value = draw_(
            st.sampled_from([("c", OTHER), ("e", int(NOW) + 10**6), ("d", "doc-other")])
        )
        forged = _b64(orjson.dumps({**claims, field_name: value}, option=orjson.OPT_SORT_KEYS))
        return kind, f"{forged}.{mac}"
    if kind == "other_secret":
        return kind, sign_link(b"not-the-link-secret", document_id, CUSTOMER, int(NOW) + 60)
    if kind == "expired":
        return kind, sign_link(
            LINK_SECRET, document_id, CUSTOMER, int(NOW) - draw_(st.integers(0, 10**6))
        )
    if kind == "authentic_other_customer":  # signed right, but names another customer
        return kind, sign_link(LINK_SECRET, document_id, OTHER, int(NOW) + 60)
    if kind == "unknown_doc":
        return kind, sign_link(LINK_SECRET, "doc-does-not-exist", CUSTOMER, int(NOW) + 60)
    if kind == "no_dot":
        return kind, payload + mac
    if kind == "two_dots":
        return kind, f"{payload}.{mac}.{mac}"
    return kind, genuine + "A" * draw_(st.integers(min_value=1, max_value=2000))


LINK_STATUS = {
    "genuine": {200},
    "expired": {410},
    "unknown_doc": {410},  # not in the cache: Exstream has no store to read it back from
}


@pytest.mark.timeout(240)
def test_only_a_genuine_unexpired_link_opens_its_document(portal: Portal) -> None:
    genuine = portal.link.rsplit("/", 1)[1]
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(case=tokens(genuine, portal.document_id))
    def check(case: tuple[str, str]) -> None:
        kind, token = case
        url = URL(f"{portal.base}/v1/documents/{quote(token, safe='')}", encoded=True)
        reply = portal.served.request("GET", url)
        outcomes[f"{kind}_{reply.status}"] += 1
        assert reply.status < 500, (kind, reply)
        if not token or token in (".", ".."):
            return
        if not _routable(token):
            assert reply.status == 404, reply
            return
        allowed = LINK_STATUS.get(kind, {403})
        assert reply.status in allowed, (kind, token, reply)
        if reply.status == 200:
            assert reply.body.startswith(b"%PDF")
            assert reply.headers["X-Document-Id"] == portal.document_id
        else:
            reply.problem()

    check()
    print(f"\non-demand links: {sum(outcomes.values())} requests, {dict(sorted(outcomes.items()))}")
    assert any(k.startswith("genuine_200") for k in outcomes)
    assert sum(n for k, n in outcomes.items() if k.endswith("_403")) > 0
    assert portal.writer.records == [], "opening a link records nothing new"


# --------------------------------------------------------------------------- anything else

ROUTES = {"/healthz", "/metrics", "/openapi.yaml"}


@pytest.mark.timeout(120)
def test_other_methods_and_paths_are_problems_not_errors(portal: Portal) -> None:
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
        path=st.one_of(
            st.sampled_from(
                [
                    *ROUTES,
                    "/v1/customers",
                    f"/v1/customers/{CUSTOMER}",
                    f"/v1/customers/{CUSTOMER}/documents",
                    f"/v1/customers/{CUSTOMER}/documents/invoice/x",
                    "/v1/documents",
                    "/v1/documents/",
                    "/",
                ]
            ),
            st.lists(HEADER_JUNK, max_size=4).map(lambda parts: "/" + "/".join(parts)),
        ),
    )
    def check(method: str, path: str) -> None:
        url = URL(portal.base).with_path(path)
        reply = portal.served.request(method, url, headers={"Authorization": portal.bearers["own"]})
        statuses[reply.status] += 1
        assert reply.status < 500, reply
        normalized = url.path
        if normalized in ROUTES and method in ("GET", "HEAD"):
            assert reply.status == 200
            return
        if method not in ("GET", "HEAD"):
            assert reply.status in (404, 405), reply
        else:
            assert reply.status in (400, 401, 403, 404, 422), reply
        if method != "HEAD":
            reply.problem()

    check()
    print(f"\non-demand methods/paths: {sum(statuses.values())} requests, {dict(statuses)}")
    assert portal.writer.records == []


@pytest.mark.timeout(120)
def test_garbled_authorization_bytes_are_401_never_a_server_error(portal: Portal) -> None:
    """Credentials as raw bytes (not UTF-8 included): aiohttp hands bytes that are not UTF-8 to
    the service as lone surrogates."""
    statuses: Counter[int] = Counter()
    path = f"/v1/customers/{CUSTOMER}/documents/invoice".encode()

    @settings(FUZZ, max_examples=200)
    @given(
        prefix=st.sampled_from([b"Bearer portal-own.", b"Bearer ", b"bearer x.", b""]),
        raw=RAW_HEADER_BYTES,
    )
    @example(prefix=b"Bearer portal-own.", raw=b"\xff\xfe")
    @example(prefix=b"Bearer ", raw=b"\xc3\xa9\xff.secret")
    def check(prefix: bytes, raw: bytes) -> None:
        request = raw_request("GET", path, [(b"Authorization", prefix + raw)])
        reply = portal.served.raw(portal.base, request)
        statuses[reply.status] += 1
        assert reply.status == 401, reply
        reply.problem()

    check()
    print(f"\non-demand raw credentials: {sum(statuses.values())} requests, {dict(statuses)}")
