"""Record factories for the domain tests: valid defaults, any field overridable."""

from __future__ import annotations

from typing import Any

from streams.domain.records import (
    AccountEvent,
    CaseEvent,
    CommRule,
    Condition,
    PostalAddress,
    Preference,
    QuietHours,
    TemplateVersion,
)

T0 = 1_700_000_000_000
"""2023-11-14T22:13:20Z: a fixed event time."""
DAY = 86_400_000


def address(**overrides: Any) -> PostalAddress:
    values: dict[str, Any] = {
        "line1": "1 Main Street",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    }
    values.update(overrides)
    return PostalAddress(**values)


def billing_event(**overrides: Any) -> AccountEvent:
    values: dict[str, Any] = {
        "event_id": "evt-1",
        "event_type": "BILLING_CYCLE_CLOSED",
        "customer_id": "cust-1",
        "account_id": "acc-1",
        "segment": "RETAIL",
        "occurred_at": T0,
        "attributes": {
            "amount_due": "120.50",
            "due_date": "2023-12-01",
            "statement_period": "2023-11",
            "currency": "USD",
        },
    }
    values.update(overrides)
    return AccountEvent(**values)


def claim_event(**overrides: Any) -> CaseEvent:
    values: dict[str, Any] = {
        "event_id": "evt-c1",
        "event_type": "CLAIM_DECIDED",
        "customer_id": "cust-1",
        "case_id": "case-1",
        "case_type": "CLAIM",
        "outcome": "APPROVED",
        "segment": "RETAIL",
        "occurred_at": T0,
        "attributes": {"claim_number": "CL-1", "decision_date": "2023-11-14"},
    }
    values.update(overrides)
    return CaseEvent(**values)


def preference(**overrides: Any) -> Preference:
    values: dict[str, Any] = {
        "customer_id": "cust-1",
        "language": "en",
        "paperless": False,
        "email_consent": True,
        "sms_consent": True,
        "push_consent": True,
        "web_consent": True,
        "email": "pat@example.com",
        "phone": "+15551234567",
        "push_registered": True,
        "postal_address": address(),
        "quiet_hours": None,
        "updated_at": T0 - DAY,
    }
    values.update(overrides)
    return Preference(**values)


def quiet(start: int, end: int, offset: int = 0) -> QuietHours:
    return QuietHours(start_hour=start, end_hour=end, utc_offset_minutes=offset)


def rule(**overrides: Any) -> CommRule:
    values: dict[str, Any] = {
        "rule_id": "r-statement",
        "version": 1,
        "event_type": "BILLING_CYCLE_CLOSED",
        "communication_type": "STATEMENT",
        "template_id": "tpl-statement",
    }
    values.update(overrides)
    return CommRule(**values)


def cond(
    field: str, op: str, value: str | None = None, values: list[str] | None = None
) -> Condition:
    return Condition(field=field, op=op, value=value, values=values or [])


def template(**overrides: Any) -> TemplateVersion:
    values: dict[str, Any] = {
        "template_id": "tpl-statement",
        "version": 1,
        "language": "en",
        "status": "APPROVED",
        "communication_type": "STATEMENT",
        "required_fields": ["amount_due", "due_date"],
        "channels": [],
        "disclaimer_id": "disc-1",
        "disclaimer_version": 1,
        "regulatory_text_version": None,
        "updated_at": T0 - DAY,
    }
    values.update(overrides)
    return TemplateVersion(**values)
