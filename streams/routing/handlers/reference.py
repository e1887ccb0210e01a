"""Alignment checks when a rule or a template version arrives: :class:`ReferenceChanges`.

The reference views (:class:`~streams.routing.reference.ReferenceView`) apply every rule and
template record on every worker; these handlers run on the partitions this worker owns, in the
worker's exactly-once transaction, and raise the alerts a change causes:

- a rule: :func:`~streams.domain.alignment.check_rule` against its template's known versions
  (missing, retired, required fields it cannot provide...);
- a template version: :func:`~streams.domain.alignment.compare_versions` with the previous
  version of the same template and language (disclaimer, regulatory text), naming the rules
  that use the template.

A tombstone raises nothing. A record that does not decode, or whose content is not usable
(:mod:`streams.domain.reference_checks`), is dead-lettered (``INVALID_RULE``,
``INVALID_TEMPLATE``); the views keep the previous version then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from streams.domain.alignment import check_rule, compare_versions
from streams.domain.records import AlignmentAlert, CommRule, TemplateVersion
from streams.domain.reference_checks import rule_problems, template_problems
from streams.routing.handlers.decode import decode_or_dead_letter
from streams.routing.handlers.events import ReferenceSource
from streams.routing.handlers.ports import DeadLetter, Decode, InputRecord

EmitAlert = Callable[[AlignmentAlert], Awaitable[None]]
"""Sends an alert and its audit record."""


class ReferenceChanges:
    """Handles rule and template records (see the module docstring)."""

    def __init__(
        self,
        *,
        reference: ReferenceSource,
        decode_rule: Decode[CommRule],
        decode_template: Decode[TemplateVersion],
        emit_alert: EmitAlert,
        dead_letter: DeadLetter,
        registry_wait_s: float,
    ) -> None:
        self._reference = reference
        self._decode_rule = decode_rule
        self._decode_template = decode_template
        self._emit_alert = emit_alert
        self._dead_letter = dead_letter
        self._wait_s = registry_wait_s

    async def rule_changed(self, record: InputRecord) -> None:
        if record.value is None:
            return
        rule = await decode_or_dead_letter(
            self._decode_rule, record, self._dead_letter, wait_s=self._wait_s
        )
        if rule is None:
            return
        problems = rule_problems(rule)
        if problems:  # the view keeps the rule's previous version, if any
            await self._dead_letter(record, "INVALID_RULE", "; ".join(problems))
            return
        versions = self._reference.templates_by_id().get(rule.template_id, [])
        # the record's timestamp in whole ms, truncated as the worker always did
        for alert in check_rule(rule, versions, raised_at=int(record.timestamp * 1000)):
            await self._emit_alert(alert)

    async def template_changed(self, record: InputRecord) -> None:
        if record.value is None:
            return
        new = await decode_or_dead_letter(
            self._decode_template, record, self._dead_letter, wait_s=self._wait_s
        )
        if new is None:
            return
        problems = template_problems(new)
        if problems:  # the view keeps the version's previous record, if any
            await self._dead_letter(record, "INVALID_TEMPLATE", "; ".join(problems))
            return
        older = [
            v
            for v in self._reference.templates_by_id().get(new.template_id, [])
            if v.language == new.language and v.version < new.version
        ]
        if not older:
            return
        previous = max(older, key=lambda v: v.version)
        affected = [r.rule_id for r in self._reference.rules() if r.template_id == new.template_id]
        for alert in compare_versions(
            previous, new, raised_at=new.updated_at, affected_rule_ids=affected
        ):
            await self._emit_alert(alert)
