"""The rules and templates as the handlers read them: :class:`ReferenceViews`.

Every worker holds both reference topics whole (:class:`~streams.routing.reference.ReferenceView`,
like a GlobalKTable). The handlers ask for the current rules, the template versions by template
id, and a version that changes whenever either view applied a change; the lists are re-built
only when their view's version moved, not per event.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from streams.domain.records import CommRule, TemplateVersion
from streams.routing.handlers.events import ReferenceSource

V = TypeVar("V")


class VersionedView(Protocol[V]):
    """A reference view (:class:`~streams.routing.reference.ReferenceView` is one)."""

    @property
    def version(self) -> int:
        """Moves on at every change the view applies."""
        ...

    def values(self) -> list[V]: ...

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Return once the view caught up with its topic; raises after ``timeout_s``."""
        ...


class ReferenceViews:
    """The two views behind one reader (see the module docstring)."""

    def __init__(
        self,
        *,
        rules: VersionedView[CommRule],
        templates: VersionedView[TemplateVersion],
        ready_timeout_s: float,
    ) -> None:
        self._rules_view = rules
        self._templates_view = templates
        self._ready_timeout_s = ready_timeout_s
        self._rules: list[CommRule] = []
        self._rules_version = -1
        self._templates: dict[str, list[TemplateVersion]] = {}
        self._templates_version = -1

    def version(self) -> tuple[int, int]:
        return (self._rules_view.version, self._templates_view.version)

    def rules(self) -> list[CommRule]:
        if self._rules_version != self._rules_view.version:
            self._rules = self._rules_view.values()
            self._rules_version = self._rules_view.version
        return self._rules

    def templates_by_id(self) -> dict[str, list[TemplateVersion]]:
        """Every known version of each template, by template id."""
        if self._templates_version != self._templates_view.version:
            by_id: dict[str, list[TemplateVersion]] = {}
            for t in self._templates_view.values():
                by_id.setdefault(t.template_id, []).append(t)
            self._templates = by_id
            self._templates_version = self._templates_view.version
        return self._templates

    async def ready(self) -> None:
        """Return once both views caught up with their topics (each within the timeout)."""
        await self._rules_view.wait_ready(self._ready_timeout_s)
        await self._templates_view.wait_ready(self._ready_timeout_s)

    def source(self) -> ReferenceSource:
        """The :class:`~streams.routing.handlers.events.ReferenceSource` the handlers read."""
        return ReferenceSource(
            version=self.version, rules=self.rules, templates_by_id=self.templates_by_id
        )
