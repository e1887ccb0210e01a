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
from typing import TypeVar

from streams.domain.alignment import check_rule, compare_versions
from streams.domain.records import AlignmentAlert, CommRule, TemplateVersion
from streams.domain.reference_checks import rule_problems, template_problems
from streams.routing.handlers.decode import decode_or_dead_letter
from streams.routing.handlers.events import ReferenceSource
from streams.routing.handlers.ports import DeadLetter, Decode, InputRecord

T = TypeVar("T")

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

    async def _usable(
        self,
        record: InputRecord,
        decode: Decode[T],
        problems_of: Callable[[T], list[str]],
        invalid: str,
    ) -> T | None:
        """The record decoded, or None: a tombstone, or dead-lettered (undecodable, or
        ``invalid`` with its problems; the view keeps the previous version, if any)."""
        if record.value is None:
            return None
        value = await decode_or_dead_letter(decode, record, self._dead_letter, wait_s=self._wait_s)
        if value is None:
            return None
        problems = problems_of(value)
        if problems:
            await self._dead_letter(record, invalid, "; ".join(problems))
            return None
        return value

    async def rule_changed(self, record: InputRecord) -> None:
        rule = await self._usable(record, self._decode_rule, rule_problems, "INVALID_RULE")
        if rule is None:
            return
        versions = self._reference.templates_by_id().get(rule.template_id, [])
        # the record's timestamp in whole ms, truncated as the worker always did
        for alert in check_rule(rule, versions, raised_at=int(record.timestamp * 1000)):
            await self._emit_alert(alert)

    async def template_changed(self, record: InputRecord) -> None:
        new = await self._usable(
            record, self._decode_template, template_problems, "INVALID_TEMPLATE"
        )
        if new is None:
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
