"""A quick test that an event is valid, for the routing hot path.

:func:`~streams.domain.catalogue.validate_event` builds every rejection a person can read, and
so does work per event (sets, sorting, messages) that a valid event never needs.
:func:`surely_valid` runs the same checks from tables prepared once per event type and answers
only yes or "ask :func:`validate_event`": it returns True only when ``validate_event`` returns
None (same checks, same order of concerns), and False otherwise, after which the caller asks
``validate_event`` for the exact rejection. ``tests/domain/test_routing_equivalence.py`` checks
the agreement on generated events, valid and invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.catalogue import (
    ATTRIBUTE_KINDS,
    CATALOGUE,
    FieldKind,
    value_has_kind,
)
from streams.domain.records import AccountEvent, BusinessEvent, CaseEvent

SHAPE_MEMO_LIMIT = 10_000
"""Attribute values whose shape check is remembered, per kind, at most (dates, periods and
currency codes recur across events; the memo is emptied when full)."""


class _ShapeMemo(dict[str, bool]):
    """``value -> value_has_kind(value, kind)`` for one kind, computed on a miss."""

    __slots__ = ("kind",)

    def __init__(self, kind: FieldKind) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, value: str) -> bool:
        if len(self) >= SHAPE_MEMO_LIMIT:
            self.clear()
        ok = self[value] = value_has_kind(value, self.kind)
        return ok


_MEMOS: dict[FieldKind, _ShapeMemo] = {
    kind: _ShapeMemo(kind) for kind in FieldKind if kind is not FieldKind.TEXT
}


@dataclass(frozen=True, slots=True)
class _Plan:
    required: tuple[str, ...]
    typed: tuple[tuple[str, _ShapeMemo], ...]
    """Catalogued attributes whose values must have a shape (text attributes need no check)."""
    outcome_required: bool
    case_types: frozenset[str]


def _plans(is_case: bool) -> Mapping[str, _Plan]:
    return {
        event_type: _Plan(
            required=tuple(sorted(spec.required)),
            typed=tuple(
                (name, _MEMOS[ATTRIBUTE_KINDS[name]])
                for name in sorted(spec.required | spec.optional)
                if ATTRIBUTE_KINDS.get(name, FieldKind.TEXT) is not FieldKind.TEXT
            ),
            outcome_required=spec.outcome_required,
            case_types=spec.case_types,
        )
        for event_type, spec in CATALOGUE.items()
        if spec.is_case == is_case
    }


_ACCOUNT_PLANS = _plans(is_case=False)
_CASE_PLANS = _plans(is_case=True)


def _filled(value: str | None) -> bool:
    """Not blank: ``not value.strip()`` is ``not value or value.isspace()``, without a copy."""
    return value is not None and bool(value) and not value.isspace()


def surely_valid(event: BusinessEvent) -> bool:
    """True only if ``validate_event(event)`` is None; False means "ask it" (see above)."""
    if type(event) is AccountEvent:
        plan = _ACCOUNT_PLANS.get(event.event_type)
        if plan is None or not _filled(event.account_id):
            return False
    elif type(event) is CaseEvent:
        plan = _CASE_PLANS.get(event.event_type)
        if (
            plan is None
            or not _filled(event.case_id)
            or not _filled(event.case_type)
            or event.case_type not in plan.case_types
            or (plan.outcome_required and not _filled(event.outcome))
        ):
            return False
    else:
        return False
    if not _filled(event.event_id) or not _filled(event.customer_id) or event.occurred_at < 0:
        return False
    attributes = event.attributes
    for name in plan.required:
        value = attributes.get(name)
        if value is None or not value or value.isspace():
            return False
    for name, memo in plan.typed:
        value = attributes.get(name)
        if value is not None and not memo[value]:
            return False
    return True
