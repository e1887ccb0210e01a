"""Seeded generation of realistic Air Inc. and Exstream reference data and business events.

Pure: the same :class:`Scenario` always yields the same records, in the same order, so tests,
benchmarks and the demo can all be reproduced. Nothing here touches Kafka; ``publish`` encodes
and sends what this module produces.

What a scenario contains:
- templates (Exstream): per communication type, versions 1..3 in several languages, where v1 is
  RETIRED, v2 APPROVED and v3 a DRAFT; one communication type whose only template is retired, and
  one approved template that requires a field its triggering event cannot supply;
- rules (Air Inc.): one or more per event type, with conditions, segments, priorities, a
  regulatory rule, a disabled rule, a not-yet-effective rule and a rule pointing at a template
  that does not exist;
- preferences: one per customer, with a mix of languages (including one without templates, to
  exercise the language fallback), paperless enrolment, consents, valid and invalid contacts and
  quiet hours;
- events: account and case events over those customers, with repeats of the same business event
  (to exercise suppression), JSON-encoded records, and a configurable share of invalid records
  (garbage bytes, truncated records, unknown event types, missing required attributes);
- document requests (``Scenario.document_requests``, none by default): the portal's asynchronous
  requests for a policy copy, invoice, confirmation letter or account summary, carrying the
  template's data in ``fields``, in the customer's language, none, or one without templates
  (fallback ``en``); portal retries of an earlier request id; JSON-encoded records; and the same
  share of invalid records (garbage bytes, truncated records, unknown document types, a required
  field missing, an invalid delivery). Drawn from their own random stream, so adding requests
  changes no event, preference or template of a scenario.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from streams.domain.catalogue import ATTRIBUTE_KINDS, CATALOGUE, FieldKind
from streams.domain.document_requests import IDENTIFYING_FIELD, TEMPLATE_OF
from streams.domain.records import (
    AccountEvent,
    AccountEventType,
    CaseEvent,
    CaseEventType,
    CommRule,
    Condition,
    DocumentRequest,
    DocumentType,
    PostalAddress,
    Preference,
    QuietHours,
    TemplateVersion,
)

BASE_TIME_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: events are spread forward from here."""

LANGUAGES = (("en", 0.55), ("fr", 0.2), ("es", 0.15), ("de", 0.1))
"""Customer languages and their shares. Templates exist in en, fr and es only: ``de`` customers
exercise the fallback language."""
TEMPLATE_LANGUAGES = ("en", "fr", "es")
SEGMENTS = ("retail", "premium", "business")

OUTCOMES: dict[str, tuple[str, ...]] = {
    CaseEventType.CLAIM_DECIDED: ("APPROVED", "DENIED", "PARTIAL", "PENDING_INFO"),
    CaseEventType.SERVICE_REQUEST_COMPLETED: ("RESOLVED", "NO_FAULT_FOUND"),
    CaseEventType.DISPUTE_RESOLVED: ("UPHELD", "REJECTED", "PARTIAL"),
}
"""Outcomes the simulator reports for case types that require one."""


def event_attributes(event_type: str) -> tuple[str, ...]:
    """Required attributes, then the optional ones, of ``event_type`` in the catalogue."""
    spec = CATALOGUE[event_type]
    return (*sorted(spec.required), *sorted(spec.optional))


# communication type -> (template id, triggering event type, regulatory)
COMMUNICATIONS: tuple[tuple[str, str, str, bool], ...] = (
    ("BILLING_STATEMENT", "tpl-billing-statement", AccountEventType.BILLING_CYCLE_CLOSED, False),
    ("PAYMENT_REMINDER", "tpl-payment-reminder", AccountEventType.BILLING_CYCLE_CLOSED, False),
    ("RENEWAL_NOTICE", "tpl-renewal-notice", AccountEventType.POLICY_RENEWED, True),
    ("SERVICE_CHANGE_LETTER", "tpl-service-change", AccountEventType.SERVICE_CHANGED, False),
    ("ACCOUNT_STATUS_NOTICE", "tpl-account-status", AccountEventType.ACCOUNT_STATUS_CHANGED, False),
    ("CLAIM_ACKNOWLEDGEMENT", "tpl-claim-ack", CaseEventType.CLAIM_SUBMITTED, False),
    ("CLAIM_DECISION_LETTER", "tpl-claim-decision", CaseEventType.CLAIM_DECIDED, True),
    (
        "SERVICE_COMPLETION_LETTER",
        "tpl-service-done",
        CaseEventType.SERVICE_REQUEST_COMPLETED,
        False,
    ),
    ("DISPUTE_ACKNOWLEDGEMENT", "tpl-dispute-ack", CaseEventType.DISPUTE_OPENED, False),
    ("DISPUTE_RESPONSE", "tpl-dispute-response", CaseEventType.DISPUTE_RESOLVED, False),
    ("REGULATORY_NOTICE", "tpl-regulatory-notice", CaseEventType.CASE_ESCALATED, True),
)

RETIRED_ONLY_TEMPLATE = "tpl-legacy-welcome"
"""A template whose every version is retired; a rule still points at it."""
MISSING_TEMPLATE = "tpl-does-not-exist"
"""A template id that Exstream never published; a rule points at it."""
UNSUPPLIABLE_FIELD = "loyalty_tier"
"""Required by one approved template version although its event type never carries it."""

InvalidKind = Literal["garbage", "truncated", "unknown_event_type", "missing_field"]
INVALID_KINDS: tuple[InvalidKind, ...] = (
    "garbage",
    "truncated",
    "unknown_event_type",
    "missing_field",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    seed: int = 7
    customers: int = 500
    events: int = 2_000
    invalid_share: float = 0.03
    """Share of event records that are invalid in one of the :data:`INVALID_KINDS` ways."""
    json_share: float = 0.1
    """Share of valid event records published as JSON (content-type header) instead of Avro."""
    repeat_share: float = 0.05
    """Share of events that repeat an earlier business event under a new event id."""
    document_requests: int = 0
    """Portal document requests (``air.document-requests.v1``); invalid ones in
    ``invalid_share``, JSON ones in ``json_share``."""
    request_retry_share: float = 0.05
    """Share of document requests that are the portal retrying an earlier request (same id)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimEvent:
    """One event record to publish. ``invalid`` says how it was made invalid, if at all."""

    record: AccountEvent | CaseEvent
    encoding: Literal["avro", "json"] = "avro"
    invalid: InvalidKind | None = None


RequestInvalidKind = Literal[
    "garbage", "truncated", "unknown_document_type", "missing_field", "invalid_delivery"
]
REQUEST_INVALID_KINDS: tuple[RequestInvalidKind, ...] = (
    "garbage",
    "truncated",
    "unknown_document_type",
    "missing_field",
    "invalid_delivery",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRequest:
    """One document request record to publish. ``invalid`` says how it was made invalid, if
    at all; ``retry`` marks the portal sending an earlier (valid) request again."""

    record: DocumentRequest
    encoding: Literal["avro", "json"] = "avro"
    invalid: RequestInvalidKind | None = None
    retry: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    templates: list[TemplateVersion]
    rules: list[CommRule]
    preferences: list[Preference]
    events: list[SimEvent] = field(default_factory=list)
    document_requests: list[SimRequest] = field(default_factory=list)

    @property
    def invalid_events(self) -> list[SimEvent]:
        return [e for e in self.events if e.invalid is not None]

    @property
    def invalid_requests(self) -> list[SimRequest]:
        return [r for r in self.document_requests if r.invalid is not None]


def template_key(t: TemplateVersion) -> str:
    """Key of a template record on ``exstream.templates.v1``."""
    return f"{t.template_id}/{t.version}/{t.language}"


def template_catalogue() -> list[TemplateVersion]:
    """The template versions Exstream holds in the simulated world (every scenario shares them):
    what the simulator publishes on ``exstream.templates.v1`` and the emulator renders with."""
    return _templates()


def generate(scenario: Scenario) -> Dataset:
    rng = random.Random(scenario.seed)
    templates = _templates()
    rules = _rules()
    preferences = [_preference(rng, i) for i in range(scenario.customers)]
    events = list(_events(rng, scenario, preferences))
    # their own stream: requests change nothing else of the scenario
    requests_rng = random.Random(f"{scenario.seed}/document-requests")
    requests = list(_requests(requests_rng, scenario, preferences, templates))
    return Dataset(
        templates=templates,
        rules=rules,
        preferences=preferences,
        events=events,
        document_requests=requests,
    )


# --------------------------------------------------------------------------- templates and rules


def _body(comm_type: str, fields: tuple[str, ...]) -> str:
    lines = [f"{comm_type.replace('_', ' ').title()}", "Dear customer {customer_id},"]
    lines += [f"{name.replace('_', ' ')}: {{{name}}}" for name in fields]
    return "\n".join(lines)


def _templates() -> list[TemplateVersion]:
    out: list[TemplateVersion] = []
    for comm_type, template_id, event_type, regulatory in COMMUNICATIONS:
        fields = tuple(sorted(CATALOGUE[event_type].required))
        for version, status in ((1, "RETIRED"), (2, "APPROVED"), (3, "DRAFT")):
            required = list(fields)
            if template_id == "tpl-service-change" and version == 2:
                required.append(UNSUPPLIABLE_FIELD)
            for language in TEMPLATE_LANGUAGES:
                out.append(
                    TemplateVersion(
                        template_id=template_id,
                        version=version,
                        language=language,
                        status=status,
                        communication_type=comm_type,
                        required_fields=required,
                        channels=["PRINT"] if regulatory else [],
                        disclaimer_id="disc-general",
                        disclaimer_version=version,
                        regulatory_text_version=1 if regulatory else None,
                        body=_body(comm_type, tuple(required)),
                        updated_at=BASE_TIME_MS - 86_400_000 * (10 - version),
                    )
                )
    for language in TEMPLATE_LANGUAGES:
        out.append(
            TemplateVersion(
                template_id=RETIRED_ONLY_TEMPLATE,
                version=1,
                language=language,
                status="RETIRED",
                communication_type="WELCOME_LETTER",
                body="Welcome",
                updated_at=BASE_TIME_MS - 86_400_000 * 30,
            )
        )
    return out


def _rules() -> list[CommRule]:
    rules: list[CommRule] = []
    for comm_type, template_id, event_type, regulatory in COMMUNICATIONS:
        conditions: list[Condition] = []
        segments: list[str] = []
        if comm_type == "PAYMENT_REMINDER":
            conditions = [Condition(field="amount_due", op="GT", value="500")]
        elif comm_type == "CLAIM_DECISION_LETTER":
            conditions = [
                Condition(field="outcome", op="IN", values=["APPROVED", "DENIED", "PARTIAL"])
            ]
        elif comm_type == "DISPUTE_RESPONSE":
            segments = ["retail", "premium"]
        rules.append(
            CommRule(
                rule_id=f"rule-{comm_type.lower().replace('_', '-')}",
                version=1,
                event_type=event_type,
                conditions=conditions,
                segments=segments,
                communication_type=comm_type,
                template_id=template_id,
                priority=10 if regulatory else 5,
                regulatory=regulatory,
                suppression_window_ms=7 * 86_400_000,
            )
        )
    rules += [
        CommRule(
            rule_id="rule-legacy-welcome",
            version=3,
            event_type=AccountEventType.ACCOUNT_STATUS_CHANGED,
            conditions=[Condition(field="new_status", op="EQ", value="ACTIVE")],
            communication_type="WELCOME_LETTER",
            template_id=RETIRED_ONLY_TEMPLATE,
        ),
        CommRule(
            rule_id="rule-premium-dispute-followup",
            version=1,
            event_type=CaseEventType.DISPUTE_RESOLVED,
            segments=["premium"],
            communication_type="DISPUTE_FOLLOWUP",
            template_id=MISSING_TEMPLATE,
            priority=1,
        ),
        CommRule(
            rule_id="rule-disabled-survey",
            version=2,
            enabled=False,
            event_type=CaseEventType.SERVICE_REQUEST_COMPLETED,
            communication_type="SERVICE_COMPLETION_LETTER",
            template_id="tpl-service-done",
        ),
        CommRule(
            rule_id="rule-future-billing-insert",
            version=1,
            event_type=AccountEventType.BILLING_CYCLE_CLOSED,
            communication_type="BILLING_STATEMENT",
            template_id="tpl-billing-statement",
            effective_from=BASE_TIME_MS + 10 * 365 * 86_400_000,
        ),
    ]
    return rules


# --------------------------------------------------------------------------- customers


def _choice_weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    acc = 0.0
    for value, weight in options:
        acc += weight
        if roll < acc:
            return value
    return options[-1][0]


def customer_id(i: int) -> str:
    return f"cust-{i:06d}"


def _preference(rng: random.Random, i: int) -> Preference:
    cid = customer_id(i)
    email: str | None = f"customer{i}@example.com"
    if rng.random() < 0.05:
        email = f"customer{i}.example.com"  # invalid: no @
    elif rng.random() < 0.05:
        email = None
    phone = f"+1555{i:07d}" if rng.random() < 0.7 else None
    address: PostalAddress | None = PostalAddress(
        line1=f"{rng.randint(1, 999)} Main Street",
        city=rng.choice(["Springfield", "Riverton", "Lakeside", "Hill Valley"]),
        region=rng.choice(["CA", "NY", "TX", None]),
        postal_code=f"{rng.randint(10000, 99999)}",
        country="US",
    )
    if rng.random() < 0.04:
        address = None
    elif rng.random() < 0.03:
        address = PostalAddress(line1="", city="Nowhere", postal_code="", country="US")
    quiet = (
        QuietHours(start_hour=22, end_hour=7, utc_offset_minutes=rng.choice([-300, 0, 60]))
        if rng.random() < 0.3
        else None
    )
    return Preference(
        customer_id=cid,
        language=_choice_weighted(rng, LANGUAGES),
        paperless=rng.random() < 0.4,
        email_consent=rng.random() < 0.7,
        sms_consent=rng.random() < 0.3,
        push_consent=rng.random() < 0.2,
        web_consent=rng.random() < 0.5,
        email=email,
        phone=phone,
        push_registered=rng.random() < 0.3,
        postal_address=address,
        quiet_hours=quiet,
        updated_at=BASE_TIME_MS - rng.randint(0, 86_400_000 * 365),
    )


# --------------------------------------------------------------------------- events


TEXT_VALUES: dict[str, tuple[str, ...]] = {
    "previous_status": ("ACTIVE", "SUSPENDED", "DELINQUENT"),
    "new_status": ("ACTIVE", "SUSPENDED", "CLOSED", "DELINQUENT"),
    "change_type": ("UPGRADE", "DOWNGRADE", "ADDED", "REMOVED"),
    "request_type": ("REPAIR", "INSTALLATION", "BILLING_CORRECTION"),
}


def _value(rng: random.Random, name: str, cust: int) -> str:
    kind = ATTRIBUTE_KINDS.get(name, FieldKind.TEXT)
    if kind is FieldKind.DECIMAL:
        return f"{rng.randint(0, 200_000) / 100:.2f}"
    if kind is FieldKind.CURRENCY:
        return "USD"
    if kind is FieldKind.DATE:
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind is FieldKind.PERIOD:
        return f"2026-{rng.randint(1, 12):02d}"
    if kind is FieldKind.INTEGER:
        return str(rng.randint(1, 3))
    if kind is FieldKind.BOOLEAN:
        return rng.choice(("true", "false"))
    if name in TEXT_VALUES:
        return rng.choice(TEXT_VALUES[name])
    if name.endswith(("_number", "_id", "_reference")):
        return f"{name[:3].upper()}-{cust:06d}-{rng.randint(1, 999):03d}"
    return rng.choice(("standard", "premium plan", "customer request", "field visit"))


def _events(
    rng: random.Random, scenario: Scenario, preferences: list[Preference]
) -> Iterator[SimEvent]:
    account_types = list(AccountEventType)
    case_types = list(CaseEventType)
    history: list[AccountEvent | CaseEvent] = []
    for n in range(scenario.events):
        occurred_at = BASE_TIME_MS + n * 1_000
        event_id = f"evt-{scenario.seed}-{n:08d}"
        if history and rng.random() < scenario.repeat_share:
            earlier = rng.choice(history)
            repeat: AccountEvent | CaseEvent
            if isinstance(earlier, AccountEvent):
                repeat = AccountEvent(
                    event_id=event_id,
                    event_type=earlier.event_type,
                    customer_id=earlier.customer_id,
                    account_id=earlier.account_id,
                    segment=earlier.segment,
                    occurred_at=occurred_at,
                    attributes=dict(earlier.attributes),
                )
            else:
                repeat = CaseEvent(
                    event_id=event_id,
                    event_type=earlier.event_type,
                    customer_id=earlier.customer_id,
                    case_id=earlier.case_id,
                    case_type=earlier.case_type,
                    outcome=earlier.outcome,
                    segment=earlier.segment,
                    occurred_at=occurred_at,
                    attributes=dict(earlier.attributes),
                )
            yield SimEvent(record=repeat)
            continue
        cust = rng.randrange(len(preferences))
        cid = preferences[cust].customer_id
        segment = SEGMENTS[cust % len(SEGMENTS)]
        record: AccountEvent | CaseEvent
        if rng.random() < 0.6:
            etype: str = rng.choice(account_types)
            record = AccountEvent(
                event_id=event_id,
                event_type=etype,
                customer_id=cid,
                account_id=f"acct-{cust:06d}",
                segment=segment,
                occurred_at=occurred_at,
                attributes=_attributes(rng, etype, cust),
            )
        else:
            etype = rng.choice(case_types)
            spec = CATALOGUE[etype]
            outcomes = OUTCOMES.get(etype)
            record = CaseEvent(
                event_id=event_id,
                event_type=etype,
                customer_id=cid,
                case_id=f"case-{cust:06d}-{rng.randint(1, 5)}",
                case_type=rng.choice(sorted(spec.case_types)),
                outcome=rng.choice(outcomes) if outcomes else None,
                segment=segment,
                occurred_at=occurred_at,
                attributes=_attributes(rng, etype, cust),
            )
        invalid: InvalidKind | None = None
        if rng.random() < scenario.invalid_share:
            kind: InvalidKind = rng.choice(INVALID_KINDS)
            record = _make_invalid(rng, record, kind)
            invalid = kind
        else:
            history.append(record)
        encoding: Literal["avro", "json"] = (
            "json" if invalid is None and rng.random() < scenario.json_share else "avro"
        )
        yield SimEvent(record=record, encoding=encoding, invalid=invalid)


def _attributes(rng: random.Random, event_type: str, cust: int) -> dict[str, str]:
    spec = CATALOGUE[event_type]
    attrs = {a: _value(rng, a, cust) for a in sorted(spec.required)}
    for name in sorted(spec.optional):
        if rng.random() < 0.5:
            attrs[name] = _value(rng, name, cust)
    return attrs


def _make_invalid(
    rng: random.Random, record: AccountEvent | CaseEvent, kind: InvalidKind
) -> AccountEvent | CaseEvent:
    """Semantic invalidity lives in the record; byte-level corruption is applied on publish."""
    import dataclasses

    if kind == "unknown_event_type":
        return dataclasses.replace(record, event_type="LOYALTY_POINTS_EXPIRED")
    if kind == "missing_field":
        attrs = dict(record.attributes)
        attrs.pop(rng.choice(sorted(CATALOGUE[record.event_type].required)), None)
        return dataclasses.replace(record, attributes=attrs)
    return record


# --------------------------------------------------------------------------- document requests


REQUEST_LANGUAGES = (("customer", 0.7), ("none", 0.2), ("pt", 0.1))
"""Language of a request: the customer's, none (fallback ``en``), or one without templates."""


def _requests(
    rng: random.Random,
    scenario: Scenario,
    preferences: list[Preference],
    templates: list[TemplateVersion],
) -> Iterator[SimRequest]:
    """Requests over the scenario's customers, carrying the data of the approved version of
    their document type's template (every language of it requires the same fields)."""
    required = {
        t.template_id: tuple(t.required_fields) for t in templates if t.status == "APPROVED"
    }
    history: list[DocumentRequest] = []
    for n in range(scenario.document_requests):
        if history and rng.random() < scenario.request_retry_share:
            yield SimRequest(record=rng.choice(history), retry=True)
            continue
        cust = rng.randrange(len(preferences))
        pref = preferences[cust]
        document_type = rng.choice(list(DocumentType))
        identifying = IDENTIFYING_FIELD[document_type]
        fields = {
            name: _value(rng, name, cust)
            for name in required[TEMPLATE_OF[document_type]]
            if name not in ("customer_id", identifying)
        }
        reference = (
            _value(rng, identifying, cust)
            if identifying is not None
            else f"{document_type.value[:3]}-{cust:06d}-{n:06d}"
        )
        language = _choice_weighted(rng, REQUEST_LANGUAGES)
        record = DocumentRequest(
            request_id=f"req-{scenario.seed}-{n:06d}",
            customer_id=pref.customer_id,
            document_type=document_type.value,
            reference_id=reference,
            language={"customer": pref.language, "none": None}.get(language, language),
            delivery=rng.choice(("DOWNLOAD", "SECURE_URL")),
            requested_at=BASE_TIME_MS + n * 1_000 + 500,
            fields=fields,
        )
        invalid: RequestInvalidKind | None = None
        if rng.random() < scenario.invalid_share:
            kind: RequestInvalidKind = rng.choice(REQUEST_INVALID_KINDS)
            record = _make_invalid_request(rng, record, kind)
            invalid = kind
        else:
            history.append(record)
        encoding: Literal["avro", "json"] = (
            "json" if invalid is None and rng.random() < scenario.json_share else "avro"
        )
        yield SimRequest(record=record, encoding=encoding, invalid=invalid)


def _make_invalid_request(
    rng: random.Random, record: DocumentRequest, kind: RequestInvalidKind
) -> DocumentRequest:
    """Semantic invalidity lives in the record; byte-level corruption is applied on publish."""
    import dataclasses

    if kind == "unknown_document_type":
        return dataclasses.replace(record, document_type="TAX_CERTIFICATE")
    if kind == "missing_field":
        fields = dict(record.fields)
        fields.pop(rng.choice(sorted(fields)))
        return dataclasses.replace(record, fields=fields)
    if kind == "invalid_delivery":
        return dataclasses.replace(record, delivery="FAX")
    return record
