from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from streams.domain import delivery
from streams.domain.document_requests import (
    IDENTIFYING_FIELD,
    REQUEST_RULE_ID,
    TEMPLATE_OF,
    AcceptedRequest,
    RequestRejection,
    RequestRejectionCode,
    decide_request,
    request_communication_id,
    retry_audit,
)
from streams.domain.ids import audit_id, communication_id
from streams.domain.records import (
    AuditKind,
    DeliveryEvent,
    DocumentRequest,
    DocumentType,
    Recipient,
    TemplateVersion,
)
from streams.simulator.generator import template_catalogue

pytestmark = pytest.mark.unit

T0 = 1_767_225_600_000
TOPIC = "air.document-requests.v1"


def catalogue() -> dict[str, list[TemplateVersion]]:
    by_id: dict[str, list[TemplateVersion]] = {}
    for t in template_catalogue():
        by_id.setdefault(t.template_id, []).append(t)
    return by_id


def invoice(**overrides: Any) -> DocumentRequest:
    base: dict[str, Any] = {
        "request_id": "req-1",
        "customer_id": "cust-000001",
        "document_type": "INVOICE",
        "reference_id": "INV-2026-0042",
        "language": "fr",
        "delivery": "SECURE_URL",
        "requested_at": T0,
        "fields": {
            "amount_due": "120.50",
            "currency": "EUR",
            "due_date": "2026-02-15",
            "statement_period": "2026-01",
        },
    }
    return DocumentRequest(**{**base, **overrides})


def accepted(request: DocumentRequest, **kwargs: Any) -> AcceptedRequest:
    decision = decide_request(
        request, source_topic=TOPIC, templates_by_id=kwargs.get("templates", catalogue())
    )
    assert isinstance(decision, AcceptedRequest), decision
    return decision


def rejected(request: DocumentRequest, **kwargs: Any) -> RequestRejection:
    decision = decide_request(
        request, source_topic=TOPIC, templates_by_id=kwargs.get("templates", catalogue())
    )
    assert isinstance(decision, RequestRejection), decision
    return decision


# --------------------------------------------------------------------------- accepted requests


def test_a_valid_invoice_request_becomes_a_web_command_from_the_approved_template() -> None:
    decision = accepted(invoice())
    command = decision.command
    assert command.communication_id == request_communication_id("cust-000001", "req-1")
    assert command.source_event_id == "req-1"
    assert command.source_topic == TOPIC
    assert command.event_type == "DOCUMENT_REQUESTED"
    assert command.rule_id == REQUEST_RULE_ID
    assert command.customer_id == "cust-000001"
    assert command.communication_type == "INVOICE"
    # highest APPROVED version (v2; v3 is a DRAFT) in the request's language
    assert (command.template_id, command.template_version, command.language) == (
        "tpl-billing-statement",
        2,
        "fr",
    )
    assert command.channel == "WEB"
    assert command.recipient == Recipient()
    assert command.regulatory is False
    assert command.created_at == T0
    assert command.data == {
        "amount_due": "120.50",
        "currency": "EUR",
        "customer_id": "cust-000001",
        "due_date": "2026-02-15",
        "reference_id": "INV-2026-0042",
        "statement_period": "2026-01",
    }
    assert list(command.data) == sorted(command.data)
    assert (command.disclaimer_id, command.disclaimer_version) == ("disc-general", 2)


def test_the_audit_record_names_ids_and_codes_never_the_request_data() -> None:
    decision = accepted(invoice())
    audit = decision.audit
    assert audit.kind == AuditKind.COMMAND_EMITTED
    assert audit.audit_id == audit_id(AuditKind.COMMAND_EMITTED, decision.command.communication_id)
    assert audit.communication_id == decision.command.communication_id
    assert audit.occurred_at == T0
    assert audit.details["request_id"] == "req-1"
    assert audit.details["delivery"] == "SECURE_URL"
    assert audit.details["origin"] == "ON_DEMAND"
    text = repr(audit)
    for value in ("120.50", "2026-02-15", "INV-2026-0042"):
        assert value not in text


def test_reference_id_fills_the_templates_identifying_field() -> None:
    policy = invoice(
        document_type="POLICY_COPY",
        reference_id="POL-000001-007",
        fields={"renewal_date": "2026-03-01", "premium": "99.00", "currency": "USD"},
    )
    command = accepted(policy).command
    assert command.template_id == "tpl-renewal-notice"
    assert command.data["policy_number"] == "POL-000001-007"
    assert command.data["reference_id"] == "POL-000001-007"
    assert IDENTIFYING_FIELD[DocumentType.CONFIRMATION_LETTER] == "service_id"
    # a print-only regulatory template still produces the portal's WEB copy
    assert command.channel == "WEB"


def test_fields_the_template_does_not_need_are_not_forwarded() -> None:
    request = invoice(fields={**invoice().fields, "minimum_due": "10.00", "note": "hello"})
    assert "note" not in accepted(request).command.data
    assert "minimum_due" not in accepted(request).command.data


@pytest.mark.parametrize(
    ("language", "resolved"),
    [("fr", "fr"), ("FR-ca", "fr"), ("de", "en"), (None, "en"), ("es", "es")],
)
def test_language_resolution_falls_back_to_english(language: str | None, resolved: str) -> None:
    assert accepted(invoice(language=language)).command.language == resolved


def test_a_retry_gets_the_same_id_and_command_other_requests_other_ids() -> None:
    first = accepted(invoice()).command
    assert accepted(invoice()).command == first
    assert accepted(invoice(request_id="req-2")).command.communication_id != first.communication_id
    other_customer = accepted(invoice(customer_id="cust-000002")).command
    assert other_customer.communication_id != first.communication_id
    # never the id routing would give an event with the same id
    assert first.communication_id != communication_id("req-1", REQUEST_RULE_ID)


def test_preferences_do_not_apply_the_decision_takes_none() -> None:
    """No preference, consent or suppression state is an input: the same request always gives
    the same command (see the module docstring)."""
    assert accepted(invoice()) == accepted(invoice())


def test_retry_audit_is_distinct_per_retry_and_stable_per_replay() -> None:
    a = retry_audit(invoice(), "t/1/5")
    assert a == retry_audit(invoice(), "t/1/5")
    assert a.audit_id != retry_audit(invoice(), "t/1/6").audit_id
    assert a.kind == AuditKind.SUPPRESSED
    assert a.details["cause"] == "RETRY"
    assert a.communication_id == request_communication_id("cust-000001", "req-1")


def test_every_document_type_has_a_template_in_the_catalogue() -> None:
    assert set(TEMPLATE_OF) == set(DocumentType) == set(IDENTIFYING_FIELD)
    templates = catalogue()
    for document_type, template_id in TEMPLATE_OF.items():
        identifying = IDENTIFYING_FIELD[document_type]
        approved = [t for t in templates[template_id] if t.status == "APPROVED"]
        assert approved
        if identifying is not None:
            assert all(identifying in t.required_fields for t in approved)


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("overrides", "code", "fields", "words"),
    [
        ({"request_id": " "}, "MISSING_FIELD", ("request_id",), ["request_id"]),
        ({"reference_id": ""}, "MISSING_FIELD", ("reference_id",), ["reference_id"]),
        (
            {"customer_id": "", "document_type": ""},
            "MISSING_FIELD",
            ("customer_id", "document_type"),
            ["customer_id", "document_type"],
        ),
        (
            {"document_type": "TAX_CERTIFICATE"},
            "UNKNOWN_DOCUMENT_TYPE",
            ("document_type",),
            ["'TAX_CERTIFICATE'", "INVOICE"],
        ),
        ({"customer_id": "cust 1/../x"}, "INVALID_FIELD", ("customer_id",), ["malformed"]),
        ({"language": ""}, "INVALID_FIELD", ("language",), ["BCP 47"]),
        ({"language": "fr;drop"}, "INVALID_FIELD", ("language",), ["BCP 47"]),
        ({"delivery": "FAX"}, "INVALID_FIELD", ("delivery",), ["DOWNLOAD", "SECURE_URL"]),
        ({"requested_at": -5}, "INVALID_FIELD", ("requested_at",), ["negative"]),
        ({"reference_id": "x" * 257}, "INVALID_FIELD", ("reference_id",), ["256"]),
        ({"request_id": "req\n1"}, "INVALID_FIELD", ("request_id",), ["control"]),
        (
            {"fields": {f"f{i}": "v" for i in range(33)}},
            "INVALID_FIELD",
            ("fields",),
            ["32"],
        ),
        ({"fields": {"Amount Due": "1"}}, "INVALID_FIELD", ("fields",), ["lower_snake_case"]),
        (
            {"fields": {**invoice().fields, "customer_id": "cust-000002"}},
            "INVALID_FIELD",
            ("fields.customer_id",),
            ["fields.customer_id", "customer_id"],
        ),
        (
            {"fields": {"amount_due": "1.00", "due_date": "2026-02-15"}},
            "MISSING_FIELD",
            ("fields.currency", "fields.statement_period"),
            ["currency", "statement_period", "tpl-billing-statement"],
        ),
        (
            {"fields": {**invoice().fields, "amount_due": "a lot", "due_date": "2026-02-30"}},
            "INVALID_FIELD",
            ("fields.amount_due", "fields.due_date"),
            ["fields.amount_due", "decimal", "fields.due_date", "date"],
        ),
    ],
)
def test_invalid_requests_are_rejected_with_a_code_and_a_reason_naming_fields(
    overrides: dict[str, Any], code: str, fields: tuple[str, ...], words: list[str]
) -> None:
    request = invoice(**overrides)
    rejection = rejected(request)
    assert rejection.code == RequestRejectionCode(code)
    assert rejection.fields == fields
    for word in words:
        assert word in rejection.reason, (word, rejection.reason)


def test_a_reason_never_quotes_the_requests_values() -> None:
    secret = "4111-1111-1111-1111"
    for overrides in (
        {"fields": {**invoice().fields, "amount_due": secret}},
        {"fields": {**invoice().fields, "customer_id": secret}},
        {"document_type": secret.lower()},
        {"customer_id": secret + " x"},
    ):
        rejection = rejected(invoice(**overrides))
        assert secret not in rejection.reason
        assert secret.lower() not in rejection.reason


def test_the_identifying_field_cannot_be_contradicted_by_fields() -> None:
    request = invoice(
        document_type="POLICY_COPY",
        reference_id="POL-1",
        fields={
            "renewal_date": "2026-03-01",
            "premium": "9",
            "currency": "USD",
            "policy_number": "POL-2",
        },
    )
    rejection = rejected(request)
    assert rejection.code is RequestRejectionCode.INVALID_FIELD
    assert rejection.fields == ("fields.policy_number",)
    assert "reference_id" in rejection.reason
    same = dataclasses.replace(request, fields={**request.fields, "policy_number": "POL-1"})
    assert accepted(same).command.data["policy_number"] == "POL-1"


def test_a_confirmation_letter_needs_every_field_of_the_approved_version() -> None:
    """tpl-service-change v2 requires loyalty_tier, which no service event supplies: a portal
    request must carry it."""
    request = invoice(
        document_type="CONFIRMATION_LETTER",
        reference_id="SER-000001-001",
        fields={"change_type": "UPGRADE", "effective_date": "2026-01-10"},
    )
    rejection = rejected(request)
    assert rejection.code is RequestRejectionCode.MISSING_FIELD
    assert rejection.fields == ("fields.loyalty_tier",)
    ok = dataclasses.replace(request, fields={**request.fields, "loyalty_tier": "gold"})
    assert accepted(ok).command.data["service_id"] == "SER-000001-001"


@pytest.mark.parametrize(
    ("status", "miss"),
    [(None, "MISSING_TEMPLATE"), ("RETIRED", "RETIRED_TEMPLATE"), ("DRAFT", "RETIRED_TEMPLATE")],
)
def test_no_approved_template_is_a_rejection_naming_the_miss(status: str | None, miss: str) -> None:
    templates = catalogue()
    if status is None:
        del templates["tpl-billing-statement"]
    else:
        templates["tpl-billing-statement"] = [
            dataclasses.replace(t, status=status) for t in templates["tpl-billing-statement"]
        ]
    rejection = rejected(invoice(), templates=templates)
    assert rejection.code is RequestRejectionCode.TEMPLATE_UNAVAILABLE
    assert miss in rejection.reason
    assert "tpl-billing-statement" in rejection.reason


def test_no_version_in_the_language_nor_in_english_is_a_rejection() -> None:
    templates = catalogue()
    templates["tpl-billing-statement"] = [
        t for t in templates["tpl-billing-statement"] if t.language == "es"
    ]
    rejection = rejected(invoice(language="fr"), templates=templates)
    assert rejection.code is RequestRejectionCode.TEMPLATE_UNAVAILABLE
    assert "LANGUAGE_UNAVAILABLE" in rejection.reason
    assert rejection.fields == ("document_type", "language")
    assert accepted(invoice(language="es"), templates=templates).command.language == "es"


# --------------------------------------------------------------------------- delivery tracking


def test_tracking_reports_a_requested_documents_metadata_as_on_demand() -> None:
    command = accepted(invoice()).command
    state = delivery.start(command, submitted_at=T0, sla_ms={})
    composed = DeliveryEvent(
        event_id="dev-1",
        communication_id=command.communication_id,
        customer_id=command.customer_id,
        document_id="doc-1",
        channel="WEB",
        status="COMPOSED",
        occurred_at=T0 + 1_000,
    )
    transition = delivery.on_delivery_event(state, composed, preference=None)
    assert [m.origin for m in transition.metadata] == ["ON_DEMAND"]
    assert transition.metadata[0].communication_type == "INVOICE"
    assert [s.status for s in transition.statuses] == ["COMPOSED"]
