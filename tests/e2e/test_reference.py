"""The e2e reference computation, checked two ways: against production ``route_event`` applied the
way the worker applies it (on seeded datasets), and on small hand-built cases whose expected
output is written out literally."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest

from streams.domain.document_requests import RequestRejection, decide_request
from streams.domain.ids import communication_id
from streams.domain.records import (
    AccountEvent,
    BusinessEvent,
    CaseEvent,
    CommRule,
    CompositionCommand,
    Condition,
    PostalAddress,
    Preference,
    QuietHours,
    Recipient,
    TemplateVersion,
)
from streams.domain.routing import route_event
from streams.domain.suppression import SuppressionEntry
from streams.routing.settings import WorkerSettings
from streams.simulator.generator import Dataset, Scenario, SimEvent, generate, template_key
from tests.e2e.reference import Expected, expected_outcome

pytestmark = pytest.mark.unit

ACCOUNT_TOPIC = "t.air.account-events.v1"
CASE_TOPIC = "t.air.case-events.v1"


def topic_of(event: BusinessEvent) -> str:
    return ACCOUNT_TOPIC if isinstance(event, AccountEvent) else CASE_TOPIC


# --------------------------------------------------------------------------- production harness


@dataclass
class Produced:
    commands: list[CompositionCommand] = field(default_factory=list)
    dead_lettered: dict[str, str] = field(default_factory=dict)
    byte_level: int = 0
    suppressed: set[str] = field(default_factory=set)
    undeliverable: set[str] = field(default_factory=set)
    undeliverable_codes: Counter[str] = field(default_factory=Counter)
    alerts: set[str] = field(default_factory=set)


def run_production(
    dataset: Dataset, grace_ms: int = WorkerSettings().suppression_grace_ms
) -> Produced:
    """``route_event`` as the routing worker applies it: compacted reference views, one
    suppression state per customer key, updates stored and expired keys (older than the worker's
    grace) dropped after each event."""
    prefs = {p.customer_id: p for p in dataset.preferences}
    rules = list({r.rule_id: r for r in dataset.rules}.values())
    templates: dict[str, list[TemplateVersion]] = {}
    for t in {template_key(t): t for t in dataset.templates}.values():
        templates.setdefault(t.template_id, []).append(t)
    states: dict[str, dict[str, SuppressionEntry]] = {}
    out = Produced()
    for sim in dataset.events:
        if sim.invalid in ("garbage", "truncated"):
            out.byte_level += 1
            continue
        event = sim.record
        state = states.setdefault(event.customer_id, {})
        outcome = route_event(
            event,
            source_topic=topic_of(event),
            preference=prefs.get(event.customer_id),
            rules=rules,
            templates_by_id=templates,
            suppression_state=state,
            now_ms=event.occurred_at - grace_ms,
        )
        if outcome.rejection is not None:
            out.dead_lettered[event.event_id] = outcome.rejection.code.value
            continue
        out.commands.extend(outcome.commands)
        out.suppressed.update(s.communication_id for s in outcome.suppressed)
        out.undeliverable.update(u.communication_id for u in outcome.undeliverable)
        out.undeliverable_codes.update(u.code.value for u in outcome.undeliverable)
        # every alert of route_event names its rule and event; map it back to the communication
        for a in outcome.alerts:
            assert a.rule_id is not None
            out.alerts.add(communication_id(event.event_id, a.rule_id))
        state.update(outcome.suppression_updates)
        for stale in outcome.expired_keys:
            state.pop(stale, None)
    return out


E2E_SCENARIO = Scenario(seed=20261124, customers=1_000, events=10_000, invalid_share=0.03)
"""The scenario of ``test_routing_e2e.py`` (about 1 s here)."""

SCENARIOS = [
    E2E_SCENARIO,
    Scenario(seed=1, customers=60, events=600, invalid_share=0.06, repeat_share=0.15),
    Scenario(seed=42, customers=200, events=1_500, invalid_share=0.04),
    Scenario(seed=20261124, customers=100, events=2_000, invalid_share=0.05, repeat_share=0.1),
    Scenario(seed=9, customers=30, events=800, invalid_share=0.08, repeat_share=0.3),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"seed{s.seed}-{s.events}")
def test_reference_equals_production_on_seeded_datasets(scenario: Scenario) -> None:
    dataset = generate(scenario)
    expected = expected_outcome(dataset, source_topics=topic_of)
    produced = run_production(dataset)

    ids = Counter(c.communication_id for c in produced.commands)
    assert [i for i, n in ids.items() if n > 1] == []
    by_id = {c.communication_id: c for c in produced.commands}
    assert sorted(set(by_id) - set(expected.commands)) == []
    assert sorted(set(expected.commands) - set(by_id)) == []
    differing = [i for i, c in by_id.items() if c != expected.commands[i]]
    assert differing == []
    assert expected.dead_lettered_event_ids == set(produced.dead_lettered)
    assert expected.rejection_codes == produced.dead_lettered
    assert expected.byte_level_invalid == produced.byte_level
    assert expected.suppressed == produced.suppressed
    assert expected.undeliverable == produced.undeliverable
    assert expected.alerts == produced.alerts

    # the semantic invalid records are exactly the simulator's semantic invalids
    semantic = {e.record.event_id for e in dataset.invalid_events if e.invalid not in BYTE_KINDS}
    assert expected.dead_lettered_event_ids == semantic
    assert expected.byte_level_invalid == sum(e.invalid in BYTE_KINDS for e in dataset.events)
    assert set(expected.rejection_codes.values()) == {"UNKNOWN_EVENT_TYPE", "MISSING_FIELD"}

    # the dataset exercises every path
    kinds = Counter(e.invalid for e in dataset.invalid_events)
    assert set(kinds) == {"garbage", "truncated", "unknown_event_type", "missing_field"}
    assert len(expected.commands) > len(dataset.events) // 3
    assert len(expected.suppressed) > 5
    assert len(expected.undeliverable) > 5
    assert len(expected.alerts) > 5
    assert {"NO_CONSENTED_CHANNEL", "NO_POSTAL_ADDRESS"} <= set(produced.undeliverable_codes)
    channels = {c.channel for c in expected.commands.values()}
    assert {"PRINT", "EMAIL", "WEB"} <= channels
    if scenario == E2E_SCENARIO:  # mobile channels are rare: only the big dataset has them all
        assert channels == {"PRINT", "EMAIL", "WEB", "PUSH", "SMS"}
        assert "QUIET_HOURS" in produced.undeliverable_codes
        assert len(expected.commands) > 2_000
    assert {c.source_topic for c in expected.commands.values()} == {ACCOUNT_TOPIC, CASE_TOPIC}
    assert {c.language for c in expected.commands.values()} == {"en", "fr", "es"}


BYTE_KINDS = ("garbage", "truncated")


def test_quiet_hours_change_the_channel_in_a_seeded_dataset() -> None:
    """Events run from 00:00 UTC; customers with 22->7 quiet hours at UTC+0 or UTC+1 are in
    them throughout, so they get no PUSH or SMS, though they would without quiet hours."""
    dataset = generate(E2E_SCENARIO)
    quiet_ids = {
        p.customer_id
        for p in dataset.preferences
        if p.quiet_hours is not None and p.quiet_hours.utc_offset_minutes in (0, 60)
    }
    awake = replace(
        dataset, preferences=[replace(p, quiet_hours=None) for p in dataset.preferences]
    )

    def mobile(data: Dataset) -> set[str]:
        commands = expected_outcome(data, source_topics=topic_of).commands.values()
        return {
            c.communication_id
            for c in commands
            if c.customer_id in quiet_ids and c.channel in ("PUSH", "SMS")
        }

    assert mobile(dataset) == set()
    assert len(mobile(awake)) >= 5


def test_reference_detects_a_tampered_production_result() -> None:
    """The comparison has teeth: a changed channel in one reference command is noticed."""
    dataset = generate(SCENARIOS[1])
    expected = expected_outcome(dataset, source_topics=topic_of)
    by_id = {c.communication_id: c for c in run_production(dataset).commands}
    victim = next(iter(expected.commands))
    other = "WEB" if expected.commands[victim].channel != "WEB" else "EMAIL"
    expected.commands[victim] = replace(expected.commands[victim], channel=other)
    assert [i for i, c in by_id.items() if c != expected.commands[i]] == [victim]


# --------------------------------------------------------------------------- hand-built cases

T0 = 1_767_225_600_000 + 12 * 3_600_000  # 2026-01-01T12:00:00Z
DAY = 86_400_000
ADDRESS = PostalAddress(
    line1="1 Main Street", city="Springfield", postal_code="12345", country="US"
)


def pref(**overrides: object) -> Preference:
    values: dict[str, object] = {
        "customer_id": "cust-1",
        "language": "en",
        "email": "ann@example.com",
        "phone": "+15550000001",
        "postal_address": ADDRESS,
        "updated_at": 0,
    }
    values.update(overrides)
    return Preference(**values)  # type: ignore[arg-type]


def tpl(
    template_id: str, *, language: str = "en", version: int = 2, **kw: object
) -> TemplateVersion:
    values: dict[str, object] = {
        "template_id": template_id,
        "version": version,
        "language": language,
        "status": "APPROVED",
        "communication_type": "X",
        "required_fields": ["amount_due"],
        "disclaimer_id": "disc",
        "disclaimer_version": version,
        "updated_at": 0,
    }
    values.update(kw)
    return TemplateVersion(**values)  # type: ignore[arg-type]


STATEMENT = CommRule(
    rule_id="rule-statement",
    version=4,
    event_type="BILLING_CYCLE_CLOSED",
    communication_type="BILLING_STATEMENT",
    template_id="tpl-statement",
    priority=5,
    suppression_window_ms=7 * DAY,
)
NOTICE = CommRule(
    rule_id="rule-notice",
    version=1,
    event_type="BILLING_CYCLE_CLOSED",
    communication_type="LEGAL_NOTICE",
    template_id="tpl-notice",
    priority=9,
    regulatory=True,
)
ATTRS = {
    "amount_due": "120.50",
    "due_date": "2026-02-01",
    "statement_period": "2026-01",
    "currency": "USD",
}


def billing(n: int, *, at: int = T0, customer: str = "cust-1", **attrs: str) -> SimEvent:
    return SimEvent(
        record=AccountEvent(
            event_id=f"evt-{n}",
            event_type="BILLING_CYCLE_CLOSED",
            customer_id=customer,
            account_id="acct-1",
            segment="retail",
            occurred_at=at,
            attributes={**ATTRS, **attrs},
        )
    )


def dataset(
    events: list[SimEvent],
    *,
    preferences: list[Preference] | None = None,
    rules: list[CommRule] | None = None,
    templates: list[TemplateVersion] | None = None,
) -> Dataset:
    return Dataset(
        templates=templates if templates is not None else [tpl("tpl-statement")],
        rules=rules if rules is not None else [STATEMENT],
        preferences=preferences if preferences is not None else [pref()],
        events=events,
    )


def only_command(expected: Expected) -> CompositionCommand:
    assert len(expected.commands) == 1, expected.commands
    return next(iter(expected.commands.values()))


def test_a_full_command_written_out() -> None:
    expected = expected_outcome(dataset([billing(1)]), source_topics=topic_of)
    com_id = communication_id("evt-1", "rule-statement")
    assert expected.commands == {
        com_id: CompositionCommand(
            communication_id=com_id,
            source_event_id="evt-1",
            source_topic=ACCOUNT_TOPIC,
            event_type="BILLING_CYCLE_CLOSED",
            rule_id="rule-statement",
            rule_version=4,
            customer_id="cust-1",
            account_id="acct-1",
            case_id=None,
            communication_type="BILLING_STATEMENT",
            template_id="tpl-statement",
            template_version=2,
            language="en",
            channel="PRINT",
            recipient=Recipient(postal_address=ADDRESS),
            data={
                "account_id": "acct-1",
                "amount_due": "120.50",
                "currency": "USD",
                "customer_id": "cust-1",
                "due_date": "2026-02-01",
                "event_type": "BILLING_CYCLE_CLOSED",
                "occurred_at": str(T0),
                "segment": "retail",
                "statement_period": "2026-01",
            },
            regulatory=False,
            disclaimer_id="disc",
            disclaimer_version=2,
            created_at=T0,
        )
    }
    assert expected.suppressed == expected.undeliverable == expected.alerts == set()


def test_an_opted_out_channel_is_never_used() -> None:
    # paperless, valid email without consent, web consented: WEB, never EMAIL or PRINT
    web = only_command(
        expected_outcome(
            dataset([billing(1)], preferences=[pref(paperless=True, web_consent=True)]),
            source_topics=topic_of,
        )
    )
    assert (web.channel, web.recipient) == ("WEB", Recipient())
    # the same customer without web consent: nothing consented, undeliverable
    none = expected_outcome(
        dataset([billing(1)], preferences=[pref(paperless=True)]), source_topics=topic_of
    )
    assert none.commands == {}
    assert none.undeliverable == {communication_id("evt-1", "rule-statement")}
    # email consented: EMAIL with only the address
    email = only_command(
        expected_outcome(
            dataset([billing(1)], preferences=[pref(paperless=True, email_consent=True)]),
            source_topics=topic_of,
        )
    )
    assert (email.channel, email.recipient) == ("EMAIL", Recipient(email="ann@example.com"))


def test_regulatory_documents_go_by_print() -> None:
    digital = pref(paperless=True, email_consent=True, web_consent=True, sms_consent=True)
    data = dataset(
        [billing(1)],
        preferences=[digital],
        rules=[STATEMENT, NOTICE],
        templates=[tpl("tpl-statement"), tpl("tpl-notice", channels=["PRINT"])],
    )
    expected = expected_outcome(data, source_topics=topic_of)
    got = {c.rule_id: (c.channel, c.regulatory) for c in expected.commands.values()}
    assert got == {"rule-notice": ("PRINT", True), "rule-statement": ("EMAIL", False)}
    # no valid postal address: the regulatory notice is undeliverable, not sent by email
    data = replace(data, preferences=[replace(digital, postal_address=None)])
    expected = expected_outcome(data, source_topics=topic_of)
    assert [c.rule_id for c in expected.commands.values()] == ["rule-statement"]
    assert expected.undeliverable == {communication_id("evt-1", "rule-notice")}


def test_a_duplicate_within_the_window_produces_one_command() -> None:
    events = [
        billing(1),
        billing(2, at=T0 + 6 * DAY),  # same statement period, inside 7 days: suppressed
        billing(3, at=T0 + 7 * DAY),  # 7 days after the first: a new communication
        billing(4, at=T0 + 8 * DAY, statement_period="2026-02"),  # another period: new
        billing(5, at=T0 + 8 * DAY, customer="cust-2"),  # another customer: new
    ]
    data = dataset(events, preferences=[pref(), pref(customer_id="cust-2")])
    expected = expected_outcome(data, source_topics=topic_of)
    assert sorted(c.source_event_id for c in expected.commands.values()) == [
        "evt-1",
        "evt-3",
        "evt-4",
        "evt-5",
    ]
    assert expected.suppressed == {communication_id("evt-2", "rule-statement")}


def test_two_rules_of_one_communication_type_give_one_command() -> None:
    extra = replace(STATEMENT, rule_id="rule-statement-b", priority=7, template_id="tpl-b")
    data = dataset(
        [billing(1)],
        rules=[STATEMENT, extra],
        templates=[tpl("tpl-statement"), tpl("tpl-b")],
    )
    expected = expected_outcome(data, source_topics=topic_of)
    assert [c.rule_id for c in expected.commands.values()] == ["rule-statement-b"]
    assert expected.suppressed == {communication_id("evt-1", "rule-statement")}


def test_language_fallback_highest_approved_version_and_alerts() -> None:
    templates = [
        tpl("tpl-statement", language="en", version=2),
        tpl("tpl-statement", language="en", version=3, status="DRAFT"),
        tpl("tpl-statement", language="fr", version=1),
    ]
    data = dataset([billing(1)], preferences=[pref(language="de-AT")], templates=templates)
    command = only_command(expected_outcome(data, source_topics=topic_of))
    assert (command.language, command.template_version) == ("en", 2)
    data = replace(data, preferences=[pref(language="FR_ca")])
    command = only_command(expected_outcome(data, source_topics=topic_of))
    assert (command.language, command.template_version) == ("fr", 1)
    # a template needing a field the event lacks, and a retired-only template: alerts
    for broken in (
        [tpl("tpl-statement", required_fields=["loyalty_tier"])],
        [tpl("tpl-statement", status="RETIRED")],
        [],
    ):
        expected = expected_outcome(replace(data, templates=broken), source_topics=topic_of)
        assert expected.commands == {}
        assert expected.alerts == {communication_id("evt-1", "rule-statement")}


def test_rule_selection_conditions_segments_and_effective_window() -> None:
    rules = [
        replace(STATEMENT, conditions=[Condition(field="amount_due", op="GT", value="99.9")]),
        replace(NOTICE, regulatory=False, template_id="tpl-statement", segments=["premium"]),
        replace(STATEMENT, rule_id="r-future", communication_type="F", effective_from=T0 + 1),
        replace(STATEMENT, rule_id="r-ended", communication_type="E", effective_to=T0),
        replace(STATEMENT, rule_id="r-off", communication_type="O", enabled=False),
        replace(
            STATEMENT,
            rule_id="r-in",
            communication_type="I",
            conditions=[
                Condition(field="currency", op="IN", values=["EUR", "USD"]),
                Condition(field="autopay", op="EXISTS", value="false"),
            ],
        ),
    ]
    expected = expected_outcome(dataset([billing(1)], rules=rules), source_topics=topic_of)
    assert sorted(c.rule_id for c in expected.commands.values()) == ["r-in", "rule-statement"]
    # "100" > "99.9" numerically, though not as strings; "99.90" is not > "99.9"
    low = expected_outcome(
        dataset([billing(1, amount_due="99.90")], rules=rules[:1]), source_topics=topic_of
    )
    assert low.commands == {}


def test_quiet_hours_block_mobile_channels_only() -> None:
    mobile = pref(
        paperless=True,
        sms_consent=True,
        quiet_hours=QuietHours(start_hour=22, end_hour=7, utc_offset_minutes=-300),
    )
    daytime = T0 + 5 * 3_600_000  # 17:00Z = 12:00 at UTC-5: not quiet
    assert (
        only_command(
            expected_outcome(
                dataset([billing(1, at=daytime)], preferences=[mobile]), source_topics=topic_of
            )
        ).channel
        == "SMS"
    )
    quiet = T0 + 15 * 3_600_000  # 03:00Z = 22:00 at UTC-5: quiet
    expected = expected_outcome(
        dataset([billing(1, at=quiet)], preferences=[mobile]), source_topics=topic_of
    )
    assert expected.commands == {}
    assert expected.undeliverable == {communication_id("evt-1", "rule-statement")}


def test_invalid_records_are_dead_lettered_or_counted() -> None:
    good = billing(1)
    unknown = replace(good.record, event_id="evt-u", event_type="LOYALTY_POINTS_EXPIRED")
    attrs = {k: v for k, v in ATTRS.items() if k != "currency"}
    missing = replace(good.record, event_id="evt-m", attributes=attrs)
    bad_date = replace(
        good.record, event_id="evt-d", attributes={**ATTRS, "due_date": "2026-02-30"}
    )
    wrong_kind = CaseEvent(
        event_id="evt-k",
        event_type="BILLING_CYCLE_CLOSED",  # an account type on the case topic
        customer_id="cust-1",
        case_id="case-1",
        case_type="CLAIM",
        occurred_at=T0,
        attributes=dict(ATTRS),
    )
    events = [
        good,
        SimEvent(record=unknown, invalid="unknown_event_type"),
        SimEvent(record=missing, invalid="missing_field"),
        SimEvent(record=bad_date),
        SimEvent(record=wrong_kind),
        SimEvent(record=replace(good.record, event_id="evt-g"), invalid="garbage"),
        SimEvent(record=replace(good.record, event_id="evt-t"), invalid="truncated"),
    ]
    expected = expected_outcome(dataset(events), source_topics=topic_of)
    assert list(expected.commands) == [communication_id("evt-1", "rule-statement")]
    assert expected.rejection_codes == {
        "evt-u": "UNKNOWN_EVENT_TYPE",
        "evt-m": "MISSING_FIELD",
        "evt-d": "INVALID_FIELD",
        "evt-k": "UNKNOWN_EVENT_TYPE",
    }
    assert expected.dead_lettered_event_ids == {"evt-u", "evt-m", "evt-d", "evt-k"}
    assert expected.byte_level_invalid == 2


def test_unknown_customer_is_undeliverable() -> None:
    expected = expected_outcome(dataset([billing(1, customer="cust-9")]), source_topics=topic_of)
    assert expected.commands == {}
    assert expected.undeliverable == {communication_id("evt-1", "rule-statement")}


def test_account_event_attribute_named_outcome_is_passed_through() -> None:
    """catalogue.py: ``outcome`` is a base field of case events only; on an account event an
    attribute of that name is an ordinary attribute and reaches the template data."""
    command = only_command(
        expected_outcome(dataset([billing(1, outcome="PAID")]), source_topics=topic_of)
    )
    assert command.data["outcome"] == "PAID"
    produced = run_production(dataset([billing(1, outcome="PAID")]))
    assert produced.commands == [command]


# --------------------------------------------------------------------------- known discrepancy

LATE_DUPLICATE = [
    billing(1),  # emitted; its entry expires at T0 + 7 days
    billing(2, at=T0 + 8 * DAY, statement_period="2026-02"),  # same customer, another key
    billing(3, at=T0 + 1),  # a late copy of evt-1, 1 ms after it: inside evt-1's window
]


def test_a_late_duplicate_inside_the_window_is_suppressed() -> None:
    """suppression.py: "an older event arriving late inside the window is a duplicate too"."""
    expected = expected_outcome(dataset(LATE_DUPLICATE), source_topics=topic_of)
    assert sorted(c.source_event_id for c in expected.commands.values()) == ["evt-1", "evt-2"]
    assert expected.suppressed == {communication_id("evt-3", "rule-statement")}


def test_worker_pruning_keeps_late_duplicates_suppressed() -> None:
    """The worker keeps expired entries for its grace period, so the late copy is suppressed."""
    produced = run_production(dataset(LATE_DUPLICATE))
    assert sorted(c.source_event_id for c in produced.commands) == ["evt-1", "evt-2"]


def test_a_late_duplicate_beyond_the_grace_is_judged_afresh() -> None:
    """Past the grace the entry is gone: the documented limit of the late-duplicate rule."""
    produced = run_production(dataset(LATE_DUPLICATE), grace_ms=0)
    assert sorted(c.source_event_id for c in produced.commands) == ["evt-1", "evt-2", "evt-3"]


# --------------------------------------------------------------------------- document requests

REQUEST_TOPIC = "t.air.document-requests.v1"


@pytest.mark.parametrize(("seed", "retired"), [(3, None), (20261124, "tpl-account-status")])
def test_request_reference_equals_production_decide_request(seed: int, retired: str | None) -> None:
    """The reference's requests equal ``decide_request`` applied as the worker applies it (a
    retry of an emitted communication emits nothing), on seeded requests and on hostile
    variants of them; with ``retired``, that template has no approved version left."""
    dataset = generate(
        Scenario(seed=seed, customers=80, events=1, document_requests=1_200, invalid_share=0.1)
    )
    if retired is not None:
        dataset = replace(
            dataset,
            templates=[
                replace(t, status="RETIRED") if t.template_id == retired else t
                for t in dataset.templates
            ],
        )
    requests = list(dataset.document_requests)
    rng_ = random.Random(seed)
    variants = [
        {"customer_id": "bad id"},
        {"language": ""},
        {"language": "pt-BR"},
        {"language": "not a language"},
        {"delivery": "download"},
        {"requested_at": -1},
        {"reference_id": " "},
        {"document_type": "invoice"},
        {"fields": {"Bad": "x"}},
        {"fields": {"due_date": "2026-02-30", "amount_due": "1", "statement_period": "2026-01"}},
        {"fields": {"customer_id": "someone-else"}},
        {"fields": {"policy_number": "other"}},
        {"fields": {f"f{i}": "v" for i in range(33)}},
        {"fields": {"amount_due": "x" * 300}},
    ]
    for i, sim in enumerate(rng_.sample(requests, 200)):
        change = variants[i % len(variants)]
        record = replace(sim.record, request_id=f"hostile-{i}", **change)  # type: ignore[arg-type]
        requests.append(replace(sim, record=record, invalid=None, retry=False))
    dataset = replace(dataset, events=[], document_requests=requests)
    expected = expected_outcome(dataset, source_topics=topic_of, request_topic=REQUEST_TOPIC)

    templates: dict[str, list[TemplateVersion]] = {}
    for t in dataset.templates:
        templates.setdefault(t.template_id, []).append(t)
    commands: dict[str, CompositionCommand] = {}
    rejected: dict[str, str] = {}
    retries = byte_level = 0
    for sim in dataset.document_requests:
        if sim.invalid in BYTE_KINDS:
            byte_level += 1
            continue
        decision = decide_request(sim.record, source_topic=REQUEST_TOPIC, templates_by_id=templates)
        if isinstance(decision, RequestRejection):
            rejected[sim.record.request_id] = decision.code.value
        elif decision.command.communication_id in commands:
            retries += 1
        else:
            commands[decision.command.communication_id] = decision.command
    assert rejected == expected.request_rejection_codes
    assert commands == expected.commands
    assert set(commands) == expected.request_commands
    assert retries == expected.request_retries > 10
    assert byte_level == expected.byte_level_invalid_requests > 0
    codes = {"MISSING_FIELD", "UNKNOWN_DOCUMENT_TYPE", "INVALID_FIELD"}
    types = {"POLICY_COPY", "INVOICE", "CONFIRMATION_LETTER", "ACCOUNT_SUMMARY"}
    if retired is not None:
        codes.add("TEMPLATE_UNAVAILABLE")
        types.remove("ACCOUNT_SUMMARY")
    assert set(rejected.values()) == codes
    assert len(commands) > 600
    assert {c.language for c in commands.values()} == {"en", "fr", "es"}
    assert {c.communication_type for c in commands.values()} == types
