"""Whether a reference record (preference, rule, template) is one the domain can use.

Decoding proves a record has its schema's shape; these checks prove its content makes sense: an
event type the catalogue knows, condition operators that exist, hours of a day, template statuses
and channels from their enumerations. Each function returns the problems found, written for a
person (empty: usable). The worker dead-letters a record with problems, with them as the reason,
and keeps it out of its tables, so a typo upstream neither silently disables a rule nor lets a
preference with quiet hours 99..-5 decide a channel.
"""

from __future__ import annotations

import re

from streams.domain.catalogue import spec_for
from streams.domain.records import (
    Channel,
    CommRule,
    ConditionOp,
    Preference,
    TemplateStatus,
    TemplateVersion,
)

_LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?")
_OPS = frozenset(op.value for op in ConditionOp)
_STATUSES = frozenset(s.value for s in TemplateStatus)
_CHANNELS = frozenset(c.value for c in Channel)
_MAX_OFFSET_MINUTES = 14 * 60


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _language_problem(language: str) -> list[str]:
    if _LANGUAGE.fullmatch(language) is None:
        return [f"language {language!r} is not a language code such as 'en' or 'fr-CA'"]
    return []


def preference_problems(preference: Preference) -> list[str]:
    problems: list[str] = []
    if _blank(preference.customer_id):
        problems.append("customer_id is empty")
    problems += _language_problem(preference.language)
    hours = preference.quiet_hours
    if hours is not None:
        for name, hour in (("start_hour", hours.start_hour), ("end_hour", hours.end_hour)):
            if not 0 <= hour <= 24:
                problems.append(f"quiet_hours.{name} {hour} is not an hour of the day (0..24)")
        if abs(hours.utc_offset_minutes) > _MAX_OFFSET_MINUTES:
            problems.append(
                f"quiet_hours.utc_offset_minutes {hours.utc_offset_minutes} is beyond +-14 h"
            )
    if preference.updated_at < 0:
        problems.append(f"updated_at {preference.updated_at} is before 1970")
    return problems


def rule_problems(rule: CommRule) -> list[str]:
    problems: list[str] = []
    if _blank(rule.rule_id):
        problems.append("rule_id is empty")
    if rule.version < 0:
        problems.append(f"version {rule.version} is negative")
    if spec_for(rule.event_type) is None:
        problems.append(f"event_type {rule.event_type!r} is not in the event catalogue")
    for i, condition in enumerate(rule.conditions):
        if condition.op not in _OPS:
            problems.append(
                f"conditions[{i}].op {condition.op!r} is not one of {', '.join(sorted(_OPS))}"
            )
        elif condition.op == ConditionOp.IN and not condition.values:
            problems.append(f"conditions[{i}] (IN) lists no values")
    for name in ("communication_type", "template_id"):
        if _blank(getattr(rule, name)):
            problems.append(f"{name} is empty")
    if rule.suppression_window_ms < 0:
        problems.append(f"suppression_window_ms {rule.suppression_window_ms} is negative")
    if (
        rule.effective_from is not None
        and rule.effective_to is not None
        and rule.effective_from > rule.effective_to
    ):
        problems.append("effective_from is after effective_to")
    return problems


def template_problems(template: TemplateVersion) -> list[str]:
    problems: list[str] = []
    if _blank(template.template_id):
        problems.append("template_id is empty")
    if template.version < 0:
        problems.append(f"version {template.version} is negative")
    problems += _language_problem(template.language)
    if template.status not in _STATUSES:
        problems.append(f"status {template.status!r} is not one of {', '.join(sorted(_STATUSES))}")
    unknown = [c for c in template.channels if c not in _CHANNELS]
    if unknown:
        problems.append(f"channels {unknown} are not among {', '.join(sorted(_CHANNELS))}")
    if _blank(template.communication_type):
        problems.append("communication_type is empty")
    return problems
