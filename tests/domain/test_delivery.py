from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.delivery import (
    DEFAULT_SLA_MS,
    EXCEPTION_BOUNCED,
    EXCEPTION_NO_FALLBACK,
    EXCEPTION_SLA,
    MAX_SEEN_EVENT_IDS,
    STATE_VERSION,
    SUBMITTED,
    TERMINAL,
    CommunicationState,
    IgnoredReason,
    Transition,
    dumps,
    fallback_communication_id,
    loads,
    on_delivery_event,
    on_sla_check,
    path_of,
    rank,
    start,
)
from streams.domain.ids import communication_id
from streams.domain.records import (
    AuditKind,
    CompositionCommand,
    DeliveryEvent,
    Preference,
    Recipient,
)
from streams.domain.records import DeliveryStatus as S
from tests.domain.factories import DAY, T0, address, preference

pytestmark = pytest.mark.unit

HOUR = 3_600_000
SLA = {"PRINT": 5 * DAY, "EMAIL": HOUR, "WEB": HOUR, "SMS": 600_000, "PUSH": 600_000}
SUBMITTED_AT = T0 + 1_000

EMAIL = "pat.example@example.org"
PHONE = "+442071234567"
ADDRESS = address(line1="221B Baker Street", city="London", postal_code="NW1 6XE", country="GB")
NAME = "Pat Example"
PERSONAL = (EMAIL, PHONE, "Baker Street", "London", "NW1 6XE", NAME)

PATHS: dict[str, tuple[S, ...]] = {
    "PRINT": (S.ACCEPTED, S.COMPOSED, S.PRINTED, S.MAILED),
    "EMAIL": (S.ACCEPTED, S.COMPOSED, S.EMAIL_SENT, S.EMAIL_DELIVERED, S.EMAIL_OPENED),
    "WEB": (S.ACCEPTED, S.COMPOSED, S.WEB_POSTED),
    "SMS": (S.ACCEPTED, S.COMPOSED, S.SMS_DELIVERED),
    "PUSH": (S.ACCEPTED, S.COMPOSED, S.PUSH_DELIVERED),
}
CONFIRMATION = {
    "PRINT": S.MAILED,
    "EMAIL": S.EMAIL_DELIVERED,
    "WEB": S.WEB_POSTED,
    "SMS": S.SMS_DELIVERED,
    "PUSH": S.PUSH_DELIVERED,
}
BOUNCE_PATH = (S.ACCEPTED, S.COMPOSED, S.EMAIL_SENT, S.EMAIL_BOUNCED)
FAILURE_PATH = (S.ACCEPTED, S.COMPOSED, S.FAILED)


def recipient(channel: str) -> Recipient:
    if channel == "EMAIL":
        return Recipient(name=NAME, email=EMAIL)
    if channel == "SMS":
        return Recipient(name=NAME, phone=PHONE)
    if channel == "PRINT":
        return Recipient(name=NAME, postal_address=ADDRESS)
    return Recipient(name=NAME)


def command(channel: str = "EMAIL", **overrides: Any) -> CompositionCommand:
    values: dict[str, Any] = {
        "communication_id": communication_id("evt-1", "r-statement"),
        "source_event_id": "evt-1",
        "source_topic": "air.account-events.v1",
        "event_type": "BILLING_CYCLE_CLOSED",
        "rule_id": "r-statement",
        "rule_version": 3,
        "customer_id": "cust-1",
        "account_id": "acc-1",
        "communication_type": "STATEMENT",
        "template_id": "tpl-statement",
        "template_version": 2,
        "language": "en",
        "channel": channel,
        "recipient": recipient(channel),
        "data": {"amount_due": "120.50", "due_date": "2023-12-01"},
        "disclaimer_id": "disc-1",
        "disclaimer_version": 1,
        "created_at": T0,
    }
    values.update(overrides)
    return CompositionCommand(**values)


def fresh(channel: str = "EMAIL", **overrides: Any) -> CommunicationState:
    return start(command(channel, **overrides), submitted_at=SUBMITTED_AT, sla_ms=SLA)


def event(
    status: str, *, channel: str = "EMAIL", at: int | None = None, **overrides: Any
) -> DeliveryEvent:
    values: dict[str, Any] = {
        "event_id": f"dev-{status}",
        "communication_id": communication_id("evt-1", "r-statement"),
        "customer_id": "cust-1",
        "job_id": "job-1",
        "document_id": None if status == S.ACCEPTED else "doc-1",
        "channel": channel,
        "status": status,
        "occurred_at": at if at is not None else T0 + 10_000 * (rank(status) + 1),
    }
    if status == S.EMAIL_BOUNCED:
        values["bounce_type"] = "HARD"
    if status == S.FAILED:
        values["exception_code"] = "DISPATCH_FAILED"
        values["exception_text"] = f"mailbox {EMAIL} at {ADDRESS.line1} rejected"
    values.update(overrides)
    return DeliveryEvent(**values)


def pref(**overrides: Any) -> Preference:
    values: dict[str, Any] = {"email": EMAIL, "phone": PHONE, "postal_address": ADDRESS}
    values.update(overrides)
    return preference(**values)


def run(
    state: CommunicationState,
    events: Sequence[DeliveryEvent],
    *,
    preference_: Preference | None = None,
) -> tuple[CommunicationState, list[Transition]]:
    transitions = []
    for ev in events:
        transition = on_delivery_event(state, ev, preference=preference_)
        transitions.append(transition)
        if transition.state is not None:
            state = transition.state
    return state, transitions


def flat_statuses(transitions: Sequence[Transition]) -> list[tuple[str, str | None]]:
    return [(s.status, s.previous_status) for t in transitions for s in t.statuses]


def business(state: CommunicationState) -> CommunicationState:
    """The state without its arrival history."""
    return dataclasses.replace(state, seen_event_ids=())


def assert_no_personal_data(transitions: Sequence[Transition]) -> None:
    for transition in transitions:
        for record in transition.audit:
            text = " ".join([record.summary, *record.details.keys(), *record.details.values()])
            for secret in PERSONAL:
                assert secret not in text, (secret, record)


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_happy_path_emits_one_status_and_audit_per_step(channel: str) -> None:
    path = PATHS[channel]
    final, transitions = run(fresh(channel), [event(s, channel=channel) for s in path])

    assert all(t.ignored_reason is None for t in transitions)
    previous = [SUBMITTED, *path[:-1]]
    assert flat_statuses(transitions) == list(zip(path, previous, strict=True))
    for transition, status in zip(transitions, path, strict=True):
        kinds = [a.kind for a in transition.audit]
        expected = [AuditKind.STATUS_CHANGED]
        if status == S.COMPOSED:
            expected.append(AuditKind.DOCUMENT_PRODUCED)
        assert kinds == expected
        assert transition.statuses[0].updated_at == event(status).occurred_at
        assert transition.fallback_commands == ()

    assert final.status == path[-1]
    assert final.document_id == "doc-1"
    assert final.produced_at == event(S.COMPOSED).occurred_at
    assert final.delivered_at == event(CONFIRMATION[channel]).occurred_at
    assert final.updated_at == event(path[-1]).occurred_at
    assert final.seen_event_ids == tuple(f"dev-{s}" for s in path)
    assert_no_personal_data(transitions)


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_metadata_on_production_then_on_delivery(channel: str) -> None:
    path = PATHS[channel]
    _, transitions = run(fresh(channel), [event(s, channel=channel) for s in path])
    by_status = dict(zip(path, transitions, strict=True))

    (produced,) = by_status[S.COMPOSED].metadata
    (delivered,) = by_status[CONFIRMATION[channel]].metadata
    assert produced.document_id == delivered.document_id == "doc-1"
    assert produced.produced_at == delivered.produced_at == event(S.COMPOSED).occurred_at
    assert produced.delivered_at is None
    assert delivered.delivered_at == event(CONFIRMATION[channel]).occurred_at
    assert produced.origin == "STREAM"
    assert (produced.template_id, produced.template_version) == ("tpl-statement", 2)
    assert (produced.communication_type, produced.channel, produced.language) == (
        "STATEMENT",
        channel,
        "en",
    )
    assert (produced.customer_id, produced.account_id) == ("cust-1", "acc-1")
    others = [t for s, t in by_status.items() if s not in (S.COMPOSED, CONFIRMATION[channel])]
    assert all(t.metadata == () for t in others)


def test_status_record_carries_the_command_context() -> None:
    state = fresh("PRINT", case_id="case-9")
    (status,) = on_delivery_event(
        state, event(S.ACCEPTED, channel="PRINT"), preference=None
    ).statuses
    assert status.communication_id == state.command.communication_id
    assert (status.customer_id, status.case_id, status.source_event_id) == (
        "cust-1",
        "case-9",
        "evt-1",
    )
    assert (status.channel, status.status, status.previous_status) == (
        "PRINT",
        "ACCEPTED",
        SUBMITTED,
    )
    assert status.fallback_of is None
    assert status.exception_code is None


def test_start() -> None:
    state = fresh("PRINT")
    assert state.status == SUBMITTED
    assert state.sla_deadline == SUBMITTED_AT + 5 * DAY
    assert state.updated_at == SUBMITTED_AT
    assert (state.document_id, state.produced_at, state.delivered_at) == (None, None, None)
    assert state.seen_event_ids == ()
    assert state.fallback_id is None
    assert not state.sla_breached


def test_start_uses_default_sla_for_a_channel_missing_from_the_mapping() -> None:
    state = start(command("SMS"), submitted_at=SUBMITTED_AT, sla_ms={"PRINT": 1})
    assert state.sla_deadline == SUBMITTED_AT + DEFAULT_SLA_MS["SMS"]
    odd = start(command("FAX"), submitted_at=SUBMITTED_AT, sla_ms={})
    assert odd.sla_deadline == SUBMITTED_AT + max(DEFAULT_SLA_MS.values())


# --------------------------------------------------------------------------- ignored events


def test_unknown_communication_is_ignored() -> None:
    transition = on_delivery_event(None, event(S.ACCEPTED), preference=pref())
    assert transition == Transition(state=None, ignored_reason=IgnoredReason.UNKNOWN_COMMUNICATION)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"communication_id": "com-other"}, IgnoredReason.COMMUNICATION_MISMATCH),
        ({"customer_id": "cust-2"}, IgnoredReason.COMMUNICATION_MISMATCH),
        ({"channel": "PRINT"}, IgnoredReason.CHANNEL_MISMATCH),
        ({"status": "MAILED"}, IgnoredReason.NOT_ON_CHANNEL_PATH),
        ({"status": "LOST_IN_SPACE"}, IgnoredReason.NOT_ON_CHANNEL_PATH),
    ],
)
def test_events_that_do_not_belong_are_ignored(overrides: dict[str, Any], reason: str) -> None:
    ev = dataclasses.replace(event(S.ACCEPTED), **overrides)
    transition = on_delivery_event(fresh(), ev, preference=pref())
    assert transition == Transition(state=None, ignored_reason=reason)


def test_bounce_is_not_on_the_path_of_other_channels() -> None:
    assert S.EMAIL_BOUNCED in path_of("EMAIL")
    for channel in ("PRINT", "WEB", "SMS", "PUSH"):
        assert S.EMAIL_BOUNCED not in path_of(channel)
        assert S.FAILED in path_of(channel)


def test_duplicate_event_id_is_ignored() -> None:
    state, _ = run(fresh(), [event(S.ACCEPTED), event(S.COMPOSED)])
    again = on_delivery_event(state, event(S.COMPOSED), preference=pref())
    assert again == Transition(state=None, ignored_reason=IgnoredReason.DUPLICATE_EVENT)
    # an older event id is remembered too
    older = on_delivery_event(state, event(S.ACCEPTED), preference=pref())
    assert older.ignored_reason == IgnoredReason.DUPLICATE_EVENT


def test_same_status_with_a_new_event_id_is_ignored() -> None:
    state, _ = run(fresh(), [event(S.ACCEPTED), event(S.COMPOSED)])
    again = on_delivery_event(state, event(S.COMPOSED, event_id="dev-other"), preference=pref())
    assert again == Transition(state=None, ignored_reason=IgnoredReason.ALREADY_REACHED)


def test_skip_ahead_moves_forward_and_the_late_event_is_stale() -> None:
    state, (composed, mailed) = run(
        fresh("PRINT"), [event(S.COMPOSED, channel="PRINT"), event(S.MAILED, channel="PRINT")]
    )
    assert flat_statuses([composed, mailed]) == [
        (S.COMPOSED, SUBMITTED),
        (S.MAILED, S.COMPOSED),
    ]
    late = on_delivery_event(state, event(S.PRINTED, channel="PRINT"), preference=None)
    assert late == Transition(state=None, ignored_reason=IgnoredReason.STALE)
    late_accept = on_delivery_event(state, event(S.ACCEPTED, channel="PRINT"), preference=None)
    assert late_accept.ignored_reason == IgnoredReason.STALE


def test_terminal_status_never_changes() -> None:
    state, _ = run(fresh("PRINT"), [event(S.FAILED, channel="PRINT")])
    assert state.status == S.FAILED
    for status in (S.ACCEPTED, S.PRINTED, S.MAILED):
        transition = on_delivery_event(state, event(status, channel="PRINT"), preference=None)
        assert transition.state is None
        assert transition.ignored_reason == IgnoredReason.TERMINAL
        assert transition.metadata == ()
    other_failure = on_delivery_event(
        state, event(S.FAILED, channel="PRINT", event_id="dev-f2"), preference=None
    )
    assert other_failure.ignored_reason == IgnoredReason.ALREADY_REACHED


def test_failed_carries_exception_but_audit_keeps_only_the_code() -> None:
    state, _ = run(fresh("PRINT"), [event(S.ACCEPTED, channel="PRINT")])
    transition = on_delivery_event(state, event(S.FAILED, channel="PRINT"), preference=pref())
    (status,) = transition.statuses
    assert (status.status, status.previous_status) == (S.FAILED, S.ACCEPTED)
    assert status.exception_code == "DISPATCH_FAILED"
    assert status.exception_text is not None
    (audit,) = transition.audit
    assert audit.details["exception_code"] == "DISPATCH_FAILED"
    assert transition.fallback_commands == ()
    assert_no_personal_data([transition])


def test_bounce_after_delivery_report_is_accepted() -> None:
    state, _ = run(fresh(), [event(s) for s in PATHS["EMAIL"][:4]])
    transition = on_delivery_event(state, event(S.EMAIL_BOUNCED), preference=pref())
    assert transition.state is not None
    assert transition.state.status == S.EMAIL_BOUNCED
    assert len(transition.fallback_commands) == 1


def test_seen_event_ids_are_bounded() -> None:
    state = dataclasses.replace(
        fresh(), seen_event_ids=tuple(f"old-{i}" for i in range(MAX_SEEN_EVENT_IDS))
    )
    transition = on_delivery_event(state, event(S.ACCEPTED), preference=None)
    assert transition.state is not None
    seen = transition.state.seen_event_ids
    assert len(seen) == MAX_SEEN_EVENT_IDS
    assert seen[-1] == "dev-ACCEPTED"
    assert "old-0" not in seen


# --------------------------------------------------------------------------- out of order


def all_paths() -> list[tuple[str, tuple[S, ...]]]:
    return [
        *sorted(PATHS.items()),
        ("EMAIL", BOUNCE_PATH),
        ("PRINT", FAILURE_PATH),
        ("EMAIL", FAILURE_PATH),
        ("SMS", FAILURE_PATH),
    ]


@pytest.mark.parametrize(("channel", "path"), all_paths())
def test_every_order_ends_in_the_same_state(channel: str, path: tuple[S, ...]) -> None:
    events = [event(s, channel=channel) for s in path]
    expected, in_order = run(fresh(channel), events, preference_=pref())
    expected_metadata = [m for t in in_order for m in t.metadata][-1]

    for order in itertools.permutations(events):
        final, transitions = run(fresh(channel), order, preference_=pref())
        assert business(final) == business(expected), [e.status for e in order]
        statuses = [
            s.status
            for t in transitions
            for s in t.statuses
            if s.communication_id == final.command.communication_id
        ]
        assert max(Counter(statuses).values()) == 1
        assert statuses[-1] == path[-1]
        metadata = [m for t in transitions for m in t.metadata]
        assert metadata[-1] == expected_metadata
        assert sum(len(t.fallback_commands) for t in transitions) == (
            1 if S.EMAIL_BOUNCED in path else 0
        )
        produced = [
            a for t in transitions for a in t.audit if a.kind == AuditKind.DOCUMENT_PRODUCED
        ]
        assert len(produced) == 1


def test_late_composed_after_delivery_records_production_without_a_status() -> None:
    state, (mailed,) = run(fresh("PRINT"), [event(S.MAILED, channel="PRINT")])
    (provisional,) = mailed.metadata
    assert provisional.produced_at == provisional.delivered_at == event(S.MAILED).occurred_at
    assert state.produced_at is None

    late = on_delivery_event(state, event(S.COMPOSED, channel="PRINT"), preference=None)
    assert late.ignored_reason is None
    assert late.statuses == ()
    assert [a.kind for a in late.audit] == [AuditKind.DOCUMENT_PRODUCED]
    (corrected,) = late.metadata
    assert corrected.produced_at == event(S.COMPOSED).occurred_at
    assert corrected.delivered_at == event(S.MAILED).occurred_at
    assert late.state is not None
    assert late.state.status == S.MAILED
    assert late.state.updated_at == state.updated_at


def test_late_delivery_after_opened_records_delivered_at() -> None:
    state, _ = run(fresh(), [event(S.COMPOSED), event(S.EMAIL_OPENED)])
    late = on_delivery_event(state, event(S.EMAIL_DELIVERED), preference=None)
    assert late.statuses == ()
    assert late.audit == ()
    (metadata,) = late.metadata
    assert metadata.delivered_at == event(S.EMAIL_DELIVERED).occurred_at
    assert late.state is not None
    assert late.state.status == S.EMAIL_OPENED
    assert late.state.delivered_at == event(S.EMAIL_DELIVERED).occurred_at


def test_late_delivery_after_a_failure_is_ignored() -> None:
    state, _ = run(fresh(), [event(S.EMAIL_BOUNCED)], preference_=pref())
    late = on_delivery_event(state, event(S.EMAIL_DELIVERED), preference=pref())
    assert late == Transition(state=None, ignored_reason=IgnoredReason.TERMINAL)


def test_no_metadata_without_a_document_id() -> None:
    state, (composed,) = run(fresh(), [event(S.COMPOSED, document_id=None)])
    assert composed.metadata == ()
    assert [a.kind for a in composed.audit] == [
        AuditKind.STATUS_CHANGED,
        AuditKind.DOCUMENT_PRODUCED,
    ]
    delivered = on_delivery_event(state, event(S.EMAIL_DELIVERED), preference=None)
    (metadata,) = delivered.metadata
    assert metadata.document_id == "doc-1"
    assert metadata.produced_at == event(S.COMPOSED).occurred_at


# --------------------------------------------------------------------------- fallback


def bounce(
    state: CommunicationState | None = None, *, preference_: Preference | None, **kw: Any
) -> Transition:
    if state is None:
        state, _ = run(fresh(), [event(s) for s in BOUNCE_PATH[:-1]])
    return on_delivery_event(state, event(S.EMAIL_BOUNCED, **kw), preference=preference_)


@pytest.mark.parametrize("bounce_type", ["HARD", "SOFT"])
def test_bounce_falls_back_to_print(bounce_type: str) -> None:
    transition = bounce(preference_=pref(), bounce_type=bounce_type)
    original = command()
    (fallback,) = transition.fallback_commands
    expected_id = fallback_communication_id(original.communication_id, "PRINT")
    assert fallback == dataclasses.replace(
        original,
        communication_id=expected_id,
        channel="PRINT",
        recipient=Recipient(postal_address=ADDRESS),
        created_at=event(S.EMAIL_BOUNCED).occurred_at,
    )
    assert fallback.communication_id != original.communication_id

    assert transition.state is not None
    assert transition.state.status == S.EMAIL_BOUNCED
    assert transition.state.fallback_id == expected_id

    bounced, submitted = transition.statuses
    assert (bounced.status, bounced.previous_status) == (S.EMAIL_BOUNCED, S.EMAIL_SENT)
    assert bounced.exception_code == EXCEPTION_BOUNCED
    assert bounced.exception_text is not None
    assert bounce_type in bounced.exception_text
    assert (submitted.communication_id, submitted.status) == (expected_id, SUBMITTED)
    assert submitted.previous_status is None
    assert submitted.fallback_of == original.communication_id
    assert submitted.channel == "PRINT"

    changed, emitted = transition.audit
    assert changed.kind == AuditKind.STATUS_CHANGED
    assert changed.details["fallback_communication_id"] == expected_id
    assert changed.details["bounce_type"] == bounce_type
    assert emitted.kind == AuditKind.COMMAND_EMITTED
    assert emitted.communication_id == expected_id
    assert emitted.details["fallback_of"] == original.communication_id
    assert transition.metadata == ()
    assert_no_personal_data([transition])


def test_fallback_is_deterministic() -> None:
    assert bounce(preference_=pref()) == bounce(preference_=pref())


@pytest.mark.parametrize(
    "pref_overrides",
    [
        {"postal_address": None, "web_consent": False},
        {"postal_address": address(postal_code="???"), "web_consent": False},
        {"paperless": True, "web_consent": False},
    ],
    ids=["no-address", "invalid-address", "paperless"],
)
def test_bounce_without_fallback_is_an_exception(pref_overrides: dict[str, Any]) -> None:
    transition = bounce(preference_=pref(**pref_overrides))
    assert transition.fallback_commands == ()
    (status,) = transition.statuses
    assert status.status == S.EMAIL_BOUNCED
    assert status.exception_code == EXCEPTION_NO_FALLBACK
    assert transition.state is not None
    assert transition.state.fallback_id is None
    (audit,) = transition.audit
    assert audit.details["exception_code"] == EXCEPTION_NO_FALLBACK


def test_bounce_without_preference_has_no_fallback() -> None:
    transition = bounce(preference_=None)
    assert transition.fallback_commands == ()
    assert transition.statuses[0].exception_code == EXCEPTION_NO_FALLBACK


def test_paperless_with_web_consent_falls_back_to_the_portal() -> None:
    transition = bounce(preference_=pref(paperless=True, web_consent=True))
    (fallback,) = transition.fallback_commands
    assert fallback.channel == "WEB"
    assert fallback.recipient == Recipient()


def test_no_address_with_web_consent_falls_back_to_the_portal() -> None:
    transition = bounce(preference_=pref(postal_address=None, web_consent=True))
    (fallback,) = transition.fallback_commands
    assert fallback.channel == "WEB"


def test_regulatory_goes_on_paper_even_for_paperless() -> None:
    state = fresh(regulatory=True)
    transition = bounce(state, preference_=pref(paperless=True, web_consent=True))
    (fallback,) = transition.fallback_commands
    assert fallback.channel == "PRINT"
    assert fallback.regulatory


def test_template_channels_restrict_the_fallback() -> None:
    state, _ = run(fresh(), [event(S.EMAIL_SENT)])
    transition = on_delivery_event(
        state,
        event(S.EMAIL_BOUNCED),
        preference=pref(web_consent=False),
        template_channels=["EMAIL", "WEB"],
    )
    assert transition.fallback_commands == ()
    assert transition.statuses[0].exception_code == EXCEPTION_NO_FALLBACK


def test_fallback_command_starts_its_own_lifecycle() -> None:
    (fallback,) = bounce(preference_=pref()).fallback_commands
    state = start(fallback, submitted_at=T0 + HOUR, sla_ms=SLA)
    final, transitions = run(
        state,
        [
            event(s, channel="PRINT", communication_id=fallback.communication_id, event_id=f"f-{s}")
            for s in PATHS["PRINT"]
        ],
    )
    assert final.status == S.MAILED
    assert all(t.ignored_reason is None for t in transitions)


# --------------------------------------------------------------------------- SLA


def test_sla_breach_is_reported_once() -> None:
    state, _ = run(fresh(), [event(S.ACCEPTED), event(S.COMPOSED)])
    assert (
        on_sla_check(state, now_ms=state.sla_deadline).ignored_reason == IgnoredReason.SLA_NOT_DUE
    )

    breach = on_sla_check(state, now_ms=state.sla_deadline + 1)
    (status,) = breach.statuses
    assert (status.status, status.previous_status) == (S.COMPOSED, S.COMPOSED)
    assert status.exception_code == EXCEPTION_SLA
    assert status.updated_at == state.sla_deadline + 1
    (audit,) = breach.audit
    assert audit.details["exception_code"] == EXCEPTION_SLA
    assert breach.state is not None
    assert breach.state.sla_breached
    assert breach.state.status == S.COMPOSED

    again = on_sla_check(breach.state, now_ms=state.sla_deadline + DAY)
    assert again == Transition(state=None, ignored_reason=IgnoredReason.SLA_ALREADY_BREACHED)


def test_sla_breach_before_any_event() -> None:
    state = fresh("PRINT")
    breach = on_sla_check(state, now_ms=SUBMITTED_AT + 5 * DAY + 1)
    assert breach.statuses[0].status == SUBMITTED


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_no_sla_breach_once_delivered(channel: str) -> None:
    path = PATHS[channel]
    confirmed = path[: path.index(CONFIRMATION[channel]) + 1]
    state, _ = run(fresh(channel), [event(s, channel=channel) for s in confirmed])
    transition = on_sla_check(state, now_ms=state.sla_deadline + DAY)
    assert transition == Transition(state=None, ignored_reason=IgnoredReason.DELIVERED)


def test_opened_implies_delivered_for_the_sla() -> None:
    state, _ = run(fresh(), [event(S.EMAIL_OPENED)])
    assert state.delivered_at is None
    assert on_sla_check(state, now_ms=state.sla_deadline + 1).ignored_reason == (
        IgnoredReason.DELIVERED
    )


@pytest.mark.parametrize("status", [S.FAILED, S.EMAIL_BOUNCED])
def test_no_sla_breach_after_a_terminal_status(status: S) -> None:
    state, _ = run(fresh(), [event(status)], preference_=pref())
    transition = on_sla_check(state, now_ms=state.sla_deadline + 1)
    assert transition.ignored_reason == IgnoredReason.TERMINAL


def test_events_still_apply_after_a_breach() -> None:
    breach = on_sla_check(fresh(), now_ms=SUBMITTED_AT + 2 * HOUR)
    assert breach.state is not None
    final, _ = run(breach.state, [event(S.EMAIL_DELIVERED, at=SUBMITTED_AT + 3 * HOUR)])
    assert final.status == S.EMAIL_DELIVERED
    assert final.sla_breached
    assert on_sla_check(final, now_ms=SUBMITTED_AT + DAY).ignored_reason == (
        IgnoredReason.SLA_ALREADY_BREACHED
    )


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_dumps_loads_round_trip(channel: str) -> None:
    state = fresh(channel)
    assert loads(dumps(state)) == state
    final, _ = run(state, [event(s, channel=channel) for s in PATHS[channel]])
    assert loads(dumps(final)) == final
    assert dumps(loads(dumps(final))) == dumps(final)


def _asdict_bytes(state: CommunicationState) -> bytes:
    """The encoding as it was first written (``dataclasses.asdict``): the bytes must not change."""
    return orjson.dumps(
        {"v": STATE_VERSION, **dataclasses.asdict(state)}, option=orjson.OPT_SORT_KEYS
    )


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_dumps_writes_the_bytes_asdict_wrote(channel: str) -> None:
    state = fresh(channel)
    final, _ = run(state, [event(s, channel=channel) for s in PATHS[channel]])
    breached = dataclasses.replace(final, sla_breached=True, fallback_id="com-x")
    for s in (state, final, breached):
        assert dumps(s) == _asdict_bytes(s)
    transition = bounce(preference_=pref())
    assert transition.state is not None
    (fallback,) = transition.fallback_commands
    fallback_state = start(fallback, submitted_at=T0, sla_ms=SLA)
    for s in (transition.state, fallback_state):
        assert dumps(s) == _asdict_bytes(s)


def test_round_trip_after_fallback_and_breach() -> None:
    transition = bounce(preference_=pref())
    assert transition.state is not None
    breached = dataclasses.replace(transition.state, sla_breached=True)
    assert loads(dumps(breached)) == breached
    (fallback,) = transition.fallback_commands
    fallback_state = start(fallback, submitted_at=T0, sla_ms=SLA)
    restored = loads(dumps(fallback_state))
    assert restored == fallback_state
    assert restored.command.recipient.postal_address == ADDRESS


@pytest.mark.parametrize(
    "data", [b"", b"[]", b"{}", b'{"v": 2}', b'{"v": 1, "command": {}}', b"not json"]
)
def test_loads_rejects_other_bytes(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a communication state"):
        loads(data)


# --------------------------------------------------------------------------- properties

CHANNEL_STATUSES = {channel: sorted(path_of(channel)) for channel in PATHS}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, list[DeliveryEvent], Preference | None]:
    channel = draw(st.sampled_from(sorted(PATHS)))
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CHANNEL_STATUSES[channel]),
                st.integers(0, 3),  # a small id space gives duplicate ids and repeated statuses
                st.integers(0, 10 * DAY),
                st.sampled_from(["HARD", "SOFT"]),
            ),
            max_size=14,
        )
    )
    events = [
        event(
            status,
            channel=channel,
            event_id=f"dev-{status}-{n}",
            at=T0 + at,
            bounce_type=bounce_type if status == S.EMAIL_BOUNCED else None,
            exception_text=f"to {EMAIL} / {PHONE} / {ADDRESS.line1}, {ADDRESS.city}",
        )
        for status, n, at, bounce_type in steps
    ]
    preference_ = draw(
        st.one_of(
            st.none(),
            st.builds(
                pref,
                paperless=st.booleans(),
                web_consent=st.booleans(),
                postal_address=st.sampled_from([ADDRESS, None]),
            ),
        )
    )
    return channel, events, preference_


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_random_sequences_never_move_backwards(
    scenario: tuple[str, list[DeliveryEvent], Preference | None],
) -> None:
    channel, events, preference_ = scenario
    state = fresh(channel)
    emitted: Counter[str] = Counter()
    transitions = []
    for ev in events:
        transition = on_delivery_event(state, ev, preference=preference_)
        transitions.append(transition)
        # replaying the same event on the same state gives the same transition
        assert on_delivery_event(state, ev, preference=preference_) == transition
        if transition.state is None:
            assert transition.ignored_reason is not None
            assert transition == Transition(state=None, ignored_reason=transition.ignored_reason)
            continue
        new = transition.state
        assert rank(new.status) >= rank(state.status)
        if state.status in TERMINAL:
            assert new.status == state.status
        assert (new.produced_at is None) <= (state.produced_at is None)
        assert (new.delivered_at is None) <= (state.delivered_at is None)
        assert new.fallback_id == state.fallback_id or state.fallback_id is None
        own = [
            s for s in transition.statuses if s.communication_id == state.command.communication_id
        ]
        assert len(own) == (1 if new.status != state.status else 0)
        emitted.update(s.status for s in own)
        assert loads(dumps(new)) == new
        state = new
    assert all(count == 1 for count in emitted.values())
    assert sum(len(t.fallback_commands) for t in transitions) <= 1
    assert_no_personal_data(transitions)
    breach = on_sla_check(state, now_ms=state.sla_deadline + 1)
    assert_no_personal_data([breach])
