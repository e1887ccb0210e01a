"""The fast decision path decides exactly what the decision as first written decided.

The oracle is ``benchmarks/baseline/routing.py`` (``route_event`` as it was before the reference
index, fast validation and cheaper ids). Outcomes are compared by ``repr``, which also compares
the order of every dict (command data, audit details, suppression updates): that order is what
the Avro encoding writes, so equal ``repr`` means byte-identical records downstream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.baseline.routing import route_event as baseline_route_event
from streams.domain.catalogue import validate_event
from streams.domain.fast_validation import surely_valid
from streams.domain.records import (
    AccountEvent,
    BusinessEvent,
    CaseEvent,
    CommRule,
    Preference,
    TemplateVersion,
)
from streams.domain.reference_index import ReferenceIndex
from streams.domain.routing import RoutingOutcome, route_event, route_indexed
from streams.domain.suppression import SuppressionEntry
from streams.simulator.generator import Scenario, generate, template_key
from tests.domain.factories import (
    DAY,
    T0,
    address,
    billing_event,
    claim_event,
    cond,
    preference,
    quiet,
    rule,
    template,
)

pytestmark = pytest.mark.unit

TOPIC = "air.account-events.v1"

# ------------------------------------------------------------------ strategies

BILLING = {
    "amount_due": "120.50",
    "due_date": "2023-12-01",
    "statement_period": "2023-11",
    "currency": "USD",
}
CLAIM = {"claim_number": "CL-1", "decision_date": "2023-11-14"}
ODD_VALUES = ["", " ", "600", "-3", "1e3", "NaN", "2023-02-30", "2024-02-29", "2023-13", "usd"]
EXTRA = {
    "minimum_due": st.sampled_from(["10.00", "0"]),
    "autopay": st.sampled_from(["true", "false"]),
    "approved_amount": st.sampled_from(["600", "12.5"]),
    "note": st.text(max_size=5),
    "customer_id": st.just("cust-9"),
    "outcome": st.just("DENIED"),
}


@st.composite
def attributes(draw: st.DrawFn, valid: dict[str, str]) -> dict[str, str]:
    """Valid attributes, with extras and amounts around the rules' thresholds."""
    values = dict(valid)
    for name in draw(st.lists(st.sampled_from(sorted(EXTRA)), max_size=3, unique=True)):
        values[name] = draw(EXTRA[name])
    if draw(st.booleans()):
        values["amount_due"] = draw(st.sampled_from(["120.5", "500", "500.01", "9"]))
    return values


times = st.integers(-18, 18).map(lambda k: T0 + k * DAY // 2) | st.integers(T0 - DAY, T0 + DAY)
"""Half days around T0 (so windows and expiry meet exactly) or any time near it."""

valid_account_events = st.builds(
    billing_event,
    event_id=st.sampled_from(["e1", "e2", "e3"]),
    account_id=st.sampled_from(["acc-1", "acc-2"]),
    segment=st.sampled_from([None, "RETAIL", "premium"]),
    occurred_at=times,
    attributes=attributes(BILLING),
)
valid_case_events = st.builds(
    claim_event,
    event_id=st.sampled_from(["c1", "c2"]),
    case_id=st.sampled_from(["case-1", "case-2"]),
    outcome=st.sampled_from(["APPROVED", "DENIED", "PARTIAL"]),
    segment=st.sampled_from([None, "RETAIL"]),
    occurred_at=times,
    attributes=attributes(CLAIM),
)
valid_events = valid_account_events | valid_case_events


@st.composite
def invalid_events(draw: st.DrawFn) -> BusinessEvent:
    """A valid event with one thing wrong (or, rarely, something that is still valid)."""
    event = draw(valid_events)
    names = ["event_id", "customer_id", "event_type", "occurred_at", "attribute", "value"]
    names += ["case_id", "case_type", "outcome"] if isinstance(event, CaseEvent) else ["account_id"]
    what = draw(st.sampled_from(names))
    if what == "attribute":
        attributes = dict(event.attributes)
        del attributes[draw(st.sampled_from(sorted(attributes)))]
        return dataclasses.replace(event, attributes=attributes)
    if what == "value":
        attributes = dict(event.attributes)
        attributes[draw(st.sampled_from(sorted(attributes)))] = draw(st.sampled_from(ODD_VALUES))
        return dataclasses.replace(event, attributes=attributes)
    if what == "occurred_at":
        return dataclasses.replace(event, occurred_at=draw(st.integers(-(2**40), -1)))
    if what == "event_type":
        other = ["NOPE", "POLICY_RENEWED", "CLAIM_SUBMITTED", "CLAIM_DECIDED", "bad type!"]
        return dataclasses.replace(event, event_type=draw(st.sampled_from(other)))
    if what == "case_type":
        return dataclasses.replace(event, case_type=draw(st.sampled_from(["DISPUTE", "", " "])))
    return dataclasses.replace(event, **{what: draw(st.sampled_from(["", " ", "\t", None]))})


events = st.one_of(valid_events, valid_events, valid_events, invalid_events())

customer_preferences = st.builds(
    preference,
    language=st.sampled_from(["en", "fr", "FR-ca", "de", " ", "pt_BR"]),
    paperless=st.booleans(),
    email_consent=st.booleans(),
    sms_consent=st.booleans(),
    push_consent=st.booleans(),
    web_consent=st.booleans(),
    push_registered=st.booleans(),
    email=st.sampled_from([None, "pat@example.com", "broken"]),
    phone=st.sampled_from([None, "+15551234567", "555"]),
    postal_address=st.sampled_from([address(), address(), None, address(country="usa")]),
    quiet_hours=st.sampled_from([None, quiet(22, 7), quiet(9, 17, 60), quiet(0, 24)]),
)
preferences = st.one_of(st.just(None), customer_preferences, customer_preferences)

conditions = st.lists(
    st.sampled_from(
        [
            cond("amount_due", "GT", "500"),
            cond("amount_due", "LTE", "120.5"),
            cond("segment", "EQ", "RETAIL"),
            cond("outcome", "IN", values=["APPROVED", "DENIED"]),
            cond("minimum_due", "EXISTS"),
            cond("minimum_due", "EXISTS", "false"),
            cond("note", "NE", "x"),
            cond("amount_due", "BOGUS", "1"),
        ]
    ),
    max_size=2,
).map(lambda c: c if len(c) != 2 else [])  # mostly no or one condition
rules = st.builds(
    rule,
    rule_id=st.sampled_from(["r1", "r2", "r3", "r4"]),
    version=st.integers(1, 3),
    enabled=st.sampled_from([True, True, True, False]),
    event_type=st.sampled_from(["BILLING_CYCLE_CLOSED", "CLAIM_DECIDED"] * 3 + ["CLAIM_SUBMITTED"]),
    conditions=conditions,
    segments=st.sampled_from([[], [], ["RETAIL"], ["premium", "RETAIL"]]),
    communication_type=st.sampled_from(["STATEMENT", "REMINDER"]),
    template_id=st.sampled_from(["t1", "t2"] * 3 + ["t-missing"]),
    priority=st.integers(0, 2),
    regulatory=st.booleans(),
    effective_from=st.sampled_from([None] * 4 + [T0 - DAY, T0 + DAY]),
    effective_to=st.sampled_from([None] * 4 + [T0, T0 + 5 * DAY]),
    suppression_window_ms=st.sampled_from([0, -5, DAY, 3 * DAY]),
)
templates = st.builds(
    template,
    template_id=st.sampled_from(["t1", "t2"]),
    version=st.integers(1, 3),
    language=st.sampled_from(["en", "fr", "EN-gb"]),
    status=st.sampled_from(["APPROVED"] * 4 + ["DRAFT", "RETIRED"]),
    channels=st.sampled_from([[], ["PRINT"], ["EMAIL", "WEB"], ["SMS", "PUSH"]]),
    required_fields=st.sampled_from([[], [], ["amount_due"], ["minimum_due", "claim_number"]]),
    disclaimer_version=st.sampled_from([None, 1, 2]),
    updated_at=st.sampled_from([T0 - DAY, T0 - 2 * DAY]),
)


def _by_id(versions: Sequence[TemplateVersion]) -> dict[str, list[TemplateVersion]]:
    by_id: dict[str, list[TemplateVersion]] = {}
    for version in versions:
        by_id.setdefault(version.template_id, []).append(version)
    return by_id


def both(
    event: BusinessEvent,
    pref: Preference | None,
    rule_list: list[CommRule],
    versions: list[TemplateVersion],
    state: Mapping[str, SuppressionEntry],
    now_ms: int | None,
) -> tuple[RoutingOutcome, RoutingOutcome, RoutingOutcome]:
    by_id = _by_id(versions)
    args = {"source_topic": TOPIC, "preference": pref, "suppression_state": state}
    expected = baseline_route_event(
        event, rules=rule_list, templates_by_id=by_id, now_ms=now_ms, **args
    )
    wrapped = route_event(event, rules=rule_list, templates_by_id=by_id, now_ms=now_ms, **args)
    index = ReferenceIndex(rule_list, by_id)
    indexed = route_indexed(event, index=index, now_ms=now_ms, **args)
    return expected, wrapped, indexed


# ------------------------------------------------------------------ properties


BASE_RULES = [
    rule(rule_id="rb1", communication_type="STATEMENT", template_id="t1", priority=1),
    rule(
        rule_id="rb2", event_type="CLAIM_DECIDED", communication_type="DECISION", template_id="t2"
    ),
    rule(rule_id="rb3", communication_type="STATEMENT", template_id="t2", regulatory=True),
]
BASE_TEMPLATES = [
    template(template_id="t1", language="en", required_fields=[]),
    template(template_id="t1", language="fr", required_fields=["due_date"]),
    template(template_id="t2", language="en", required_fields=[], channels=["PRINT", "EMAIL"]),
]
"""Reference data under which most valid events become commands; the drawn rules and templates
come on top (newer versions, other priorities, drafts, missing templates...)."""


@settings(max_examples=400)
@given(
    st.lists(events, min_size=1, max_size=5),
    preferences,
    st.lists(rules, max_size=4).map(lambda drawn: BASE_RULES + drawn),
    st.lists(templates, max_size=6).map(lambda drawn: BASE_TEMPLATES + drawn),
    st.none() | times,
)
def test_fast_path_routes_a_stream_exactly_as_first_written(
    stream: list[BusinessEvent],
    pref: Preference | None,
    rule_list: list[CommRule],
    versions: list[TemplateVersion],
    now_ms: int | None,
) -> None:
    """Events of one customer in a row, the state fed forward as the worker does."""
    state: dict[str, SuppressionEntry] = {}
    index = ReferenceIndex(rule_list, _by_id(versions))
    for event in stream:
        expected, wrapped, indexed = both(event, pref, rule_list, versions, state, now_ms)
        assert repr(wrapped) == repr(expected)
        assert repr(indexed) == repr(expected)
        # one index reused across events (its memo warm) decides the same
        reused = route_indexed(
            event,
            source_topic=TOPIC,
            preference=pref,
            index=index,
            suppression_state=state,
            now_ms=now_ms,
        )
        assert repr(reused) == repr(expected)
        before = dict(state)
        changed = indexed.apply_to(state)
        assert changed == (state != before or bool(indexed.suppression_updates))


@pytest.mark.parametrize("expires_at", [T0 - 1, T0, T0 + 1])
def test_expiry_at_the_boundary(expires_at: int) -> None:
    entry = SuppressionEntry(
        communication_id="com-x", source_event_id="e0", emitted_at=0, expires_at=expires_at
    )
    state = {"a": entry, "b": entry}
    expected, wrapped, indexed = both(billing_event(), preference(), BASE_RULES, [], state, T0)
    assert repr(wrapped) == repr(expected)
    assert repr(indexed) == repr(expected)
    assert indexed.expired_keys == (() if expires_at > T0 else ("a", "b"))


@settings(max_examples=300)
@given(events)
def test_quick_validation_never_accepts_what_validation_rejects(event: BusinessEvent) -> None:
    if surely_valid(event):
        assert validate_event(event) is None


@given(st.sampled_from([billing_event(), claim_event()]))
def test_quick_validation_accepts_valid_events(event: BusinessEvent) -> None:
    assert validate_event(event) is None
    assert surely_valid(event)


def test_subclassed_event_is_left_to_full_validation() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Special(AccountEvent):
        pass

    event = Special(
        **{f.name: getattr(billing_event(), f.name) for f in dataclasses.fields(AccountEvent)}
    )
    assert not surely_valid(event)
    assert validate_event(event) is None


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(seed=7, customers=200, events=3_000, invalid_share=0.05, repeat_share=0.2),
        Scenario(seed=11, customers=30, events=1_500, invalid_share=0.1, repeat_share=0.3),
    ],
    ids=lambda s: f"seed{s.seed}",
)
def test_fast_path_equals_the_first_version_on_seeded_datasets(scenario: Scenario) -> None:
    dataset = generate(scenario)
    prefs = {p.customer_id: p for p in dataset.preferences}
    rule_list = list({r.rule_id: r for r in dataset.rules}.values())
    by_id = _by_id(list({template_key(t): t for t in dataset.templates}.values()))
    index = ReferenceIndex(rule_list, by_id)
    fast_states: dict[str, dict[str, SuppressionEntry]] = {}
    slow_states: dict[str, dict[str, SuppressionEntry]] = {}
    decided = 0
    for sim in dataset.events:
        event = sim.record
        topic = "cases" if isinstance(event, CaseEvent) else TOPIC
        fast_state = fast_states.setdefault(event.customer_id, {})
        slow_state = slow_states.setdefault(event.customer_id, {})
        now_ms = event.occurred_at - 3 * DAY
        fast = route_indexed(
            event,
            source_topic=topic,
            preference=prefs.get(event.customer_id),
            index=index,
            suppression_state=fast_state,
            now_ms=now_ms,
        )
        slow = baseline_route_event(
            event,
            source_topic=topic,
            preference=prefs.get(event.customer_id),
            rules=rule_list,
            templates_by_id=by_id,
            suppression_state=slow_state,
            now_ms=now_ms,
        )
        assert repr(fast) == repr(slow)
        fast.apply_to(fast_state)
        slow_state.update(slow.suppression_updates)
        for key in slow.expired_keys:
            slow_state.pop(key, None)
        decided += len(fast.commands) + len(fast.suppressed) + len(fast.alerts)
    assert fast_states == slow_states
    assert decided > scenario.events // 2
