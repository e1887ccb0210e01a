from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.ids import communication_id
from streams.domain.records import BusinessEvent
from streams.domain.suppression import (
    SuppressionEntry,
    decide,
    expired_keys,
    prune,
    suppression_key,
)
from tests.domain.factories import DAY, T0, billing_event, claim_event

pytestmark = pytest.mark.unit

WINDOW = DAY


def entry(event_id: str = "evt-1", at: int = T0, window: int = WINDOW) -> SuppressionEntry:
    return SuppressionEntry(
        communication_id=communication_id(event_id, "r-1"),
        source_event_id=event_id,
        emitted_at=at,
        expires_at=at + window,
    )


def run(
    current: SuppressionEntry | None, event_id: str, at: int, window: int = WINDOW
) -> tuple[bool, SuppressionEntry | None]:
    decision = decide(
        current,
        communication_id=communication_id(event_id, "r-1"),
        source_event_id=event_id,
        occurred_at=at,
        window_ms=window,
    )
    return decision.emit, decision.entry


def test_key_identifies_the_same_business_fact() -> None:
    first = billing_event(event_id="evt-1")
    again = billing_event(event_id="evt-2", occurred_at=T0 + 1000)
    assert suppression_key(first, "STATEMENT") == suppression_key(again, "STATEMENT")


@pytest.mark.parametrize(
    "other",
    [
        billing_event(customer_id="cust-2"),
        billing_event(account_id="acc-2"),
        billing_event(attributes={**billing_event().attributes, "statement_period": "2023-12"}),
        billing_event(
            event_type="POLICY_RENEWED",
            attributes={"policy_number": "P", "renewal_date": "2024-01-01"},
        ),
    ],
)
def test_key_differs_for_a_different_fact(other: BusinessEvent) -> None:
    assert suppression_key(billing_event(), "STATEMENT") != suppression_key(other, "STATEMENT")


def test_key_differs_by_communication_type_and_ignores_unkeyed_attributes() -> None:
    event = billing_event()
    assert suppression_key(event, "STATEMENT") != suppression_key(event, "REMINDER")
    changed_amount = billing_event(attributes={**event.attributes, "amount_due": "1.00"})
    assert suppression_key(event, "STATEMENT") == suppression_key(changed_amount, "STATEMENT")


def test_case_keys_use_case_id_and_natural_key() -> None:
    approved = claim_event()
    assert suppression_key(approved, "DECISION") == suppression_key(
        claim_event(event_id="evt-other"), "DECISION"
    )
    assert suppression_key(approved, "DECISION") != suppression_key(
        claim_event(outcome="DENIED"), "DECISION"
    )
    assert suppression_key(approved, "DECISION") != suppression_key(
        claim_event(case_id="case-2"), "DECISION"
    )


@pytest.mark.parametrize(
    ("current", "event_id", "at", "window", "emit", "stores"),
    [
        (None, "evt-2", T0, WINDOW, True, "new"),
        # another event for the same fact inside the window: suppressed, state unchanged
        (entry(), "evt-2", T0 + 1, WINDOW, False, None),
        (entry(), "evt-2", T0 + WINDOW - 1, WINDOW, False, None),
        # late arrival of an older duplicate inside the window: suppressed too
        (entry(), "evt-2", T0 - WINDOW + 1, WINDOW, False, None),
        # at or beyond the window: emitted
        (entry(), "evt-2", T0 + WINDOW, WINDOW, True, "new"),
        # emitted, but older than the entry: the newer entry stays
        (entry(), "evt-2", T0 - WINDOW, WINDOW, True, None),
        # a replay of the emitted event: emitted again (same id), nothing to store
        (entry(), "evt-1", T0, WINDOW, True, None),
        (entry(), "evt-1", T0 + 5, WINDOW, True, None),
        # window 0 or negative: no suppression
        (entry(), "evt-2", T0 + 1, 0, True, "new"),
        (entry(), "evt-2", T0 + 1, -5, True, "new"),
    ],
)
def test_decision_table(
    current: SuppressionEntry | None,
    event_id: str,
    at: int,
    window: int,
    emit: bool,
    stores: str | None,
) -> None:
    emitted, new_entry = run(current, event_id, at, window)
    assert emitted is emit
    if stores is None:
        assert new_entry is None
    else:
        assert new_entry == SuppressionEntry(
            communication_id=communication_id(event_id, "r-1"),
            source_event_id=event_id,
            emitted_at=at,
            expires_at=at + max(window, 0),
        )


def test_suppressed_decision_explains_without_personal_data() -> None:
    decision = decide(
        entry(),
        communication_id="com-x",
        source_event_id="evt-2",
        occurred_at=T0 + 60_000,
        window_ms=WINDOW,
    )
    assert not decision.emit
    assert decision.previous == entry()
    assert decision.reason is not None
    assert "60000 ms" in decision.reason


def test_prune_and_expired_keys() -> None:
    state = {"a": entry(at=T0), "b": entry(at=T0 + 10 * DAY)}
    assert prune(state, T0 + WINDOW) == {"b": state["b"]}
    assert expired_keys(state, T0 + WINDOW) == ["a"]
    assert prune(state, T0 + WINDOW - 1) == state
    assert expired_keys(state, 0) == []


@given(
    st.lists(
        st.tuples(st.sampled_from(["e1", "e2", "e3", "e4"]), st.integers(0, 5 * DAY)),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 2 * DAY),
)
def test_replays_repeat_their_decision_and_emissions_are_spaced(
    events: list[tuple[str, int]], window: int
) -> None:
    # each distinct event id has one time (a replay is the same event)
    times: dict[str, int] = {}
    for event_id, at in events:
        times.setdefault(event_id, at)
    current: SuppressionEntry | None = None
    decisions: dict[str, bool] = {}
    for event_id, _ in events:
        at = times[event_id]
        emit, new_entry = run(current, event_id, at, window)
        if decisions.get(event_id):
            assert emit, "a replay of an emitted event must be emitted again (same id)"
        if emit and current is not None and current.source_event_id != event_id and window > 0:
            assert abs(at - current.emitted_at) >= window
        decisions.setdefault(event_id, emit)
        if new_entry is not None:
            current = new_entry
