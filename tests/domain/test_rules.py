from __future__ import annotations

import operator
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.records import CommRule
from streams.domain.rules import condition_holds, in_effect, matching_rules, rule_fires
from tests.domain.factories import T0, billing_event, claim_event, cond, rule

pytestmark = pytest.mark.unit

DATA = {
    "event_type": "BILLING_CYCLE_CLOSED",
    "segment": "GOLD",
    "amount_due": "120.50",
    "currency": "USD",
    "term_months": "12",
    "blank": "  ",
}


@pytest.mark.parametrize(
    ("field", "op", "value", "values", "holds"),
    [
        # EQ / NE: numeric when both sides are decimals, string otherwise
        ("amount_due", "EQ", "120.5", None, True),
        ("amount_due", "EQ", "120.500", None, True),
        ("amount_due", "EQ", "120", None, False),
        ("currency", "EQ", "USD", None, True),
        ("currency", "EQ", "usd", None, False),
        ("amount_due", "NE", "120.50", None, False),
        ("amount_due", "NE", "99", None, True),
        ("currency", "NE", "EUR", None, True),
        # ordering: numeric vs string
        ("term_months", "GT", "9", None, True),  # as strings "12" < "9"
        ("term_months", "LT", "9", None, False),
        ("term_months", "GTE", "12.0", None, True),
        ("term_months", "LTE", "12", None, True),
        ("term_months", "LT", "12", None, False),
        ("amount_due", "GT", "100", None, True),
        ("amount_due", "GT", "120.50", None, False),
        ("amount_due", "GTE", "120.50", None, True),
        ("amount_due", "LT", "1e3", None, True),
        ("currency", "GT", "EUR", None, True),  # string comparison
        ("currency", "LT", "EUR", None, False),
        ("currency", "LTE", "USD", None, True),
        ("amount_due", "GT", "abc", None, False),  # mixed: string comparison "1" < "a"
        # IN
        ("segment", "IN", None, ["GOLD", "SILVER"], True),
        ("segment", "IN", None, ["BRONZE"], False),
        ("segment", "IN", None, [], False),
        ("amount_due", "IN", None, ["120.5", "7"], True),
        # EXISTS
        ("segment", "EXISTS", None, None, True),
        ("outcome", "EXISTS", None, None, False),
        ("blank", "EXISTS", None, None, False),
        ("outcome", "EXISTS", "false", None, True),
        ("segment", "EXISTS", "FALSE", None, False),
        ("segment", "EXISTS", "true", None, True),
        # missing field: false for every op but EXISTS
        ("outcome", "EQ", "X", None, False),
        ("outcome", "NE", "X", None, False),
        ("outcome", "GT", "0", None, False),
        ("outcome", "GTE", "0", None, False),
        ("outcome", "LT", "0", None, False),
        ("outcome", "LTE", "0", None, False),
        ("outcome", "IN", None, ["X"], False),
        ("blank", "NE", "X", None, False),
        # malformed conditions never hold
        ("currency", "EQ", None, None, False),
        ("currency", "LIKE", "U%", None, False),
        ("currency", "eq", "USD", None, False),
    ],
)
def test_condition_table(
    field: str, op: str, value: str | None, values: list[str] | None, holds: bool
) -> None:
    assert condition_holds(cond(field, op, value, values), DATA) is holds


@pytest.mark.parametrize(
    ("effective_from", "effective_to", "at", "ok"),
    [
        (None, None, T0, True),
        (T0, None, T0, True),
        (T0 + 1, None, T0, False),
        (None, T0, T0, False),  # the end is exclusive
        (None, T0 + 1, T0, True),
        (T0 - 10, T0 + 10, T0, True),
        (T0 + 10, T0 - 10, T0, False),  # an inverted window is never in effect
    ],
)
def test_effective_window(
    effective_from: int | None, effective_to: int | None, at: int, ok: bool
) -> None:
    assert in_effect(rule(effective_from=effective_from, effective_to=effective_to), at) is ok


@pytest.mark.parametrize(
    ("rule_overrides", "event_overrides", "fires"),
    [
        ({}, {}, True),
        ({"event_type": "POLICY_RENEWED"}, {}, False),
        ({"enabled": False}, {}, False),
        ({"effective_from": T0 + 1}, {}, False),
        ({"effective_to": T0}, {}, False),
        ({"segments": ["RETAIL"]}, {}, True),
        ({"segments": ["GOLD", "RETAIL"]}, {}, True),
        ({"segments": ["GOLD"]}, {}, False),
        ({"segments": ["RETAIL"]}, {"segment": None}, False),
        ({"segments": []}, {"segment": None}, True),
        ({"conditions": [cond("amount_due", "GT", "100")]}, {}, True),
        (
            {"conditions": [cond("amount_due", "GT", "100"), cond("currency", "EQ", "EUR")]},
            {},
            False,
        ),
        ({"conditions": [cond("segment", "EQ", "RETAIL")]}, {}, True),
        ({"conditions": [cond("event_type", "EQ", "BILLING_CYCLE_CLOSED")]}, {}, True),
        ({"conditions": [cond("autopay", "EXISTS", "false")]}, {}, True),
        ({"conditions": [cond("autopay", "EQ", "true")]}, {}, False),
    ],
)
def test_rule_fires_table(
    rule_overrides: dict[str, object], event_overrides: dict[str, object], fires: bool
) -> None:
    assert rule_fires(rule(**rule_overrides), billing_event(**event_overrides)) is fires


def test_case_fields_are_available_to_conditions() -> None:
    claim_rule = rule(
        event_type="CLAIM_DECIDED",
        conditions=[cond("outcome", "EQ", "DENIED"), cond("case_type", "EQ", "CLAIM")],
    )
    assert rule_fires(claim_rule, claim_event(outcome="DENIED"))
    assert not rule_fires(claim_rule, claim_event(outcome="APPROVED"))


def test_order_is_priority_desc_then_rule_id() -> None:
    rules = [
        rule(rule_id="b", priority=1),
        rule(rule_id="a", priority=1),
        rule(rule_id="c", priority=5),
        rule(rule_id="z", priority=-1),
        rule(rule_id="off", priority=99, enabled=False),
    ]
    assert [r.rule_id for r in matching_rules(billing_event(), rules)] == ["c", "a", "b", "z"]


def test_only_the_highest_version_of_a_rule_counts() -> None:
    rules = [
        rule(rule_id="r", version=2, enabled=False),
        rule(rule_id="r", version=1),
    ]
    assert matching_rules(billing_event(), rules) == []
    rules.append(rule(rule_id="r", version=3, priority=7))
    assert [(r.rule_id, r.version) for r in matching_rules(billing_event(), rules)] == [("r", 3)]


rules_strategy = st.lists(
    st.builds(
        rule,
        rule_id=st.sampled_from(["a", "b", "c", "d"]),
        version=st.integers(1, 3),
        priority=st.integers(-2, 2),
        enabled=st.booleans(),
        segments=st.sampled_from([[], ["RETAIL"], ["GOLD"]]),
        communication_type=st.sampled_from(["STATEMENT", "NOTICE"]),
    ),
    max_size=8,
)


@given(rules_strategy, st.randoms())
def test_matching_does_not_depend_on_input_order(rules: list[CommRule], rnd: random.Random) -> None:
    shuffled = list(rules)
    rnd.shuffle(shuffled)
    assert matching_rules(billing_event(), rules) == matching_rules(billing_event(), shuffled)


@given(rules_strategy)
def test_matched_rules_all_fire_and_are_sorted(rules: list[CommRule]) -> None:
    matched = matching_rules(billing_event(), rules)
    assert all(rule_fires(r, billing_event()) for r in matched)
    keys = [(-r.priority, r.rule_id) for r in matched]
    assert keys == sorted(keys)
    assert len({r.rule_id for r in matched}) == len(matched)


@given(
    st.sampled_from(["EQ", "NE", "GT", "GTE", "LT", "LTE"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
)
def test_numeric_comparison_agrees_with_decimal(op: str, left: Decimal, right: Decimal) -> None:
    python_op = {
        "EQ": operator.eq,
        "NE": operator.ne,
        "GT": operator.gt,
        "GTE": operator.ge,
        "LT": operator.lt,
        "LTE": operator.le,
    }[op]
    holds = condition_holds(cond("x", op, str(right)), {"x": str(left)})
    assert holds is python_op(left, right)
