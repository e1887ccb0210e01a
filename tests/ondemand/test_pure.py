"""Pure logic of the on-demand service: links, API keys, document types, validation, cache."""

from __future__ import annotations

import pytest

from streams.domain.document_requests import TEMPLATE_OF
from streams.domain.records import AuditKind, DocumentType
from streams.domain.templates import resolve_template
from streams.ondemand.auth import (
    AuthError,
    Denial,
    KeyStore,
    Principal,
    hash_secret,
    may_access,
    new_key,
)
from streams.ondemand.cache import CachedDocument, DocumentCache
from streams.ondemand.documents import (
    Delivery,
    InvalidRequest,
    document_type_from_slug,
    order_document,
    safe_filename,
    slug_of,
)
from streams.ondemand.links import (
    LinkError,
    LinkProblem,
    _b64,
    _unb64,
    sign_link,
    verify_link,
)
from streams.ondemand.records import Produced, audit_record, metadata_record
from streams.simulator.generator import template_catalogue

pytestmark = pytest.mark.unit

SECRET = b"current-link-secret"
PREVIOUS = b"previous-link-secret"
NOW = 1_800_000_000
TEMPLATES = template_catalogue()


# --------------------------------------------------------------------------- signed links


def test_link_round_trip() -> None:
    token = sign_link(SECRET, "doc-1", "cust-1", NOW + 60)
    grant = verify_link([SECRET], token, now=NOW)
    assert (grant.document_id, grant.customer_id, grant.expires_at) == ("doc-1", "cust-1", NOW + 60)


def test_expired_link_is_refused() -> None:
    token = sign_link(SECRET, "doc-1", "cust-1", NOW)
    with pytest.raises(LinkError) as exc:
        verify_link([SECRET], token, now=NOW)
    assert exc.value.problem is LinkProblem.EXPIRED


def _tamper(token: str, **changes: object) -> str:
    import json

    payload, mac = token.split(".")
    claims = json.loads(_unb64(payload))
    claims.update(changes)
    forged = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{forged}.{mac}"


@pytest.mark.parametrize(
    "changes",
    [{"d": "doc-2"}, {"c": "cust-2"}, {"e": NOW + 10_000}],
    ids=["doc", "customer", "exp"],
)
def test_tampered_link_is_refused(changes: dict[str, object]) -> None:
    token = sign_link(SECRET, "doc-1", "cust-1", NOW + 60)
    with pytest.raises(LinkError) as exc:
        verify_link([SECRET], _tamper(token, **changes), now=NOW)
    assert exc.value.problem is LinkProblem.BAD_SIGNATURE


def test_an_expired_forgery_is_a_bad_signature_not_expired() -> None:
    token = sign_link(SECRET, "doc-1", "cust-1", NOW + 60)
    with pytest.raises(LinkError) as exc:
        verify_link([SECRET], _tamper(token, d="doc-2", e=NOW - 1), now=NOW)
    assert exc.value.problem is LinkProblem.BAD_SIGNATURE


def test_bad_signature_and_wrong_secret() -> None:
    token = sign_link(SECRET, "doc-1", "cust-1", NOW + 60)
    payload, _ = token.split(".")
    with pytest.raises(LinkError) as exc:
        verify_link([SECRET], f"{payload}.{_b64(b'x' * 32)}", now=NOW)
    assert exc.value.problem is LinkProblem.BAD_SIGNATURE
    with pytest.raises(LinkError) as exc:
        verify_link([b"another-secret"], token, now=NOW)
    assert exc.value.problem is LinkProblem.BAD_SIGNATURE


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???", "x" * 2000])
def test_malformed_links(token: str) -> None:
    with pytest.raises(LinkError) as exc:
        verify_link([SECRET], token, now=NOW)
    assert exc.value.problem in (LinkProblem.MALFORMED, LinkProblem.BAD_SIGNATURE)


def test_rotation_accepts_links_signed_with_the_previous_secret() -> None:
    old = sign_link(PREVIOUS, "doc-1", "cust-1", NOW + 60)
    assert verify_link([SECRET, PREVIOUS], old, now=NOW).document_id == "doc-1"
    with pytest.raises(LinkError):
        verify_link([SECRET], old, now=NOW)  # once the previous secret is dropped


# --------------------------------------------------------------------------- API keys


def _store() -> tuple[KeyStore, str, str]:
    bearer_a, key_a = new_key("portal-a", "cust-000001")
    bearer_b, key_b = new_key("portal-b", "cust-000001")
    return KeyStore([key_a, key_b]), bearer_a, bearer_b


def test_valid_keys_and_rotation() -> None:
    store, a, b = _store()
    assert store.authenticate(f"Bearer {a}", now=NOW) == Principal("portal-a", "cust-000001")
    assert store.authenticate(f"bearer {b}", now=NOW) == Principal("portal-b", "cust-000001")


@pytest.mark.parametrize(
    ("header", "denial"),
    [
        (None, Denial.MISSING),
        ("", Denial.MISSING),
        ("Basic abc", Denial.MALFORMED),
        ("Bearer nodot", Denial.MALFORMED),
        ("Bearer unknown.secret-value", Denial.UNKNOWN_KEY),
        ("Bearer portal-a.wrong-secret", Denial.BAD_SECRET),
    ],
)
def test_refused_credentials(header: str | None, denial: Denial) -> None:
    store, _, _ = _store()
    assert store.authenticate(header, now=NOW) is denial


def test_expired_key() -> None:
    store = KeyStore.from_json(
        {"k1": {"secret": "s" * 20, "customer_id": "cust-1", "expires_at": NOW}}
    )
    assert store.authenticate("Bearer k1." + "s" * 20, now=NOW) is Denial.EXPIRED
    assert store.authenticate("Bearer k1." + "s" * 20, now=NOW - 1) == Principal("k1", "cust-1")


def test_key_file_holds_hashes() -> None:
    store = KeyStore.from_json({"k1": {"sha256": hash_secret("x" * 32), "customer_id": "c-1"}})
    assert store.authenticate("Bearer k1." + "x" * 32, now=NOW) == Principal("k1", "c-1")


@pytest.mark.parametrize(
    "raw",
    [
        {},
        [],
        {"bad id!": {"secret": "s" * 20, "customer_id": "c"}},
        {"k": {"secret": "short", "customer_id": "c"}},
        {"k": {"sha256": "nothex", "customer_id": "c"}},
        {"k": {"secret": "s" * 20}},
    ],
)
def test_bad_key_files(raw: object) -> None:
    with pytest.raises(AuthError):
        KeyStore.from_json(raw)


def test_a_key_reads_only_its_customer() -> None:
    principal = Principal("k", "cust-000001")
    assert may_access(principal, "cust-000001")
    assert not may_access(principal, "cust-000002")


# --------------------------------------------------------------------------- document types


def test_every_document_type_maps_to_an_approved_template() -> None:
    assert set(TEMPLATE_OF) == set(DocumentType)
    for document_type, template_id in TEMPLATE_OF.items():
        resolved = resolve_template(TEMPLATES, template_id=template_id, language="en")
        assert not hasattr(resolved, "code"), (document_type, resolved)
        assert document_type_from_slug(slug_of(document_type)) is document_type


@pytest.mark.parametrize("slug", ["statement", "", "policy_copy_x", "../etc"])
def test_unknown_document_type_is_404(slug: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        document_type_from_slug(slug)
    assert exc.value.status == 404


def _invoice_params(**extra: str) -> dict[str, str]:
    base = {
        "amount_due": "12.50",
        "due_date": "2026-02-01",
        "statement_period": "2026-01",
        "currency": "EUR",
    }
    return base | extra


def test_order_resolves_with_the_routing_resolution() -> None:
    order = order_document(
        TEMPLATES,
        customer_id="cust-000001",
        document_slug="invoice",
        params=_invoice_params(language="fr-CA", delivery="url", unrelated="dropped"),
    )
    expected = resolve_template(TEMPLATES, template_id="tpl-billing-statement", language="fr-CA")
    assert order.template == expected
    assert order.template.language == "fr"
    assert order.template.version == 2
    assert order.delivery is Delivery.SECURE_URL
    assert "unrelated" not in order.data
    assert order.data["customer_id"] == "cust-000001"
    assert set(order.data) <= {"customer_id", *order.template.required_fields}


def test_language_without_templates_falls_back_to_english() -> None:
    order = order_document(
        TEMPLATES, customer_id="c-1", document_slug="invoice", params=_invoice_params(language="de")
    )
    assert order.template.language == "en"


def test_policy_copy_of_a_print_only_template_is_served() -> None:
    order = order_document(
        TEMPLATES,
        customer_id="c-1",
        document_slug="policy-copy",
        params={
            "policy_number": "P-1",
            "renewal_date": "2026-03-01",
            "premium": "99",
            "currency": "EUR",
        },
    )
    assert order.template.template_id == "tpl-renewal-notice"
    assert order.template.channels == ["PRINT"]


@pytest.mark.parametrize(
    ("customer", "params", "status"),
    [
        ("bad customer", _invoice_params(), 400),
        ("c-1", _invoice_params(language="not a language"), 400),
        ("c-1", _invoice_params(delivery="fax"), 400),
        ("c-1", _invoice_params(amount_due="x" * 300), 400),
        ("c-1", _invoice_params(amount_due="a\nb"), 400),
        ("c-1", {"Bad-Name": "1"}, 400),
        ("c-1", {"due_date": "2026-02-01"}, 422),
    ],
)
def test_invalid_requests(customer: str, params: dict[str, str], status: int) -> None:
    with pytest.raises(InvalidRequest) as exc:
        order_document(TEMPLATES, customer_id=customer, document_slug="invoice", params=params)
    assert exc.value.status == status


def test_missing_data_names_the_fields() -> None:
    with pytest.raises(InvalidRequest) as exc:
        order_document(TEMPLATES, customer_id="c-1", document_slug="invoice", params={})
    assert exc.value.extra["missing"] == ["amount_due", "currency", "due_date", "statement_period"]


def test_template_miss_is_422_with_its_code() -> None:
    templates = [t for t in TEMPLATES if t.template_id != "tpl-billing-statement"]
    with pytest.raises(InvalidRequest) as exc:
        order_document(templates, customer_id="c-1", document_slug="invoice", params={})
    assert exc.value.status == 422
    assert exc.value.extra["code"] == "MISSING_TEMPLATE"


def test_safe_filename() -> None:
    assert safe_filename(DocumentType.INVOICE, "doc-1") == "invoice-doc-1.pdf"
    name = safe_filename(DocumentType.INVOICE, '../../"evil"\r\n;x')
    assert "/" not in name
    assert '"' not in name
    assert "\n" not in name
    assert name.endswith(".pdf")


# --------------------------------------------------------------------------- cache, records


def test_cache_is_bounded_by_entries_and_bytes() -> None:
    cache = DocumentCache(max_entries=3, max_bytes=100)
    for i in range(10):
        cache.put(CachedDocument(f"d{i}", "c", "f.pdf", b"x" * 10))
    assert len(cache) == 3
    assert cache.get("d0") is None
    assert cache.get("d9") is not None
    cache.get("d7")  # most recently used now
    cache.put(CachedDocument("big", "c", "f.pdf", b"x" * 90))
    assert cache.bytes == 100
    assert cache.get("d8") is None
    assert cache.get("d7") is not None
    assert not cache.put(CachedDocument("huge", "c", "f.pdf", b"x" * 101))
    assert cache.evictions > 0


def test_records_of_a_produced_document() -> None:
    produced = Produced(
        document_id="doc-1",
        customer_id="cust-1",
        document_type=DocumentType.INVOICE,
        template_id="tpl-billing-statement",
        template_version=2,
        language="en",
        channel="WEB",
        produced_at=NOW * 1000,
        request_id="r1",
        key_id="portal-a",
        delivery="DOWNLOAD",
    )
    metadata, audit = metadata_record(produced), audit_record(produced)
    assert metadata.origin == "ON_DEMAND"
    assert metadata.communication_type == "INVOICE"
    assert audit.kind == AuditKind.DOCUMENT_PRODUCED
    assert audit.communication_id == metadata.communication_id
    assert audit.audit_id == audit_record(produced).audit_id  # deterministic
    assert audit.details["document_id"] == "doc-1"
