"""ReferenceIndex: the rules and template resolutions route_event would compute, once."""

from __future__ import annotations

import pytest

from streams.domain import reference_index
from streams.domain.reference_index import ReferenceIndex
from streams.domain.templates import TemplateMiss, TemplateMissCode, resolve_template
from tests.domain.factories import rule, template

pytestmark = pytest.mark.unit


def test_candidates_are_latest_enabled_rules_of_the_type_by_priority_then_id() -> None:
    rules = [
        rule(rule_id="b", priority=1),
        rule(rule_id="a", priority=1),
        rule(rule_id="c", priority=5),
        rule(rule_id="old", version=1),
        rule(rule_id="old", version=2, event_type="CLAIM_DECIDED"),  # moved: hides version 1
        rule(rule_id="off", version=1),
        rule(rule_id="off", version=2, enabled=False),  # disabled latest: hides version 1
    ]
    index = ReferenceIndex(rules, {})
    assert [r.rule_id for r in index.rules_for("BILLING_CYCLE_CLOSED")] == ["c", "a", "b"]
    assert [(r.rule_id, r.version) for r in index.rules_for("CLAIM_DECIDED")] == [("old", 2)]
    assert index.rules_for("NOPE") == ()
    assert sorted((r.rule_id, r.version) for r in index.rules) == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
        ("off", 2),
        ("old", 2),
    ]


def test_resolution_is_resolve_template_remembered() -> None:
    versions = [
        template(version=1, language="en"),
        template(version=2, language="fr"),
        template(version=3, language="fr", status="DRAFT"),
    ]
    index = ReferenceIndex.from_records([], versions)
    for language in ("fr", "FR-ca", "de", None, " "):
        expected = resolve_template(versions, template_id="tpl-statement", language=language)
        assert index.resolve("tpl-statement", language) == expected
        assert index.resolve("tpl-statement", language) is index.resolve("tpl-statement", language)
    missing = index.resolve("tpl-none", "en")
    assert isinstance(missing, TemplateMiss)
    assert missing.code is TemplateMissCode.MISSING_TEMPLATE
    assert index.versions("tpl-statement") == tuple(versions)


def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference_index, "MEMO_LIMIT", 3)
    index = ReferenceIndex.from_records([], [template()])
    for n in range(10):
        assert index.resolve("tpl-statement", f"x{n}") == resolve_template(
            [template()], template_id="tpl-statement", language=f"x{n}"
        )
    assert len(index._resolved) <= 3
