"""Which communication rules fire for an event.

A :class:`CommRule` fires for an event when **all** of these hold:

1. ``rule.event_type == event.event_type``;
2. ``rule.enabled``;
3. the event's ``occurred_at`` lies in the rule's effective window ``[effective_from,
   effective_to)`` (a missing bound is open; the window is judged on the *event's* time, never the
   wall clock, so a replay decides the same way);
4. ``rule.segments`` is empty (all segments), or the event has a segment and it is listed
   (an event without a segment matches only rules without segments);
5. every condition holds (no conditions: holds).

Conditions (:func:`condition_holds`) read one field of :func:`~streams.domain.catalogue.event_data`:
a base field (``event_type``, ``segment``, ``outcome``, ``case_type``, ...) or an attribute name.
A field is *present* when it has a non-blank value.

========  =================================================================================
op        holds when
========  =================================================================================
EQ        the field is present and equals ``value``
NE        the field is present and differs from ``value`` (a missing field is not "different")
GT, GTE,  the field is present and compares so with ``value``
LT, LTE
IN        the field is present and equals one of ``values`` (empty ``values``: never)
EXISTS    the field is present; with ``value`` ``"false"`` (any case): the field is absent
========  =================================================================================

Comparison: when both sides parse as finite decimals they compare as numbers (``"10"`` equals
``"10.00"``, ``"9" < "10"``); otherwise as strings, by code point. A condition on a missing field
is false (except ``EXISTS`` as above), and so is a comparison without a ``value`` or a condition
with an unknown operator: a malformed rule does not fire rather than fire for everyone.

Several versions of one rule id in the input: only the highest version counts. The result is
ordered by ``priority`` descending, then ``rule_id`` ascending, so it never depends on the order
the rules arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streams.domain.catalogue import event_data, parse_decimal
from streams.domain.records import BusinessEvent, CommRule, Condition, ConditionOp


def _compare(left: str, right: str) -> int:
    """-1, 0 or 1: numerically when both sides are decimals, else by string."""
    left_num, right_num = parse_decimal(left), parse_decimal(right)
    if left_num is not None and right_num is not None:
        return (left_num > right_num) - (left_num < right_num)
    return (left > right) - (left < right)


def _present(value: str | None) -> bool:
    return value is not None and bool(value.strip())


def condition_holds(condition: Condition, data: Mapping[str, str]) -> bool:
    """Whether ``condition`` holds on the event fields ``data`` (see the module docstring)."""
    actual = data.get(condition.field)
    op = condition.op
    if op == ConditionOp.EXISTS:
        wants_absent = condition.value is not None and condition.value.strip().lower() == "false"
        return _present(actual) != wants_absent
    if actual is None or not _present(actual):
        return False
    if op == ConditionOp.IN:
        return any(_compare(actual, candidate) == 0 for candidate in condition.values)
    if condition.value is None:
        return False
    order = _compare(actual, condition.value)
    if op == ConditionOp.EQ:
        return order == 0
    if op == ConditionOp.NE:
        return order != 0
    if op == ConditionOp.GT:
        return order > 0
    if op == ConditionOp.GTE:
        return order >= 0
    if op == ConditionOp.LT:
        return order < 0
    if op == ConditionOp.LTE:
        return order <= 0
    return False  # unknown operator: the rule cannot be evaluated, so it does not fire


def in_effect(rule: CommRule, at_ms: int) -> bool:
    """Whether ``at_ms`` lies in the rule's effective window ``[effective_from, effective_to)``."""
    if rule.effective_from is not None and at_ms < rule.effective_from:
        return False
    return rule.effective_to is None or at_ms < rule.effective_to


def rule_fires(rule: CommRule, event: BusinessEvent, data: Mapping[str, str] | None = None) -> bool:
    """Whether ``rule`` fires for ``event``. ``data`` is ``event_data(event)`` when precomputed."""
    if rule.event_type != event.event_type or not rule.enabled:
        return False
    if not in_effect(rule, event.occurred_at):
        return False
    if rule.segments and event.segment not in rule.segments:
        return False
    fields = event_data(event) if data is None else data
    return all(condition_holds(c, fields) for c in rule.conditions)


def latest_versions(rules: Iterable[CommRule]) -> list[CommRule]:
    """One rule per rule id, the highest version.

    Two different rules with the same id and version should not exist (the rules topic is compacted
    by rule id); if they do, the tie is broken on the rules' content so input order never matters.
    """
    latest: dict[str, CommRule] = {}
    for rule in rules:
        current = latest.get(rule.rule_id)
        if current is None or (rule.version, repr(rule)) > (current.version, repr(current)):
            latest[rule.rule_id] = rule
    return list(latest.values())


def matching_rules(event: BusinessEvent, rules: Iterable[CommRule]) -> list[CommRule]:
    """The rules that fire for ``event``, by priority descending, then rule id ascending."""
    data = event_data(event)
    fired = [r for r in latest_versions(rules) if rule_fires(r, event, data)]
    return sorted(fired, key=lambda r: (-r.priority, r.rule_id))
