from __future__ import annotations

import pytest

from streams.domain.alignment import (
    check_all,
    check_rule,
    compare_versions,
    missing_fields_alert,
    template_miss_alert,
)
from streams.domain.records import AlertKind, TemplateVersion
from streams.domain.templates import TemplateMiss, TemplateMissCode, resolve_template
from tests.domain.factories import T0, rule, template

pytestmark = pytest.mark.unit


def kinds(versions: list[TemplateVersion], **rule_overrides: object) -> list[tuple[str, list[str]]]:
    alerts = check_rule(rule(**rule_overrides), versions, raised_at=T0)
    return [(a.kind, a.missing_fields) for a in alerts]


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([template()], []),
        ([], [("MISSING_TEMPLATE", [])]),
        ([template(template_id="other")], [("MISSING_TEMPLATE", [])]),
        (
            [template(status="RETIRED"), template(version=2, status="DRAFT")],
            [("RETIRED_TEMPLATE", [])],
        ),
        # optional attributes and optional base fields can be supplied
        ([template(required_fields=["minimum_due", "segment", "account_id"])], []),
        (
            [template(required_fields=["amount_due", "policy_number"])],
            [("MISSING_FIELDS", ["policy_number"])],
        ),
        (
            [template(required_fields=["case_id", "zz", "aa"])],
            [("MISSING_FIELDS", ["aa", "case_id", "zz"])],
        ),
        # only the highest approved version per language is checked
        ([template(version=1, required_fields=["nope"]), template(version=2)], []),
        ([template(version=1), template(version=2, required_fields=["nope"], status="DRAFT")], []),
        (
            [template(language="en"), template(language="fr", required_fields=["nope"])],
            [("MISSING_FIELDS", ["nope"])],
        ),
    ],
)
def test_rule_checks(
    versions: list[TemplateVersion], expected: list[tuple[str, list[str]]]
) -> None:
    assert kinds(versions) == expected


def test_disabled_rules_are_not_checked() -> None:
    assert kinds([], enabled=False) == []


def test_unknown_event_type_supplies_nothing() -> None:
    assert kinds([template(required_fields=["amount_due"])], event_type="NOPE") == [
        ("MISSING_FIELDS", ["amount_due"])
    ]


def test_alerts_are_readable_by_both_teams() -> None:
    (alert,) = check_rule(rule(), [template(required_fields=["policy_number"])], raised_at=T0)
    assert alert.rule_id == "r-statement"
    assert alert.template_id == "tpl-statement"
    assert alert.template_version == 1
    assert alert.event_type == "BILLING_CYCLE_CLOSED"
    assert alert.raised_at == T0
    assert "'policy_number'" in alert.message
    assert "Exstream" in alert.message
    assert "Air Inc." in alert.message
    assert alert.alert_id.startswith("alr-")


def test_alert_ids_identify_the_problem() -> None:
    a = check_rule(rule(), [], raised_at=T0)[0]
    b = check_rule(rule(), [], raised_at=T0 + 99)[0]
    assert a.alert_id == b.alert_id
    assert check_rule(rule(version=2), [], raised_at=T0)[0].alert_id != a.alert_id
    assert check_rule(rule(template_id="x"), [], raised_at=T0)[0].alert_id != a.alert_id


def test_routing_misses_map_to_the_same_alerts_as_the_static_check() -> None:
    for versions, code in [
        ([], "MISSING_TEMPLATE"),
        ([template(status="RETIRED")], "RETIRED_TEMPLATE"),
    ]:
        miss = resolve_template(versions, template_id="tpl-statement", language="en")
        assert isinstance(miss, TemplateMiss)
        routed = template_miss_alert(rule(), miss, raised_at=T0)
        (static,) = check_rule(rule(), versions, raised_at=T0)
        assert routed.kind == code
        assert routed == static


def test_language_miss_is_a_missing_template_alert_for_that_language() -> None:
    miss = resolve_template([template(language="de")], template_id="tpl-statement", language="fr")
    assert isinstance(miss, TemplateMiss)
    assert miss.code is TemplateMissCode.LANGUAGE_UNAVAILABLE
    alert = template_miss_alert(rule(), miss, raised_at=T0)
    assert alert.kind == AlertKind.MISSING_TEMPLATE
    assert "'fr'" in alert.message
    other = resolve_template([template(language="de")], template_id="tpl-statement", language="es")
    assert isinstance(other, TemplateMiss)
    assert template_miss_alert(rule(), other, raised_at=T0).alert_id != alert.alert_id


def test_event_missing_fields_alert_explains_the_event() -> None:
    alert = missing_fields_alert(
        rule(), template(), ["minimum_due"], raised_at=T0, never_supplied=False
    )
    assert alert.kind == AlertKind.MISSING_FIELDS
    assert alert.missing_fields == ["minimum_due"]
    assert "this BILLING_CYCLE_CLOSED event" in alert.message


def test_check_all_is_sorted_and_complete() -> None:
    rules = [rule(rule_id="b", template_id="t-b"), rule(rule_id="a", template_id="t-a"), rule()]
    alerts = check_all(rules, {"tpl-statement": [template()]}, raised_at=T0)
    assert [(a.rule_id, a.kind) for a in alerts] == [
        ("a", "MISSING_TEMPLATE"),
        ("b", "MISSING_TEMPLATE"),
    ]


OLD = template(version=1, disclaimer_id="d", disclaimer_version=1, regulatory_text_version=3)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (
            template(version=2, disclaimer_id="d", disclaimer_version=1, regulatory_text_version=3),
            [],
        ),
        (
            template(version=2, disclaimer_id="d", disclaimer_version=2, regulatory_text_version=3),
            ["DISCLAIMER_CHANGED"],
        ),
        (
            template(version=2, disclaimer_id="e", disclaimer_version=1, regulatory_text_version=3),
            ["DISCLAIMER_CHANGED"],
        ),
        (
            template(
                version=2, disclaimer_id=None, disclaimer_version=None, regulatory_text_version=3
            ),
            ["DISCLAIMER_CHANGED"],
        ),
        (
            template(version=2, disclaimer_id="d", disclaimer_version=1, regulatory_text_version=4),
            ["REGULATORY_TEXT_CHANGED"],
        ),
        (
            template(
                version=2, disclaimer_id="d", disclaimer_version=2, regulatory_text_version=None
            ),
            ["DISCLAIMER_CHANGED", "REGULATORY_TEXT_CHANGED"],
        ),
        # not comparable: not approved, other template or language, not newer
        (template(version=2, disclaimer_version=9, status="DRAFT"), []),
        (template(version=2, disclaimer_version=9, template_id="x"), []),
        (template(version=2, disclaimer_version=9, language="fr"), []),
        (template(version=1, disclaimer_version=9), []),
    ],
)
def test_version_comparison(new: TemplateVersion, expected: list[str]) -> None:
    alerts = compare_versions(OLD, new, raised_at=T0, affected_rule_ids=["r-2", "r-1"])
    assert [a.kind for a in alerts] == expected
    for alert in alerts:
        assert alert.template_id == new.template_id
        assert alert.template_version == new.version
        assert alert.rule_id is None
        assert "'r-1', 'r-2'" in alert.message
        assert f"v{OLD.version} -> v{new.version}" in alert.message


def test_version_comparison_ids_are_stable_and_distinct() -> None:
    new = template(version=2, disclaimer_version=2, regulatory_text_version=4)
    first = compare_versions(OLD, new, raised_at=T0)
    assert first == compare_versions(OLD, new, raised_at=T0)
    assert len({a.alert_id for a in first}) == 2
