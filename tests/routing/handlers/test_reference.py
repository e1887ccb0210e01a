"""Rule and template records over plain fakes: the alerts a change raises, and dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streams.codec import codec_for
from streams.domain.alignment import check_rule, compare_versions
from streams.domain.records import AlignmentAlert, CommRule, TemplateVersion
from streams.routing.handlers.events import ReferenceSource
from streams.routing.handlers.reference import ReferenceChanges
from tests.domain.factories import T0, rule, template
from tests.routing.handlers.fakes import Outputs, Record

pytestmark = pytest.mark.unit

rule_codec = codec_for(CommRule)
template_codec = codec_for(TemplateVersion)


@dataclass
class World:
    rules: list[CommRule] = field(default_factory=list)
    templates: list[TemplateVersion] = field(default_factory=list)
    alerts: list[AlignmentAlert] = field(default_factory=list)
    outputs: Outputs = field(default_factory=Outputs)

    def __post_init__(self) -> None:
        self.handler = ReferenceChanges(
            reference=ReferenceSource(
                version=lambda: 0, rules=lambda: self.rules, templates_by_id=self.by_id
            ),
            decode_rule=rule_codec.decode,
            decode_template=template_codec.decode,
            emit_alert=self.emit,
            dead_letter=self.outputs.dead_letter,
            registry_wait_s=1.0,
        )

    def by_id(self) -> dict[str, list[TemplateVersion]]:
        out: dict[str, list[TemplateVersion]] = {}
        for t in self.templates:
            out.setdefault(t.template_id, []).append(t)
        return out

    async def emit(self, alert: AlignmentAlert) -> None:
        self.alerts.append(alert)

    def codes(self) -> list[str]:
        return [code for _, code, _ in self.outputs.of("dead_letter")]


def record(value: bytes | None, topic: str = "air.comm-rules.v1") -> Record:
    return Record(topic=topic, partition=0, offset=4, key=b"k", value=value, timestamp=T0 / 1000)


async def test_a_rule_whose_template_is_missing_raises_the_alert_check_rule_raises() -> None:
    world = World()
    changed = rule(template_id="tpl-nowhere")
    await world.handler.rule_changed(record(rule_codec.encode(changed)))
    assert world.alerts == check_rule(changed, [], raised_at=T0)
    assert len(world.alerts) == 1
    assert world.outputs.sent == []


async def test_a_rule_that_fits_its_template_raises_nothing() -> None:
    world = World(templates=[template()])
    await world.handler.rule_changed(record(rule_codec.encode(rule())))
    assert world.alerts == []


async def test_an_invalid_rule_is_dead_lettered() -> None:
    world = World(templates=[template()])
    await world.handler.rule_changed(record(rule_codec.encode(rule(event_type="NOPE"))))
    assert world.codes() == ["INVALID_RULE"]
    assert world.alerts == []


async def test_tombstones_raise_nothing_and_garbage_is_dead_lettered() -> None:
    world = World()
    await world.handler.rule_changed(record(None))
    await world.handler.template_changed(record(None, "exstream.templates.v1"))
    assert world.outputs.sent == []
    await world.handler.template_changed(record(b"garbage", "exstream.templates.v1"))
    assert world.codes() == ["BAD_MAGIC"]


async def test_a_new_template_version_is_compared_with_the_previous_one() -> None:
    old = template(version=1)
    world = World(rules=[rule(), rule(rule_id="r-other", template_id="tpl-other")])
    world.templates = [old, template(version=0, disclaimer_version=9), template(language="fr")]
    new = template(version=2, disclaimer_version=2, updated_at=T0)
    await world.handler.template_changed(record(template_codec.encode(new), "t"))
    expected = compare_versions(old, new, raised_at=T0, affected_rule_ids=["r-statement"])
    assert expected  # the disclaimer changed
    assert world.alerts == expected


async def test_a_first_version_or_an_invalid_one_raises_nothing() -> None:
    world = World(rules=[rule()])
    await world.handler.template_changed(record(template_codec.encode(template()), "t"))
    assert world.alerts == []
    bad = template(template_id="", version=3)
    await world.handler.template_changed(record(template_codec.encode(bad), "t"))
    assert world.codes() == ["INVALID_TEMPLATE"]
