"""The reference views as the handlers read them: re-built only when a view changed, ready
when both views are."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pytest

from streams.domain.records import CommRule, TemplateVersion
from streams.routing.handlers.reference_views import ReferenceViews
from tests.domain.factories import rule, template

pytestmark = pytest.mark.unit

V = TypeVar("V")


@dataclass
class View(Generic[V]):
    """A reference view: its values, a version moved by every change, and readiness."""

    items: list[V] = field(default_factory=list)
    version: int = 0
    reads: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    timeouts: list[float | None] = field(default_factory=list)

    def values(self) -> list[V]:
        self.reads += 1
        return list(self.items)

    def change(self, items: list[V]) -> None:
        self.items = items
        self.version += 1

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        self.timeouts.append(timeout_s)
        await self.ready.wait()


@dataclass
class World:
    rules: View[CommRule] = field(default_factory=View)
    templates: View[TemplateVersion] = field(default_factory=View)

    def __post_init__(self) -> None:
        self.views = ReferenceViews(rules=self.rules, templates=self.templates, ready_timeout_s=7)


async def test_the_rules_are_read_again_only_after_the_view_changed() -> None:
    world = World()
    world.rules.change([rule(rule_id="r-1")])
    assert [r.rule_id for r in world.views.rules()] == ["r-1"]
    assert [r.rule_id for r in world.views.rules()] == ["r-1"]
    assert world.rules.reads == 1
    world.rules.change([rule(rule_id="r-1"), rule(rule_id="r-2")])
    assert [r.rule_id for r in world.views.rules()] == ["r-1", "r-2"]
    assert world.rules.reads == 2


async def test_an_empty_view_is_read_once_too() -> None:
    world = World()
    assert world.views.rules() == []
    assert world.views.templates_by_id() == {}
    world.views.rules()
    world.views.templates_by_id()
    assert (world.rules.reads, world.templates.reads) == (1, 1)


async def test_templates_are_grouped_by_id_and_regrouped_after_a_change() -> None:
    world = World()
    world.templates.change(
        [template(version=1), template(version=2), template(template_id="tpl-x", version=1)]
    )
    by_id = world.views.templates_by_id()
    assert {k: [t.version for t in v] for k, v in by_id.items()} == {
        "tpl-statement": [1, 2],
        "tpl-x": [1],
    }
    assert world.views.templates_by_id() is by_id
    world.templates.change([template(version=3)])
    assert {k: [t.version for t in v] for k, v in world.views.templates_by_id().items()} == {
        "tpl-statement": [3]
    }
    assert world.templates.reads == 2


async def test_the_version_moves_with_either_view() -> None:
    world = World()
    source = world.views.source()
    seen = {source.version()}
    world.rules.change([])
    seen.add(source.version())
    world.templates.change([])
    seen.add(source.version())
    assert len(seen) == 3
    assert source.rules() == world.views.rules()
    assert source.templates_by_id() == world.views.templates_by_id()


async def test_ready_waits_for_both_views_each_within_the_timeout() -> None:
    world = World()
    task = asyncio.create_task(world.views.ready())
    world.rules.ready.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not task.done()
    world.templates.ready.set()
    await asyncio.wait_for(task, timeout=30)
    assert world.rules.timeouts == world.templates.timeouts == [7]
