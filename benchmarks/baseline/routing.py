"""``route_event`` as first written: every rule and template scanned per event, ids hashed
through ``json.dumps``. Same outcome types as :mod:`streams.domain.routing`, so outcomes of the
two compare equal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from benchmarks.baseline.ids import audit_id, communication_id, suppression_key
from streams.domain.alignment import missing_fields_alert, template_miss_alert
from streams.domain.catalogue import event_data, validate_event
from streams.domain.channel import ChannelChoice, choose_channel
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    AuditKind,
    AuditRecord,
    BusinessEvent,
    Channel,
    CommRule,
    CompositionCommand,
    Preference,
    Recipient,
    TemplateVersion,
)
from streams.domain.routing import (
    RoutingOutcome,
    SuppressedCommunication,
    UndeliverableCommunication,
)
from streams.domain.rules import matching_rules
from streams.domain.suppression import SuppressionEntry, decide, expired_keys
from streams.domain.templates import TemplateMiss, resolve_template


def _recipient(preference: Preference | None, channel: Channel) -> Recipient:
    if preference is None:  # not reachable: channels are only chosen from a preference
        return Recipient()
    if channel is Channel.EMAIL:
        return Recipient(email=preference.email)
    if channel is Channel.SMS:
        return Recipient(phone=preference.phone)
    if channel is Channel.PRINT:
        return Recipient(postal_address=preference.postal_address)
    return Recipient()


def _present(data: Mapping[str, str], name: str) -> bool:
    value = data.get(name)
    return value is not None and bool(value.strip())


class _Router:
    """The mutable scratchpad of one :func:`route_event` call (never escapes it)."""

    def __init__(
        self,
        event: BusinessEvent,
        *,
        source_topic: str,
        preference: Preference | None,
        state: Mapping[str, SuppressionEntry],
    ) -> None:
        self.event = event
        self.source_topic = source_topic
        self.preference = preference
        self.state = state
        self.emitted_here: dict[str, SuppressionEntry] = {}
        self.data = dict(sorted(event_data(event).items()))
        self.account_id = event.account_id if isinstance(event, AccountEvent) else None
        self.case_id = None if isinstance(event, AccountEvent) else event.case_id
        self.commands: list[CompositionCommand] = []
        self.suppressed: list[SuppressedCommunication] = []
        self.undeliverable: list[UndeliverableCommunication] = []
        self.alerts: list[AlignmentAlert] = []
        self.audit: list[AuditRecord] = []
        self.updates: dict[str, SuppressionEntry] = {}

    def _audit(
        self, kind: AuditKind, com_id: str, rule: CommRule, summary: str, details: dict[str, str]
    ) -> None:
        base = {
            "rule_id": rule.rule_id,
            "rule_version": str(rule.version),
            "event_type": self.event.event_type,
            "communication_type": rule.communication_type,
            "template_id": rule.template_id,
            "source_topic": self.source_topic,
        }
        self.audit.append(
            AuditRecord(
                audit_id=audit_id(kind, com_id),
                kind=kind.value,
                customer_id=self.event.customer_id,
                case_id=self.case_id,
                communication_id=com_id,
                source_event_id=self.event.event_id,
                occurred_at=self.event.occurred_at,
                summary=summary,
                details=dict(sorted({**base, **details}.items())),
            )
        )

    def _alert(self, rule: CommRule, com_id: str, alert: AlignmentAlert) -> None:
        self.alerts.append(alert)
        details = {"alert_id": alert.alert_id, "alert_kind": alert.kind}
        if alert.template_version is not None:
            details["template_version"] = str(alert.template_version)
        if alert.missing_fields:
            details["missing_fields"] = ",".join(alert.missing_fields)
        summary = f"{alert.kind}: rule {rule.rule_id} produced no document"
        self._audit(AuditKind.ALIGNMENT_ALERT, com_id, rule, summary, details)

    def route(self, rule: CommRule, versions: Sequence[TemplateVersion]) -> None:
        event = self.event
        com_id = communication_id(event.event_id, rule.rule_id)
        language = self.preference.language if self.preference is not None else None
        resolved = resolve_template(versions, template_id=rule.template_id, language=language)
        if isinstance(resolved, TemplateMiss):
            alert = template_miss_alert(rule, resolved, raised_at=event.occurred_at)
            self._alert(rule, com_id, alert)
            return
        missing = [name for name in resolved.required_fields if not _present(self.data, name)]
        if missing:
            alert = missing_fields_alert(
                rule, resolved, missing, raised_at=event.occurred_at, never_supplied=False
            )
            self._alert(rule, com_id, alert)
            return

        choice = choose_channel(
            self.preference,
            regulatory=rule.regulatory,
            at_ms=event.occurred_at,
            allowed=resolved.channels,
        )
        if not isinstance(choice, ChannelChoice):
            self.undeliverable.append(
                UndeliverableCommunication(
                    rule_id=rule.rule_id,
                    communication_id=com_id,
                    code=choice.code,
                    reason=choice.reason,
                    retry_at=choice.retry_at,
                )
            )
            details = {"cause": "UNDELIVERABLE", "code": choice.code.value}
            if choice.retry_at is not None:
                details["retry_at"] = str(choice.retry_at)
            summary = f"undeliverable ({choice.code.value}): {choice.reason}"
            self._audit(AuditKind.SUPPRESSED, com_id, rule, summary, details)
            return

        key = suppression_key(event, rule.communication_type)
        decision = decide(
            self.emitted_here.get(key, self.state.get(key)),
            communication_id=com_id,
            source_event_id=event.event_id,
            occurred_at=event.occurred_at,
            window_ms=rule.suppression_window_ms,
        )
        if not decision.emit:
            reason = decision.reason or "duplicate"
            previous = decision.previous.communication_id if decision.previous else ""
            self.suppressed.append(
                SuppressedCommunication(
                    rule_id=rule.rule_id,
                    communication_id=com_id,
                    suppression_key=key,
                    previous_communication_id=previous,
                    reason=reason,
                )
            )
            details = {
                "cause": "DUPLICATE",
                "suppression_key": key,
                "previous_communication_id": previous,
                "suppression_window_ms": str(rule.suppression_window_ms),
            }
            self._audit(AuditKind.SUPPRESSED, com_id, rule, f"duplicate: {reason}", details)
            return

        command = CompositionCommand(
            communication_id=com_id,
            source_event_id=event.event_id,
            source_topic=self.source_topic,
            event_type=event.event_type,
            rule_id=rule.rule_id,
            rule_version=rule.version,
            customer_id=event.customer_id,
            account_id=self.account_id,
            case_id=self.case_id,
            communication_type=rule.communication_type,
            template_id=resolved.template_id,
            template_version=resolved.version,
            language=resolved.language,
            channel=choice.channel.value,
            recipient=_recipient(self.preference, choice.channel),
            data=dict(self.data),
            regulatory=rule.regulatory,
            disclaimer_id=resolved.disclaimer_id,
            disclaimer_version=resolved.disclaimer_version,
            created_at=event.occurred_at,
        )
        self.commands.append(command)
        if decision.entry is not None:
            self.updates[key] = decision.entry
        # even when the stored entry stays (a late, older event), a sibling rule of this event
        # with the same key must see this emission
        self.emitted_here[key] = SuppressionEntry(
            communication_id=com_id,
            source_event_id=event.event_id,
            emitted_at=event.occurred_at,
            expires_at=event.occurred_at + max(rule.suppression_window_ms, 0),
        )
        details = {
            "template_version": str(resolved.version),
            "language": resolved.language,
            "channel": choice.channel.value,
            "channel_reason": choice.reason,
            "regulatory": "true" if rule.regulatory else "false",
            "suppression_key": key,
        }
        summary = (
            f"{rule.communication_type} via {choice.channel.value} from template "
            f"{resolved.template_id} v{resolved.version} ({resolved.language})"
        )
        self._audit(AuditKind.COMMAND_EMITTED, com_id, rule, summary, details)


def route_event(
    event: BusinessEvent,
    *,
    source_topic: str,
    preference: Preference | None,
    rules: Iterable[CommRule],
    templates_by_id: Mapping[str, Sequence[TemplateVersion]],
    suppression_state: Mapping[str, SuppressionEntry],
    now_ms: int | None = None,
) -> RoutingOutcome:
    """Decide everything for one event (see the module docstring). Never raises on bad data.

    ``preference`` is the customer's (None when unknown); ``rules`` every known rule (all event
    types); ``templates_by_id`` every known version per template id; ``suppression_state`` the
    customer's suppression entries. ``now_ms`` (optional, e.g. stream time) only selects
    ``expired_keys`` for clean-up: it never changes a decision.
    """
    rejection = validate_event(event)
    if rejection is not None:
        return RoutingOutcome(source_event_id=event.event_id, rejection=rejection)
    router = _Router(
        event, source_topic=source_topic, preference=preference, state=suppression_state
    )
    for rule in matching_rules(event, rules):
        router.route(rule, templates_by_id.get(rule.template_id, ()))
    expired: tuple[str, ...] = ()
    if now_ms is not None:
        stale = expired_keys(suppression_state, now_ms)
        expired = tuple(key for key in stale if key not in router.updates)
    return RoutingOutcome(
        source_event_id=event.event_id,
        commands=tuple(router.commands),
        suppressed=tuple(router.suppressed),
        undeliverable=tuple(router.undeliverable),
        alerts=tuple(router.alerts),
        audit=tuple(router.audit),
        suppression_updates=router.updates,
        expired_keys=expired,
    )
