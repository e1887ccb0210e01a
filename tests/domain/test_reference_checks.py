"""Reference records the domain cannot use are recognised, with reasons a person can act on."""

from __future__ import annotations

import dataclasses

import pytest

from streams.domain.records import Condition, QuietHours
from streams.domain.reference_checks import (
    preference_problems,
    rule_problems,
    template_problems,
)
from streams.simulator.generator import Scenario, generate

pytestmark = pytest.mark.unit

DATA = generate(Scenario(seed=3, customers=200, events=0))


def test_every_generated_reference_record_is_usable() -> None:
    assert [p for p in DATA.preferences if preference_problems(p)] == []
    assert [r for r in DATA.rules if rule_problems(r)] == []
    assert [t for t in DATA.templates if template_problems(t)] == []


def test_a_preference_with_impossible_hours_and_no_language_is_refused() -> None:
    bad = dataclasses.replace(
        DATA.preferences[0],
        language="",
        quiet_hours=QuietHours(start_hour=99, end_hour=-5, utc_offset_minutes=2_000),
        updated_at=-1,
    )
    problems = preference_problems(bad)
    assert problems == [
        "language '' is not a language code such as 'en' or 'fr-CA'",
        "quiet_hours.start_hour 99 is not an hour of the day (0..24)",
        "quiet_hours.end_hour -5 is not an hour of the day (0..24)",
        "quiet_hours.utc_offset_minutes 2000 is beyond +-14 h",
        "updated_at -1 is before 1970",
    ]


def test_a_rule_for_an_unknown_event_with_a_bogus_operator_is_refused() -> None:
    bad = dataclasses.replace(
        DATA.rules[0],
        version=-1,
        event_type="NOT_AN_EVENT",
        conditions=[
            Condition(field="amount_due", op="BOGUS", value="1"),
            Condition(field="segment", op="IN"),
        ],
        template_id=" ",
        suppression_window_ms=-1,
        effective_from=10,
        effective_to=5,
    )
    problems = rule_problems(bad)
    assert "version -1 is negative" in problems
    assert "event_type 'NOT_AN_EVENT' is not in the event catalogue" in problems
    assert any(p.startswith("conditions[0].op 'BOGUS' is not one of EQ") for p in problems)
    assert "conditions[1] (IN) lists no values" in problems
    assert "template_id is empty" in problems
    assert "suppression_window_ms -1 is negative" in problems
    assert "effective_from is after effective_to" in problems
    assert len(problems) == 7


def test_a_template_with_an_unknown_status_and_channel_is_refused() -> None:
    bad = dataclasses.replace(
        DATA.templates[0], version=-2, language="", status="BOGUS", channels=["FAX", "EMAIL"]
    )
    assert template_problems(bad) == [
        "version -2 is negative",
        "language '' is not a language code such as 'en' or 'fr-CA'",
        "status 'BOGUS' is not one of APPROVED, DRAFT, RETIRED",
        "channels ['FAX'] are not among EMAIL, PRINT, PUSH, SMS, WEB",
    ]


@pytest.mark.parametrize("language", ["en", "fr", "fr-CA", "pt_BR", "zh-Hant"])
def test_language_codes_with_regions_and_scripts_are_accepted(language: str) -> None:
    assert preference_problems(dataclasses.replace(DATA.preferences[0], language=language)) == []
