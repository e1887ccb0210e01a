from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.channel import UndeliverableCode
from streams.domain.ids import communication_id
from streams.domain.records import (
    BusinessEvent,
    CommRule,
    Preference,
    Recipient,
    TemplateVersion,
)
from streams.domain.routing import RoutingOutcome, route_event
from streams.domain.suppression import SuppressionEntry, suppression_key
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


def route(
    event: BusinessEvent | None = None,
    *,
    pref: Preference | None = None,
    rules: Sequence[CommRule] | None = None,
    templates: Sequence[TemplateVersion] | None = None,
    state: Mapping[str, SuppressionEntry] | None = None,
    now_ms: int | None = None,
    **pref_overrides: Any,
) -> RoutingOutcome:
    by_id: dict[str, list[TemplateVersion]] = {}
    for version in [template()] if templates is None else templates:
        by_id.setdefault(version.template_id, []).append(version)
    return route_event(
        billing_event() if event is None else event,
        source_topic=TOPIC,
        preference=preference(**pref_overrides) if pref is None else pref,
        rules=[rule()] if rules is None else rules,
        templates_by_id=by_id,
        suppression_state=state or {},
        now_ms=now_ms,
    )


def test_print_command_is_fully_populated() -> None:
    outcome = route()
    assert outcome.rejection is None
    (command,) = outcome.commands
    event = billing_event()
    assert command.communication_id == communication_id("evt-1", "r-statement")
    assert command.source_event_id == "evt-1"
    assert command.source_topic == TOPIC
    assert command.event_type == "BILLING_CYCLE_CLOSED"
    assert (command.rule_id, command.rule_version) == ("r-statement", 1)
    assert command.customer_id == "cust-1"
    assert command.account_id == "acc-1"
    assert command.case_id is None
    assert command.communication_type == "STATEMENT"
    assert (command.template_id, command.template_version, command.language) == (
        "tpl-statement",
        1,
        "en",
    )
    assert command.channel == "PRINT"
    assert command.recipient == Recipient(postal_address=address())
    assert command.data == {
        **event.attributes,
        "event_type": "BILLING_CYCLE_CLOSED",
        "customer_id": "cust-1",
        "account_id": "acc-1",
        "segment": "RETAIL",
        "occurred_at": str(T0),
    }
    assert command.regulatory is False
    assert (command.disclaimer_id, command.disclaimer_version) == ("disc-1", 1)
    assert command.created_at == T0

    (audit,) = outcome.audit
    assert audit.kind == "COMMAND_EMITTED"
    assert audit.communication_id == command.communication_id
    assert audit.source_event_id == "evt-1"
    assert audit.customer_id == "cust-1"
    assert audit.occurred_at == T0
    assert audit.audit_id.startswith("aud-")
    assert audit.details["channel"] == "PRINT"
    assert audit.details["template_version"] == "1"

    key = suppression_key(event, "STATEMENT")
    assert outcome.suppression_updates == {
        key: SuppressionEntry(
            communication_id=command.communication_id,
            source_event_id="evt-1",
            emitted_at=T0,
            expires_at=T0 + DAY,
        )
    }
    assert outcome.suppressed == ()
    assert outcome.undeliverable == ()
    assert outcome.alerts == ()


@pytest.mark.parametrize(
    ("overrides", "channel", "recipient"),
    [
        ({"paperless": True}, "EMAIL", Recipient(email="pat@example.com")),
        ({"paperless": True, "email_consent": False}, "WEB", Recipient()),
        (
            {"paperless": True, "email_consent": False, "web_consent": False},
            "PUSH",
            Recipient(),
        ),
        (
            {
                "paperless": True,
                "email_consent": False,
                "web_consent": False,
                "push_consent": False,
            },
            "SMS",
            Recipient(phone="+15551234567"),
        ),
        ({}, "PRINT", Recipient(postal_address=address())),
    ],
)
def test_recipient_holds_only_the_chosen_channels_contact(
    overrides: dict[str, Any], channel: str, recipient: Recipient
) -> None:
    (command,) = route(**overrides).commands
    assert command.channel == channel
    assert command.recipient == recipient


def test_regulatory_rule_prints_for_paperless_customer() -> None:
    (command,) = route(rules=[rule(regulatory=True)], paperless=True).commands
    assert command.channel == "PRINT"
    assert command.regulatory is True


def test_case_event_command_and_audit_carry_the_case() -> None:
    rules = [rule(rule_id="r-claim", event_type="CLAIM_DECIDED", template_id="tpl-claim")]
    templates = [template(template_id="tpl-claim", required_fields=["claim_number", "outcome"])]
    outcome = route(claim_event(), rules=rules, templates=templates)
    (command,) = outcome.commands
    assert command.case_id == "case-1"
    assert command.account_id is None
    assert command.data["outcome"] == "APPROVED"
    assert outcome.audit[0].case_id == "case-1"


def test_invalid_event_yields_only_a_rejection() -> None:
    outcome = route(billing_event(attributes={}))
    assert outcome.rejection is not None
    assert outcome.rejection.code == "MISSING_FIELD"
    assert outcome.commands == ()
    assert outcome.audit == ()
    assert outcome.alerts == ()
    assert outcome.suppression_updates == {}
    unknown = route(billing_event(event_type="NOT_A_TYPE"))
    assert unknown.rejection is not None
    assert unknown.rejection.code == "UNKNOWN_EVENT_TYPE"


def test_no_matching_rule_yields_nothing() -> None:
    outcome = route(rules=[rule(conditions=[cond("amount_due", "GT", "1000")])])
    assert outcome == RoutingOutcome(source_event_id="evt-1")


@pytest.mark.parametrize(
    ("templates", "kind"),
    [
        ([], "MISSING_TEMPLATE"),
        ([template(status="RETIRED")], "RETIRED_TEMPLATE"),
        ([template(status="DRAFT")], "RETIRED_TEMPLATE"),
        ([template(language="de")], "MISSING_TEMPLATE"),
        ([template(required_fields=["amount_due", "minimum_due"])], "MISSING_FIELDS"),
        ([template(required_fields=["policy_number"])], "MISSING_FIELDS"),
    ],
)
def test_alignment_problem_raises_an_alert_instead_of_a_command(
    templates: list[TemplateVersion], kind: str
) -> None:
    outcome = route(templates=templates, language="fr")
    assert outcome.commands == ()
    (alert,) = outcome.alerts
    assert alert.kind == kind
    assert alert.rule_id == "r-statement"
    assert alert.raised_at == T0
    (audit,) = outcome.audit
    assert audit.kind == "ALIGNMENT_ALERT"
    assert audit.details["alert_id"] == alert.alert_id
    assert audit.communication_id == communication_id("evt-1", "r-statement")
    assert outcome.suppression_updates == {}


def test_language_falls_back_to_english() -> None:
    (command,) = route(
        templates=[template(language="en"), template(language="de")], language="fr"
    ).commands
    assert command.language == "en"
    (german,) = route(
        templates=[template(language="en"), template(language="de")], language="de"
    ).commands
    assert german.language == "de"


def test_template_channels_restrict_the_choice() -> None:
    (command,) = route(templates=[template(channels=["EMAIL"])]).commands
    assert command.channel == "EMAIL"


def test_duplicate_within_window_is_suppressed() -> None:
    first = route()
    second = route(
        billing_event(event_id="evt-2", occurred_at=T0 + 3_600_000),
        state=first.suppression_updates,
    )
    assert second.commands == ()
    (suppressed,) = second.suppressed
    assert suppressed.previous_communication_id == first.commands[0].communication_id
    assert suppressed.communication_id == communication_id("evt-2", "r-statement")
    (audit,) = second.audit
    assert audit.kind == "SUPPRESSED"
    assert audit.details["cause"] == "DUPLICATE"
    assert second.suppression_updates == {}


def test_next_statement_period_is_not_suppressed() -> None:
    first = route()
    attributes = {**billing_event().attributes, "statement_period": "2023-12"}
    second = route(
        billing_event(event_id="evt-2", attributes=attributes), state=first.suppression_updates
    )
    assert len(second.commands) == 1


def test_replay_is_emitted_again_with_the_same_id() -> None:
    first = route()
    replay = route(state=first.suppression_updates)
    assert replay.commands == first.commands
    assert replay.audit == first.audit
    assert replay.suppressed == ()


def test_two_rules_of_one_communication_type_make_one_command() -> None:
    rules = [rule(rule_id="r-low", priority=1), rule(rule_id="r-high", priority=5)]
    outcome = route(rules=rules)
    assert [c.rule_id for c in outcome.commands] == ["r-high"]
    assert [s.rule_id for s in outcome.suppressed] == ["r-low"]
    assert [a.kind for a in outcome.audit] == ["COMMAND_EMITTED", "SUPPRESSED"]


def test_late_old_event_still_makes_one_command_per_communication_type() -> None:
    newer = SuppressionEntry(
        communication_id="com-newer",
        source_event_id="e-new",
        emitted_at=T0 + 5 * DAY,
        expires_at=T0 + 6 * DAY,
    )
    key = suppression_key(billing_event(), "STATEMENT")
    rules = [rule(rule_id="r-low", priority=1), rule(rule_id="r-high", priority=5)]
    outcome = route(rules=rules, state={key: newer})
    assert [c.rule_id for c in outcome.commands] == ["r-high"]
    assert [s.rule_id for s in outcome.suppressed] == ["r-low"]
    assert outcome.suppression_updates == {}  # the newer entry stays


def test_undeliverable_rule_stays_undeliverable_on_replay() -> None:
    rules = [
        rule(rule_id="r1", communication_type="REMINDER"),
        rule(rule_id="r2", communication_type="REMINDER", regulatory=True),
    ]
    no_digital: dict[str, Any] = {"paperless": True, "email_consent": False, "web_consent": False}
    no_mobile: dict[str, Any] = {"push_consent": False, "sms_consent": False}
    first = route(rules=rules, **no_digital, **no_mobile)
    assert [u.rule_id for u in first.undeliverable] == ["r1"]
    assert [c.rule_id for c in first.commands] == ["r2"]
    replay = route(rules=rules, state=first.suppression_updates, **no_digital, **no_mobile)
    assert replay.undeliverable == first.undeliverable
    assert replay.commands == first.commands
    assert replay.audit == first.audit


def test_rules_of_different_communication_types_each_make_a_command_in_priority_order() -> None:
    rules = [
        rule(rule_id="r-reminder", communication_type="REMINDER", priority=1),
        rule(rule_id="r-statement", priority=5),
    ]
    outcome = route(rules=rules)
    assert [c.rule_id for c in outcome.commands] == ["r-statement", "r-reminder"]
    assert len(outcome.suppression_updates) == 2


@pytest.mark.parametrize(
    ("pref_overrides", "rule_overrides", "code"),
    [
        ({"postal_address": None}, {"regulatory": True}, UndeliverableCode.NO_POSTAL_ADDRESS),
        (
            {
                "paperless": True,
                "email_consent": False,
                "web_consent": False,
                "push_consent": False,
                "sms_consent": False,
            },
            {},
            UndeliverableCode.NO_CONSENTED_CHANNEL,
        ),
        (
            {
                "paperless": True,
                "email_consent": False,
                "web_consent": False,
                "push_consent": False,
                "quiet_hours": quiet(22, 7),
            },
            {},
            UndeliverableCode.QUIET_HOURS,
        ),
    ],
)
def test_undeliverable_is_recorded_and_audited(
    pref_overrides: dict[str, Any], rule_overrides: dict[str, Any], code: UndeliverableCode
) -> None:
    outcome = route(rules=[rule(**rule_overrides)], **pref_overrides)
    assert outcome.commands == ()
    (undeliverable,) = outcome.undeliverable
    assert undeliverable.code is code
    (audit,) = outcome.audit
    assert audit.kind == "SUPPRESSED"
    assert audit.details["cause"] == "UNDELIVERABLE"
    assert audit.details["code"] == code.value
    assert outcome.suppression_updates == {}


def test_missing_preference_is_undeliverable() -> None:
    outcome = route_event(
        billing_event(),
        source_topic=TOPIC,
        preference=None,
        rules=[rule()],
        templates_by_id={"tpl-statement": [template()]},
        suppression_state={},
    )
    assert [u.code for u in outcome.undeliverable] == [UndeliverableCode.NO_PREFERENCE]


def test_expired_keys_are_listed_only_with_now() -> None:
    old = SuppressionEntry(
        communication_id="com-old", source_event_id="e0", emitted_at=0, expires_at=1
    )
    assert route(state={"stale": old}).expired_keys == ()
    assert route(state={"stale": old}, now_ms=T0).expired_keys == ("stale",)


# ------------------------------------------------------------------ properties

SECRETS = ("pat@example.com", "+15551234567", "1 Main Street", "Springfield", "12345")

preferences = st.one_of(
    st.none(),
    st.builds(
        preference,
        language=st.sampled_from(["en", "fr"]),
        paperless=st.booleans(),
        email_consent=st.booleans(),
        sms_consent=st.booleans(),
        push_consent=st.booleans(),
        web_consent=st.booleans(),
        push_registered=st.booleans(),
        email=st.sampled_from([None, "pat@example.com", "broken"]),
        phone=st.sampled_from([None, "+15551234567"]),
        postal_address=st.sampled_from([None, address()]),
        quiet_hours=st.sampled_from([None, quiet(22, 7), quiet(9, 17)]),
    ),
)
rule_lists = st.lists(
    st.builds(
        rule,
        rule_id=st.sampled_from(["r1", "r2", "r3"]),
        communication_type=st.sampled_from(["STATEMENT", "REMINDER"]),
        template_id=st.sampled_from(["t1", "t2"]),
        priority=st.integers(0, 2),
        regulatory=st.booleans(),
        segments=st.sampled_from([[], ["RETAIL"]]),
    ),
    max_size=4,
)
template_lists = st.lists(
    st.builds(
        template,
        template_id=st.sampled_from(["t1", "t2"]),
        version=st.integers(1, 3),
        language=st.sampled_from(["en", "fr"]),
        status=st.sampled_from(["APPROVED", "DRAFT", "RETIRED"]),
        channels=st.sampled_from([[], ["PRINT"], ["EMAIL", "WEB"]]),
        required_fields=st.sampled_from([[], ["amount_due"], ["minimum_due"]]),
    ),
    max_size=6,
    # the templates topic is compacted by template id / version / language
    unique_by=lambda v: (v.template_id, v.version, v.language),
)
events = st.builds(
    billing_event,
    event_id=st.sampled_from(["e1", "e2"]),
    occurred_at=st.integers(T0 - DAY, T0 + DAY),
)


def run(
    event: BusinessEvent,
    pref: Preference | None,
    rules: list[CommRule],
    templates: list[TemplateVersion],
    state: Mapping[str, SuppressionEntry],
) -> RoutingOutcome:
    by_id: dict[str, list[TemplateVersion]] = {}
    for version in templates:
        by_id.setdefault(version.template_id, []).append(version)
    return route_event(
        event,
        source_topic=TOPIC,
        preference=pref,
        rules=rules,
        templates_by_id=by_id,
        suppression_state=state,
    )


@settings(max_examples=150)
@given(events, events, preferences, rule_lists, template_lists)
def test_routing_properties(
    first: BusinessEvent,
    second: BusinessEvent,
    pref: Preference | None,
    rules: list[CommRule],
    templates: list[TemplateVersion],
) -> None:
    outcome = run(first, pref, rules, templates, {})
    # deterministic: the same inputs (even rebuilt, in another order) give the same outcome
    again = run(
        dataclasses.replace(first), pref, list(reversed(rules)), list(reversed(templates)), {}
    )
    assert again == outcome

    # every decision is accounted for exactly once and audited once
    decided = (
        [c.communication_id for c in outcome.commands]
        + [s.communication_id for s in outcome.suppressed]
        + [u.communication_id for u in outcome.undeliverable]
    )
    assert len(outcome.audit) == len(decided) + len(outcome.alerts)
    assert len(set(decided)) == len(decided)
    assert len({a.audit_id for a in outcome.audit}) == len(outcome.audit)

    by_key = {(v.template_id, v.version, v.language): v for v in templates}
    for command in outcome.commands:
        used = by_key[(command.template_id, command.template_version, command.language)]
        assert used.status == "APPROVED"  # never a draft or retired version
        assert not used.channels or command.channel in used.channels
        assert pref is not None
        consent = {
            "EMAIL": pref.email_consent,
            "SMS": pref.sms_consent,
            "PUSH": pref.push_consent,
            "WEB": pref.web_consent,
            "PRINT": True,
        }
        assert consent[command.channel]
        if command.regulatory:
            assert command.channel == "PRINT"
        elif pref.paperless:
            assert command.channel != "PRINT"
        assert command.created_at == first.occurred_at
        contacts = [
            command.recipient.email,
            command.recipient.phone,
            command.recipient.postal_address,
        ]
        assert sum(c is not None for c in contacts) == (
            command.channel in ("EMAIL", "SMS", "PRINT")
        )

    # no personal data in the audit trail
    for record in outcome.audit:
        text = record.summary + " " + " ".join(f"{k}={v}" for k, v in record.details.items())
        for secret in SECRETS:
            assert secret not in text

    # feeding the state forward: the same event again changes nothing (replay)
    replay = run(first, pref, rules, templates, outcome.suppression_updates)
    assert replay.commands == outcome.commands
    assert replay.suppressed == outcome.suppressed
    assert replay.audit == outcome.audit

    # a distinct event never produces a command for a communication already emitted in the window
    later = run(second, pref, rules, templates, outcome.suppression_updates)
    if second.event_id != first.event_id:
        for command in later.commands:
            key = suppression_key(second, command.communication_type)
            previous = outcome.suppression_updates.get(key)
            rule_window = DAY
            assert previous is None or abs(second.occurred_at - previous.emitted_at) >= rule_window
