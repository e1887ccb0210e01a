"""The event catalogue: which fields each known event type supplies, and validation of events.

Every business event offers two kinds of fields to rules (conditions) and templates (placeholders):

- **base fields**, taken from the record itself: ``event_type``, ``customer_id``,
  ``occurred_at`` (milliseconds, as a decimal string), ``segment`` when set, and ``account_id``
  for account events or ``case_id``, ``case_type`` and ``outcome`` (when set) for case events;
- **attributes**, the event's ``attributes`` map. Each event type declares *required* attributes
  (an event without one of them is rejected) and *optional* ones (used when present). Attributes not
  in the catalogue are accepted and passed through to templates unchanged.

Validation rules (:func:`validate_event`), checked in this order, the first failing group wins:

1. ``event_type`` must be one of the types of the record's kind (:class:`AccountEventType` on
   account events, :class:`CaseEventType` on case events) -> ``UNKNOWN_EVENT_TYPE``;
2. ``event_id``, ``customer_id``, ``account_id``/``case_id``, ``case_type`` must be non-blank, and
   ``outcome`` too for event types that report an outcome -> ``MISSING_FIELD``;
3. ``occurred_at`` must not be negative; ``case_type`` must be one the event type allows
   -> ``INVALID_FIELD``;
4. every required attribute must be present and non-blank -> ``MISSING_FIELD``;
5. every catalogued attribute that is present must have its kind's shape (decimal amount, ISO date
   ``YYYY-MM-DD``, period ``YYYY-MM``, ISO 4217 currency code, integer, ``true``/``false``)
   -> ``INVALID_FIELD``.

A rejection names the offending fields, never their values: values may be personal data and the
reason travels into dead-letter headers and logs. The one exception is an unknown ``event_type``,
which is a code set by a platform team, not customer data: it is quoted when it looks like a code
(upper-case letters, digits and underscores, at most 64 characters) so that the sender can find the
typo, and withheld otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from streams.domain.records import (
    AccountEvent,
    AccountEventType,
    BusinessEvent,
    CaseEvent,
    CaseEventType,
)


class RejectionCode(StrEnum):
    """Stable machine codes of a rejected event (the dead letter's ``error_type``)."""

    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    MISSING_FIELD = "MISSING_FIELD"
    INVALID_FIELD = "INVALID_FIELD"


class FieldKind(StrEnum):
    """The shape an attribute value must have (all values travel as strings)."""

    TEXT = "TEXT"
    DECIMAL = "DECIMAL"
    """A finite decimal number such as ``120.50`` or ``-3``."""
    DATE = "DATE"
    """An ISO calendar date ``YYYY-MM-DD``."""
    PERIOD = "PERIOD"
    """A month ``YYYY-MM`` (statement periods)."""
    CURRENCY = "CURRENCY"
    """Three upper-case letters (ISO 4217)."""
    INTEGER = "INTEGER"
    BOOLEAN = "BOOLEAN"
    """``true`` or ``false``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRejection:
    """Why an event cannot be routed: a stable ``code`` for machines, ``reason`` for a person."""

    code: RejectionCode
    fields: tuple[str, ...]
    """The offending field names, sorted; never their values."""
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSpec:
    """What one event type carries."""

    event_type: str
    is_case: bool
    required: frozenset[str]
    """Attributes every event of this type must carry."""
    optional: frozenset[str] = frozenset()
    """Attributes an event of this type may carry."""
    natural_key: tuple[str, ...] = ()
    """Fields (base or required attributes) that identify *what happened*, beyond the account or
    case: two events of this type with equal natural keys for the same account/case mean the same
    communication (see :mod:`streams.domain.suppression`)."""
    outcome_required: bool = False
    """Case events whose ``outcome`` must be set (decisions, resolutions, completions)."""
    case_types: frozenset[str] = frozenset()
    """Allowed ``case_type`` values (case events only)."""


CASE_TYPES = frozenset({"CLAIM", "SERVICE_REQUEST", "DISPUTE", "COMPLAINT"})

ACCOUNT_BASE_FIELDS = frozenset({"event_type", "customer_id", "account_id", "occurred_at"})
"""Base fields every account event supplies; ``segment`` only when set."""
CASE_BASE_FIELDS = frozenset({"event_type", "customer_id", "case_id", "case_type", "occurred_at"})
"""Base fields every case event supplies; ``segment`` and ``outcome`` only when set."""
OPTIONAL_BASE_FIELDS = frozenset({"segment", "outcome"})

ATTRIBUTE_KINDS: Mapping[str, FieldKind] = {
    # money and counts
    "amount_due": FieldKind.DECIMAL,
    "minimum_due": FieldKind.DECIMAL,
    "previous_balance": FieldKind.DECIMAL,
    "payments_received": FieldKind.DECIMAL,
    "premium": FieldKind.DECIMAL,
    "previous_premium": FieldKind.DECIMAL,
    "monthly_charge": FieldKind.DECIMAL,
    "amount_past_due": FieldKind.DECIMAL,
    "claim_amount": FieldKind.DECIMAL,
    "approved_amount": FieldKind.DECIMAL,
    "disputed_amount": FieldKind.DECIMAL,
    "credited_amount": FieldKind.DECIMAL,
    "currency": FieldKind.CURRENCY,
    "term_months": FieldKind.INTEGER,
    "escalation_level": FieldKind.INTEGER,
    "autopay": FieldKind.BOOLEAN,
    # dates
    "due_date": FieldKind.DATE,
    "statement_period": FieldKind.PERIOD,
    "renewal_date": FieldKind.DATE,
    "effective_date": FieldKind.DATE,
    "incident_date": FieldKind.DATE,
    "submitted_date": FieldKind.DATE,
    "decision_date": FieldKind.DATE,
    "appeal_deadline": FieldKind.DATE,
    "completed_date": FieldKind.DATE,
    "transaction_date": FieldKind.DATE,
    "response_due_date": FieldKind.DATE,
    "resolution_date": FieldKind.DATE,
    "escalated_date": FieldKind.DATE,
}
"""Shape of every catalogued attribute; attributes not listed here are free text."""


_CASE_TYPE_CODES = frozenset(t.value for t in CaseEventType)


def _spec(
    event_type: str,
    *,
    required: set[str],
    optional: set[str] | None = None,
    natural_key: tuple[str, ...] = (),
    outcome_required: bool = False,
    case_types: frozenset[str] | None = None,
) -> EventSpec:
    is_case = event_type in _CASE_TYPE_CODES
    return EventSpec(
        event_type=str(event_type),
        is_case=is_case,
        required=frozenset(required),
        optional=frozenset(optional or ()),
        natural_key=natural_key,
        outcome_required=outcome_required,
        case_types=(case_types or CASE_TYPES) if is_case else frozenset(),
    )


CATALOGUE: Mapping[str, EventSpec] = {
    spec.event_type: spec
    for spec in (
        # ------------------------------------------------------------ account events (flow 1)
        _spec(
            AccountEventType.BILLING_CYCLE_CLOSED,
            required={"amount_due", "due_date", "statement_period", "currency"},
            optional={"minimum_due", "previous_balance", "payments_received", "autopay"},
            natural_key=("statement_period",),
        ),
        _spec(
            AccountEventType.POLICY_RENEWED,
            required={"policy_number", "renewal_date", "premium", "currency"},
            optional={"term_months", "previous_premium", "coverage_summary"},
            natural_key=("policy_number", "renewal_date"),
        ),
        _spec(
            AccountEventType.SERVICE_CHANGED,
            required={"service_id", "change_type", "effective_date"},
            optional={"previous_plan", "new_plan", "monthly_charge", "currency"},
            natural_key=("service_id", "change_type", "effective_date"),
        ),
        _spec(
            AccountEventType.ACCOUNT_STATUS_CHANGED,
            required={"previous_status", "new_status", "effective_date"},
            optional={"reason_code", "amount_past_due", "currency"},
            natural_key=("new_status", "effective_date"),
        ),
        # ------------------------------------------------------------ case events (flow 2)
        _spec(
            CaseEventType.CLAIM_SUBMITTED,
            required={"claim_number", "submitted_date"},
            optional={"claim_amount", "currency", "incident_date", "policy_number"},
            natural_key=("claim_number",),
            case_types=frozenset({"CLAIM"}),
        ),
        _spec(
            CaseEventType.CLAIM_DECIDED,
            required={"claim_number", "decision_date"},
            optional={"approved_amount", "currency", "denial_reason_code", "appeal_deadline"},
            natural_key=("claim_number", "outcome"),
            outcome_required=True,
            case_types=frozenset({"CLAIM"}),
        ),
        _spec(
            CaseEventType.SERVICE_REQUEST_COMPLETED,
            required={"request_type", "completed_date"},
            optional={"resolution_summary", "technician_visit"},
            natural_key=("request_type",),
            outcome_required=True,
            case_types=frozenset({"SERVICE_REQUEST"}),
        ),
        _spec(
            CaseEventType.DISPUTE_OPENED,
            required={"disputed_amount", "currency", "transaction_date", "response_due_date"},
            optional={"merchant_name", "dispute_reason_code"},
            natural_key=(),
            case_types=frozenset({"DISPUTE"}),
        ),
        _spec(
            CaseEventType.DISPUTE_RESOLVED,
            required={"resolution_date"},
            optional={"credited_amount", "currency", "resolution_summary"},
            natural_key=("outcome",),
            outcome_required=True,
            case_types=frozenset({"DISPUTE"}),
        ),
        _spec(
            CaseEventType.CASE_ESCALATED,
            required={"escalation_level", "escalated_date"},
            optional={"assigned_team", "response_due_date", "regulator_reference"},
            natural_key=("escalation_level",),
        ),
    )
}
"""Every known event type. Adding a type to records.py without an entry here fails the tests."""


def spec_for(event_type: str) -> EventSpec | None:
    """The catalogue entry of ``event_type``, or None for an unknown type."""
    return CATALOGUE.get(event_type)


def guaranteed_fields(event_type: str) -> frozenset[str]:
    """Fields every valid event of ``event_type`` supplies (empty for an unknown type)."""
    spec = CATALOGUE.get(event_type)
    if spec is None:
        return frozenset()
    base = CASE_BASE_FIELDS if spec.is_case else ACCOUNT_BASE_FIELDS
    outcome = frozenset({"outcome"}) if spec.outcome_required else frozenset()
    return base | outcome | spec.required


def supplied_fields(event_type: str) -> frozenset[str]:
    """Every field an event of ``event_type`` can supply: guaranteed, optional base, optional
    attributes (empty for an unknown type). A template needing a field outside this set can never
    be filled from this event type."""
    spec = CATALOGUE.get(event_type)
    if spec is None:
        return frozenset()
    optional_base = OPTIONAL_BASE_FIELDS if spec.is_case else frozenset({"segment"})
    return guaranteed_fields(event_type) | optional_base | spec.optional


def event_data(event: BusinessEvent) -> dict[str, str]:
    """The event's fields as one string map: its attributes, then its base fields on top.

    Base fields win over attributes of the same name, so an attribute can never pose as the
    event's customer, account or case. Unset optional base fields (``segment``, ``outcome``) are
    absent, not empty.
    """
    data = dict(event.attributes)
    data["event_type"] = event.event_type
    data["customer_id"] = event.customer_id
    data["occurred_at"] = str(event.occurred_at)
    if isinstance(event, AccountEvent):
        data["account_id"] = event.account_id
    else:
        data["case_id"] = event.case_id
        data["case_type"] = event.case_type
        if event.outcome is not None:
            data["outcome"] = event.outcome
        else:
            data.pop("outcome", None)
    if event.segment is not None:
        data["segment"] = event.segment
    else:
        data.pop("segment", None)
    return data


# --------------------------------------------------------------------------- validation

_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_PERIOD = re.compile(r"(\d{4})-(\d{2})")
_CURRENCY = re.compile(r"[A-Z]{3}")
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse_decimal(text: str) -> Decimal | None:
    """``text`` as a finite decimal, or None (NaN and infinities are not numbers here)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def value_has_kind(value: str, kind: FieldKind) -> bool:
    """True when ``value`` has the shape of ``kind`` (see :class:`FieldKind`)."""
    if kind is FieldKind.TEXT:
        return True
    if kind is FieldKind.DECIMAL:
        return parse_decimal(value) is not None
    if kind is FieldKind.CURRENCY:
        return _CURRENCY.fullmatch(value) is not None
    if kind is FieldKind.INTEGER:
        return _INTEGER.fullmatch(value) is not None
    if kind is FieldKind.BOOLEAN:
        return value in ("true", "false")
    if kind is FieldKind.PERIOD:
        period = _PERIOD.fullmatch(value)
        return period is not None and 1 <= int(period.group(2)) <= 12
    date = _DATE.fullmatch(value)
    if date is None:
        return False
    year, month, day = (int(g) for g in date.groups())
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1]:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return not (month == 2 and day == 29 and not leap)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _names(fields: list[str]) -> str:
    return ", ".join(f"'{f}'" for f in fields)


def _reject(code: RejectionCode, fields: list[str], reason: str) -> EventRejection:
    return EventRejection(code=code, fields=tuple(sorted(fields)), reason=reason)


def validate_event(event: BusinessEvent) -> EventRejection | None:
    """None when ``event`` can be routed, else the first failing rule (see the module docstring)."""
    is_account = isinstance(event, AccountEvent)
    kind = "account" if is_account else "case"
    spec = CATALOGUE.get(event.event_type)
    if spec is None or spec.is_case == is_account:
        shown = (
            f"'{event.event_type}'" if _CODE.fullmatch(event.event_type) else "(not a type code)"
        )
        known = sorted(t for t, s in CATALOGUE.items() if s.is_case != is_account)
        return _reject(
            RejectionCode.UNKNOWN_EVENT_TYPE,
            ["event_type"],
            f"event_type {shown} is not a known {kind} event type; expected one of "
            + ", ".join(known),
        )

    base: dict[str, str | None] = {"event_id": event.event_id, "customer_id": event.customer_id}
    if isinstance(event, AccountEvent):
        base["account_id"] = event.account_id
    else:
        base["case_id"] = event.case_id
        base["case_type"] = event.case_type
        if spec.outcome_required:
            base["outcome"] = event.outcome
    missing_base = sorted(name for name, value in base.items() if _blank(value))
    if missing_base:
        return _reject(
            RejectionCode.MISSING_FIELD,
            missing_base,
            f"{event.event_type} event is missing required field(s) {_names(missing_base)}",
        )

    if event.occurred_at < 0:
        return _reject(
            RejectionCode.INVALID_FIELD,
            ["occurred_at"],
            "field 'occurred_at' must be milliseconds since the Unix epoch (not negative)",
        )
    if isinstance(event, CaseEvent) and event.case_type not in spec.case_types:
        allowed = ", ".join(sorted(spec.case_types))
        return _reject(
            RejectionCode.INVALID_FIELD,
            ["case_type"],
            f"field 'case_type' of a {event.event_type} event must be one of {allowed}",
        )

    missing = sorted(name for name in spec.required if _blank(event.attributes.get(name)))
    if missing:
        return _reject(
            RejectionCode.MISSING_FIELD,
            missing,
            f"{event.event_type} event is missing required attribute(s) {_names(missing)}",
        )

    invalid: list[str] = []
    for name in sorted(spec.required | spec.optional):
        value = event.attributes.get(name)
        field_kind = ATTRIBUTE_KINDS.get(name, FieldKind.TEXT)
        if value is not None and not value_has_kind(value, field_kind):
            invalid.append(name)
    if invalid:
        expectations = "; ".join(
            f"'{name}' must be {_KIND_TEXT[ATTRIBUTE_KINDS[name]]}" for name in invalid
        )
        return _reject(
            RejectionCode.INVALID_FIELD,
            invalid,
            f"{event.event_type} event has malformed attribute(s): {expectations}",
        )
    return None


_KIND_TEXT: Mapping[FieldKind, str] = {
    FieldKind.TEXT: "text",
    FieldKind.DECIMAL: "a decimal number such as 120.50",
    FieldKind.DATE: "an ISO date YYYY-MM-DD",
    FieldKind.PERIOD: "a month YYYY-MM",
    FieldKind.CURRENCY: "a three-letter ISO 4217 currency code",
    FieldKind.INTEGER: "an integer",
    FieldKind.BOOLEAN: "true or false",
}
