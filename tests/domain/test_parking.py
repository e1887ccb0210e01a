"""The bound on parked delivery events (:mod:`streams.domain.parking`): the pure decision."""

from __future__ import annotations

import pytest

from streams.domain import delivery
from streams.domain.parking import (
    MAX_PARKED_PER_COMMUNICATION,
    ParkDecision,
    decide_parking,
    parked_limit_reason,
)


def _ids(n: int) -> list[str | None]:
    return [f"dev-{i}" for i in range(n)]


@pytest.mark.unit
def test_first_event_of_an_unknown_communication_is_parked() -> None:
    assert decide_parking([], "dev-0") is ParkDecision.PARK


@pytest.mark.unit
def test_events_are_parked_up_to_the_limit_and_refused_beyond() -> None:
    assert decide_parking(_ids(MAX_PARKED_PER_COMMUNICATION - 1), "dev-new") is ParkDecision.PARK
    assert decide_parking(_ids(MAX_PARKED_PER_COMMUNICATION), "dev-new") is ParkDecision.LIMIT
    assert decide_parking(_ids(MAX_PARKED_PER_COMMUNICATION + 3), "dev-new") is ParkDecision.LIMIT


@pytest.mark.unit
def test_the_limit_can_be_given() -> None:
    assert decide_parking(_ids(2), "dev-new", limit=3) is ParkDecision.PARK
    assert decide_parking(_ids(3), "dev-new", limit=3) is ParkDecision.LIMIT


@pytest.mark.unit
def test_an_event_id_already_parked_is_a_duplicate_even_when_the_parking_is_full() -> None:
    assert decide_parking(["dev-0", "dev-1"], "dev-1") is ParkDecision.DUPLICATE
    full = _ids(MAX_PARKED_PER_COMMUNICATION)
    assert decide_parking(full, "dev-0") is ParkDecision.DUPLICATE
    assert decide_parking(full, f"dev-{MAX_PARKED_PER_COMMUNICATION - 1}") is ParkDecision.DUPLICATE


@pytest.mark.unit
def test_an_undecodable_entry_counts_toward_the_limit_but_matches_no_event() -> None:
    assert decide_parking([None], "") is ParkDecision.PARK
    assert decide_parking([None] * 3, "dev-0", limit=3) is ParkDecision.LIMIT
    assert decide_parking([None, None, "dev-0"], "dev-0", limit=3) is ParkDecision.DUPLICATE


@pytest.mark.unit
def test_a_flood_keeps_the_limit_and_refuses_only_new_events() -> None:
    """The agent's loop on the decision: what is parked never exceeds the limit, the first
    events are the ones kept, and repeats of kept events are never refused."""
    parked: list[str | None] = []
    refused: list[str] = []
    duplicates: list[str] = []
    flood = [f"dev-{i}" for i in range(100)]
    arrivals = [*flood[:10], "dev-3", *flood[10:], "dev-0", "dev-99", "dev-31"]
    for event_id in arrivals:
        decision = decide_parking(parked, event_id)
        if decision is ParkDecision.PARK:
            parked.append(event_id)
        elif decision is ParkDecision.LIMIT:
            refused.append(event_id)
        else:
            duplicates.append(event_id)
    assert parked == flood[:MAX_PARKED_PER_COMMUNICATION]
    assert refused == [*flood[MAX_PARKED_PER_COMMUNICATION:], "dev-99"]
    assert duplicates == ["dev-3", "dev-0", "dev-31"]


@pytest.mark.unit
def test_the_limit_leaves_room_for_real_communications_and_their_duplicates() -> None:
    """Documented reasoning: several times the longest channel path plus a terminal status, and
    no more than the ids the state machine remembers for duplicate detection."""
    longest = max(len(path) for path in delivery.PATHS.values()) + 1
    assert 4 * longest <= MAX_PARKED_PER_COMMUNICATION
    assert MAX_PARKED_PER_COMMUNICATION <= delivery.MAX_SEEN_EVENT_IDS


@pytest.mark.unit
def test_the_refusal_reason_names_ids_and_the_limit() -> None:
    reason = parked_limit_reason("com-abc", "dev-7", MAX_PARKED_PER_COMMUNICATION)
    assert "'com-abc'" in reason
    assert "'dev-7'" in reason
    assert f"at most {MAX_PARKED_PER_COMMUNICATION}" in reason
    assert "replay" in reason
