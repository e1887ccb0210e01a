"""Rules <-> templates alignment: problems found before they become broken documents (flow 6).

Air Inc. owns the rules (which event triggers which template), Exstream owns the templates (their
versions, required fields, disclaimers and regulatory text). An :class:`AlignmentAlert` tells both
sides what does not line up and what each can do about it. Messages name rules, templates, event
types and field names, never customer data.

Checks:

=========================  ========================================================================
alert kind                 raised when
=========================  ========================================================================
MISSING_TEMPLATE           an enabled rule's template has no version at all (or, when routing, no
                           approved version in the customer's language nor the fallback language)
RETIRED_TEMPLATE           an enabled rule's template has versions, none APPROVED
MISSING_FIELDS             an approved version (the highest per language) requires fields the
                           rule's event type cannot supply per the catalogue; when routing, fields
                           this particular event does not carry
DISCLAIMER_CHANGED         a newer approved version changes the disclaimer id or version
REGULATORY_TEXT_CHANGED    a newer approved version changes the regulatory text version
=========================  ========================================================================

Alert ids identify the *problem*, not the occurrence: the same rule version, template version and
finding always give the same id, whether found by :func:`check_rule` or while routing an event, so
consumers can collapse repeats by id. Each affected event is recorded separately in the audit trail.
Disabled rules are not checked: they produce no document that could break.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streams.domain.catalogue import supplied_fields
from streams.domain.ids import alert_id
from streams.domain.records import AlertKind, AlignmentAlert, CommRule, TemplateVersion
from streams.domain.templates import TemplateMiss, TemplateMissCode, is_approved, latest_approved


def _rule_alert(
    kind: AlertKind,
    rule: CommRule,
    *,
    message: str,
    raised_at: int,
    version: TemplateVersion | None = None,
    language: str | None = None,
    missing: Sequence[str] = (),
) -> AlignmentAlert:
    template_version = version.version if version is not None else None
    return AlignmentAlert(
        alert_id=alert_id(
            kind,
            rule.rule_id,
            rule.version,
            rule.template_id,
            template_version,
            language,
            *missing,
        ),
        kind=kind.value,
        rule_id=rule.rule_id,
        template_id=rule.template_id,
        template_version=template_version,
        event_type=rule.event_type,
        missing_fields=list(missing),
        message=message,
        raised_at=raised_at,
    )


def _rule_name(rule: CommRule) -> str:
    return f"Rule '{rule.rule_id}' v{rule.version} ({rule.event_type} -> {rule.communication_type})"


def check_rule(
    rule: CommRule, versions: Iterable[TemplateVersion], *, raised_at: int
) -> list[AlignmentAlert]:
    """Alerts for one rule against every known version of its template (other templates' versions
    are ignored). Empty when the rule is disabled or aligned."""
    if not rule.enabled:
        return []
    own = [v for v in versions if v.template_id == rule.template_id]
    if not own:
        return [missing_template_alert(rule, raised_at=raised_at)]
    if not any(is_approved(v) for v in own):
        return [retired_template_alert(rule, raised_at=raised_at)]
    supplied = supplied_fields(rule.event_type)
    alerts = []
    for language in sorted({v.language for v in own if is_approved(v)}):
        latest = latest_approved(own, template_id=rule.template_id, language=language)
        if latest is None:  # pragma: no cover - a language with an approved version has one
            continue
        missing = sorted(set(latest.required_fields) - supplied)
        if missing:
            alert = missing_fields_alert(
                rule, latest, missing, raised_at=raised_at, never_supplied=True
            )
            alerts.append(alert)
    return alerts


def check_all(
    rules: Iterable[CommRule],
    templates_by_id: Mapping[str, Sequence[TemplateVersion]],
    *,
    raised_at: int,
) -> list[AlignmentAlert]:
    """:func:`check_rule` for every rule, ordered by rule id then alert id."""
    alerts: list[AlignmentAlert] = []
    for rule in rules:
        versions = templates_by_id.get(rule.template_id, ())
        alerts.extend(check_rule(rule, versions, raised_at=raised_at))
    return sorted(alerts, key=lambda a: (a.rule_id or "", a.alert_id))


def missing_template_alert(rule: CommRule, *, raised_at: int) -> AlignmentAlert:
    """MISSING_TEMPLATE: ``rule``'s template has no version at all."""
    return _rule_alert(
        AlertKind.MISSING_TEMPLATE,
        rule,
        raised_at=raised_at,
        message=(
            f"{_rule_name(rule)} points at template '{rule.template_id}', which does not exist "
            "in Exstream; no document was produced from it. Exstream: publish and approve it; "
            "Air Inc.: or point the rule at an existing template or disable it."
        ),
    )


def retired_template_alert(rule: CommRule, *, raised_at: int) -> AlignmentAlert:
    """RETIRED_TEMPLATE: ``rule``'s template has versions, none of them APPROVED."""
    return _rule_alert(
        AlertKind.RETIRED_TEMPLATE,
        rule,
        raised_at=raised_at,
        message=(
            f"{_rule_name(rule)} points at template '{rule.template_id}', which has no APPROVED "
            "version (only DRAFT or RETIRED); no document was produced from it. Exstream: approve "
            "a version; Air Inc.: or point the rule at a current template or disable it."
        ),
    )


def template_miss_alert(rule: CommRule, miss: TemplateMiss, *, raised_at: int) -> AlignmentAlert:
    """The alert raised instead of a command when routing cannot resolve ``rule``'s template.

    MISSING_TEMPLATE and RETIRED_TEMPLATE are the same alerts :func:`check_rule` raises. A missing
    language (or an unsupported channel) is reported as MISSING_TEMPLATE for that language."""
    if miss.code is TemplateMissCode.MISSING_TEMPLATE:
        return missing_template_alert(rule, raised_at=raised_at)
    if miss.code is TemplateMissCode.RETIRED_TEMPLATE:
        return retired_template_alert(rule, raised_at=raised_at)
    return _rule_alert(
        AlertKind.MISSING_TEMPLATE,
        rule,
        raised_at=raised_at,
        version=miss.version,
        language=miss.language,
        message=(
            f"{_rule_name(rule)} cannot be composed: {miss.reason}; no document was produced "
            "from it. Exstream: publish and approve the missing variant; Air Inc.: or restrict "
            "the rule to customers it can serve."
        ),
    )


def missing_fields_alert(
    rule: CommRule,
    version: TemplateVersion,
    missing: Sequence[str],
    *,
    raised_at: int,
    never_supplied: bool,
) -> AlignmentAlert:
    """MISSING_FIELDS: ``version`` requires ``missing``, which the rule's event type cannot supply
    (``never_supplied``) or which the routed event did not carry."""
    names = ", ".join(f"'{m}'" for m in missing)
    if never_supplied:
        cause = f"{rule.event_type} events never carry {names}"
        advice = (
            "Exstream: make the field(s) optional or publish a version without them; "
            "Air Inc.: or add them to the event type or trigger a different template."
        )
    else:
        cause = f"this {rule.event_type} event does not carry {names}"
        advice = (
            "Air Inc.: send the field(s) with the event, or add an EXISTS condition to the rule; "
            "Exstream: or make them optional in the template."
        )
    return _rule_alert(
        AlertKind.MISSING_FIELDS,
        rule,
        raised_at=raised_at,
        version=version,
        language=version.language,
        missing=sorted(missing),
        message=(
            f"{_rule_name(rule)}: template '{version.template_id}' v{version.version} "
            f"({version.language}) requires field(s) {names}, but {cause}; no document was "
            f"produced from it. {advice}"
        ),
    )


def compare_versions(
    old: TemplateVersion,
    new: TemplateVersion,
    *,
    raised_at: int,
    affected_rule_ids: Sequence[str] = (),
) -> list[AlignmentAlert]:
    """Alerts when ``new`` (approved) replaces ``old`` (approved) of the same template and language
    with a different disclaimer or regulatory text. Empty when either is not approved, they are
    different templates or languages, or ``new`` is not newer."""
    if not (is_approved(old) and is_approved(new)):
        return []
    if old.template_id != new.template_id or old.language != new.language:
        return []
    if new.version <= old.version:
        return []
    rules = (
        " Rules using it: " + ", ".join(f"'{r}'" for r in sorted(affected_rule_ids)) + "."
        if affected_rule_ids
        else ""
    )
    name = f"Template '{new.template_id}' ({new.language}) v{old.version} -> v{new.version}"
    alerts = []
    if (old.disclaimer_id, old.disclaimer_version) != (new.disclaimer_id, new.disclaimer_version):
        alerts.append(
            _template_alert(
                AlertKind.DISCLAIMER_CHANGED,
                old,
                new,
                raised_at=raised_at,
                message=(
                    f"{name} changes the disclaimer from {_disclaimer(old)} to {_disclaimer(new)}. "
                    f"Air Inc.: review the rules and segments that send it.{rules}"
                ),
            )
        )
    if old.regulatory_text_version != new.regulatory_text_version:
        alerts.append(
            _template_alert(
                AlertKind.REGULATORY_TEXT_CHANGED,
                old,
                new,
                raised_at=raised_at,
                message=(
                    f"{name} changes the regulatory text version from "
                    f"{_optional(old.regulatory_text_version)} to "
                    f"{_optional(new.regulatory_text_version)}. Air Inc. compliance: confirm the "
                    f"regulatory rules that send it.{rules}"
                ),
            )
        )
    return alerts


def _template_alert(
    kind: AlertKind,
    old: TemplateVersion,
    new: TemplateVersion,
    *,
    message: str,
    raised_at: int,
) -> AlignmentAlert:
    return AlignmentAlert(
        alert_id=alert_id(kind, new.template_id, new.language, old.version, new.version),
        kind=kind.value,
        rule_id=None,
        template_id=new.template_id,
        template_version=new.version,
        message=message,
        raised_at=raised_at,
    )


def _optional(value: int | None) -> str:
    return "none" if value is None else str(value)


def _disclaimer(version: TemplateVersion) -> str:
    if version.disclaimer_id is None:
        return "none"
    return f"'{version.disclaimer_id}' v{_optional(version.disclaimer_version)}"
