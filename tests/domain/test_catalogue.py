from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.catalogue import (
    ATTRIBUTE_KINDS,
    CATALOGUE,
    FieldKind,
    RejectionCode,
    event_data,
    guaranteed_fields,
    supplied_fields,
    validate_event,
    value_has_kind,
)
from streams.domain.records import AccountEventType, BusinessEvent, CaseEventType
from tests.domain.factories import billing_event, claim_event

pytestmark = pytest.mark.unit

SAMPLE_VALUES = {
    FieldKind.TEXT: "something",
    FieldKind.DECIMAL: "10.25",
    FieldKind.DATE: "2024-02-29",
    FieldKind.PERIOD: "2024-02",
    FieldKind.CURRENCY: "EUR",
    FieldKind.INTEGER: "2",
    FieldKind.BOOLEAN: "true",
}


def valid_event_of(event_type: str) -> BusinessEvent:
    """A valid event of ``event_type`` carrying exactly its required attributes."""
    spec = CATALOGUE[event_type]
    attributes = {
        name: SAMPLE_VALUES[ATTRIBUTE_KINDS.get(name, FieldKind.TEXT)] for name in spec.required
    }
    if spec.is_case:
        return claim_event(
            event_type=event_type,
            case_type=sorted(spec.case_types)[0],
            attributes=attributes,
        )
    return billing_event(event_type=event_type, attributes=attributes)


def test_every_event_type_is_catalogued() -> None:
    expected = {t.value for t in AccountEventType} | {t.value for t in CaseEventType}
    assert set(CATALOGUE) == expected
    for name, spec in CATALOGUE.items():
        assert spec.event_type == name
        assert spec.is_case == (name in {t.value for t in CaseEventType})
        assert spec.required, f"{name} declares no required attributes"
        assert not spec.required & spec.optional


def test_billing_cycle_closed_fields() -> None:
    spec = CATALOGUE["BILLING_CYCLE_CLOSED"]
    assert spec.required == {"amount_due", "due_date", "statement_period", "currency"}
    assert spec.natural_key == ("statement_period",)


def test_natural_keys_only_use_guaranteed_fields() -> None:
    for name, spec in CATALOGUE.items():
        assert set(spec.natural_key) <= guaranteed_fields(name), name


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_an_event_with_its_required_attributes_is_valid(event_type: str) -> None:
    assert validate_event(valid_event_of(event_type)) is None


def test_supplied_and_guaranteed_fields() -> None:
    assert guaranteed_fields("BILLING_CYCLE_CLOSED") == {
        "event_type",
        "customer_id",
        "account_id",
        "occurred_at",
        "amount_due",
        "due_date",
        "statement_period",
        "currency",
    }
    supplied = supplied_fields("BILLING_CYCLE_CLOSED")
    assert {"segment", "minimum_due", "autopay"} <= supplied
    assert "case_id" not in supplied
    assert {"outcome", "case_type", "case_id"} <= guaranteed_fields("CLAIM_DECIDED")
    assert "outcome" not in guaranteed_fields("CLAIM_SUBMITTED")
    assert "outcome" in supplied_fields("CLAIM_SUBMITTED")
    assert supplied_fields("NOPE") == frozenset()
    assert guaranteed_fields("NOPE") == frozenset()


def test_event_data_merges_base_fields_over_attributes() -> None:
    event = billing_event(
        attributes={**billing_event().attributes, "customer_id": "spoof", "segment": "spoof"},
        segment=None,
    )
    data = event_data(event)
    assert data["customer_id"] == "cust-1"
    assert "segment" not in data
    assert data["occurred_at"] == str(event.occurred_at)
    assert data["account_id"] == "acc-1"
    assert data["amount_due"] == "120.50"

    case = event_data(claim_event(outcome=None))
    assert case["case_id"] == "case-1"
    assert case["case_type"] == "CLAIM"
    assert "outcome" not in case
    assert event_data(claim_event())["outcome"] == "APPROVED"


# ------------------------------------------------------------------ rejections


@pytest.mark.parametrize(
    ("event", "code", "fields"),
    [
        (billing_event(event_type="BILLING_CLOSED"), "UNKNOWN_EVENT_TYPE", ("event_type",)),
        (billing_event(event_type="CLAIM_DECIDED"), "UNKNOWN_EVENT_TYPE", ("event_type",)),
        (claim_event(event_type="POLICY_RENEWED"), "UNKNOWN_EVENT_TYPE", ("event_type",)),
        (billing_event(event_type=""), "UNKNOWN_EVENT_TYPE", ("event_type",)),
        (billing_event(event_id=""), "MISSING_FIELD", ("event_id",)),
        (billing_event(customer_id=" "), "MISSING_FIELD", ("customer_id",)),
        (
            billing_event(account_id="", customer_id=""),
            "MISSING_FIELD",
            ("account_id", "customer_id"),
        ),
        (claim_event(case_id=""), "MISSING_FIELD", ("case_id",)),
        (claim_event(case_type=""), "MISSING_FIELD", ("case_type",)),
        (claim_event(outcome=None), "MISSING_FIELD", ("outcome",)),
        (claim_event(occurred_at=-1), "INVALID_FIELD", ("occurred_at",)),
        (claim_event(case_type="DISPUTE"), "INVALID_FIELD", ("case_type",)),
        (
            claim_event(
                event_type="CASE_ESCALATED",
                case_type="UNKNOWN",
                attributes={"escalation_level": "2", "escalated_date": "2024-01-01"},
            ),
            "INVALID_FIELD",
            ("case_type",),
        ),
        (
            billing_event(attributes={"amount_due": "1"}),
            "MISSING_FIELD",
            ("currency", "due_date", "statement_period"),
        ),
        (
            billing_event(attributes={**billing_event().attributes, "currency": ""}),
            "MISSING_FIELD",
            ("currency",),
        ),
        (
            billing_event(attributes={**billing_event().attributes, "amount_due": "12,50"}),
            "INVALID_FIELD",
            ("amount_due",),
        ),
        (
            billing_event(
                attributes={**billing_event().attributes, "due_date": "2023-02-30", "autopay": "Y"}
            ),
            "INVALID_FIELD",
            ("autopay", "due_date"),
        ),
        (
            billing_event(attributes={**billing_event().attributes, "statement_period": "2023-13"}),
            "INVALID_FIELD",
            ("statement_period",),
        ),
        (
            billing_event(attributes={**billing_event().attributes, "currency": "usd"}),
            "INVALID_FIELD",
            ("currency",),
        ),
    ],
)
def test_rejections(event: BusinessEvent, code: str, fields: tuple[str, ...]) -> None:
    rejection = validate_event(event)
    assert rejection is not None
    assert rejection.code == code
    assert rejection.fields == fields
    for name in fields:
        assert f"'{name}'" in rejection.reason or name == "event_type"


def test_unknown_attributes_pass_through() -> None:
    event = billing_event(attributes={**billing_event().attributes, "loyalty_tier": "gold"})
    assert validate_event(event) is None
    assert event_data(event)["loyalty_tier"] == "gold"


def test_unknown_event_type_is_quoted_only_when_it_looks_like_a_code() -> None:
    typo = validate_event(billing_event(event_type="BILLING_CYCLE_CLOSD"))
    assert typo is not None
    assert "'BILLING_CYCLE_CLOSD'" in typo.reason
    assert "BILLING_CYCLE_CLOSED" in typo.reason  # the expected codes are listed
    odd = validate_event(billing_event(event_type="pat@example.com"))
    assert odd is not None
    assert "pat@example.com" not in odd.reason


def test_reasons_never_contain_values() -> None:
    secret = "4111-1111-1111-1111"
    event = billing_event(
        attributes={**billing_event().attributes, "amount_due": secret, "due_date": secret}
    )
    rejection = validate_event(event)
    assert rejection is not None
    assert secret not in rejection.reason


@given(
    st.sampled_from(sorted(CATALOGUE)),
    st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6),
    st.text(max_size=20),
    st.data(),
)
def test_validation_is_total_and_never_echoes_values(
    event_type: str, extra: dict[str, str], suffix: str, data: st.DataObject
) -> None:
    base = valid_event_of(event_type)
    spec = CATALOGUE[event_type]
    name = data.draw(st.sampled_from(sorted(spec.required | spec.optional)))
    value = "\u2063secret:" + suffix  # a marker no reason text contains by itself
    event = dataclasses.replace(base, attributes={**base.attributes, **extra, name: value})
    rejection = validate_event(event)
    kind = ATTRIBUTE_KINDS.get(name, FieldKind.TEXT)
    if kind is not FieldKind.TEXT:
        assert rejection is not None  # the marker never has a typed shape
        assert name in rejection.fields
    if rejection is not None:
        assert rejection.code in set(RejectionCode)
        assert rejection.fields
        assert "secret:" not in rejection.reason


@pytest.mark.parametrize(
    ("value", "kind", "ok"),
    [
        ("10", FieldKind.DECIMAL, True),
        ("-0.5", FieldKind.DECIMAL, True),
        ("1e3", FieldKind.DECIMAL, True),
        ("NaN", FieldKind.DECIMAL, False),
        ("Infinity", FieldKind.DECIMAL, False),
        ("ten", FieldKind.DECIMAL, False),
        ("2024-02-29", FieldKind.DATE, True),
        ("2023-02-29", FieldKind.DATE, False),
        ("1900-02-29", FieldKind.DATE, False),
        ("2000-02-29", FieldKind.DATE, True),
        ("2024-04-31", FieldKind.DATE, False),
        ("2024-4-1", FieldKind.DATE, False),
        ("2024-00-10", FieldKind.DATE, False),
        ("2024-12", FieldKind.PERIOD, True),
        ("2024-00", FieldKind.PERIOD, False),
        ("EUR", FieldKind.CURRENCY, True),
        ("EU", FieldKind.CURRENCY, False),
        ("12", FieldKind.INTEGER, True),
        ("1.5", FieldKind.INTEGER, False),
        ("true", FieldKind.BOOLEAN, True),
        ("false", FieldKind.BOOLEAN, True),
        ("TRUE", FieldKind.BOOLEAN, False),
        ("anything", FieldKind.TEXT, True),
    ],
)
def test_value_kinds(value: str, kind: FieldKind, ok: bool) -> None:
    assert value_has_kind(value, kind) is ok
