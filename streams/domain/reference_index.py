"""Rules and templates prepared once for routing many events: :class:`ReferenceIndex`.

:func:`~streams.domain.routing.route_event` takes every known rule and every template version
and, per event, keeps the latest version of each rule, scans them all for the event type and
scans the template's versions for the customer's language. None of that depends on the event.
A :class:`ReferenceIndex` does it once per *version of the reference data* (build a new one
whenever a rule or template record arrives, never per event) and answers per event with dict
look-ups:

- :meth:`ReferenceIndex.rules_for`: the candidate rules of an event type, already reduced to the
  latest version per rule id (:func:`~streams.domain.rules.latest_versions` over *all* rules,
  so a newer version of a rule moved to another event type hides the old one), enabled only,
  ordered by priority descending then rule id. Whether a candidate fires for a given event
  (effective window, segments, conditions) is still decided per event;
- :meth:`ReferenceIndex.resolve`: :func:`~streams.domain.templates.resolve_template` for a
  template id and a customer language, computed on first use and remembered.

Guarantees: routing with an index decides exactly what ``route_event`` decides with the same
rules and templates (``tests/domain/test_routing_equivalence.py`` checks it on generated inputs).
The index never changes what it answers: it is immutable apart from its memo of resolutions,
which only ever caches a pure function's results. The records given to it must not be mutated
afterwards (they are frozen dataclasses; their lists are not copied).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streams.domain.records import CommRule, TemplateVersion
from streams.domain.rules import latest_versions
from streams.domain.templates import TemplateMiss, resolve_template

MEMO_LIMIT = 10_000
"""Resolutions remembered at most (template ids times distinct customer language strings)."""


class ReferenceIndex:
    """Rules by event type and memoised template resolution (see the module docstring)."""

    __slots__ = ("_by_type", "_resolved", "_rules", "_templates")

    def __init__(
        self,
        rules: Iterable[CommRule],
        templates_by_id: Mapping[str, Sequence[TemplateVersion]],
    ) -> None:
        """``rules``: every known rule (all event types, any versions); ``templates_by_id``:
        every known version per template id, as :func:`route_event` takes them."""
        latest = latest_versions(rules)
        by_type: dict[str, list[CommRule]] = {}
        for rule in latest:
            if rule.enabled:
                by_type.setdefault(rule.event_type, []).append(rule)
        self._rules = tuple(latest)
        self._by_type = {
            event_type: tuple(sorted(candidates, key=lambda r: (-r.priority, r.rule_id)))
            for event_type, candidates in by_type.items()
        }
        self._templates = {tid: tuple(versions) for tid, versions in templates_by_id.items()}
        self._resolved: dict[tuple[str, str | None], TemplateVersion | TemplateMiss] = {}

    @classmethod
    def from_records(
        cls, rules: Iterable[CommRule], templates: Iterable[TemplateVersion]
    ) -> ReferenceIndex:
        """An index of ``rules`` and the template versions ``templates`` (any order, grouped
        here by template id)."""
        by_id: dict[str, list[TemplateVersion]] = {}
        for version in templates:
            by_id.setdefault(version.template_id, []).append(version)
        return cls(rules, by_id)

    @property
    def rules(self) -> tuple[CommRule, ...]:
        """The latest version of every rule id (enabled or not), in no particular order."""
        return self._rules

    def rules_for(self, event_type: str) -> tuple[CommRule, ...]:
        """Enabled latest-version rules of ``event_type``, by priority desc then rule id."""
        return self._by_type.get(event_type, ())

    def versions(self, template_id: str) -> tuple[TemplateVersion, ...]:
        """Every known version of ``template_id`` (all languages and statuses)."""
        return self._templates.get(template_id, ())

    def resolve(self, template_id: str, language: str | None) -> TemplateVersion | TemplateMiss:
        """:func:`~streams.domain.templates.resolve_template` of ``template_id`` in ``language``
        (no channel), memoised per (template id, language)."""
        key = (template_id, language)
        found = self._resolved.get(key)
        if found is None:
            if len(self._resolved) >= MEMO_LIMIT:  # languages come from customers: stay bounded
                self._resolved.clear()
            found = self._resolved[key] = resolve_template(
                self._templates.get(template_id, ()), template_id=template_id, language=language
            )
        return found
