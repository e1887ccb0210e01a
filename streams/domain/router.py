"""The per-event machinery of :func:`streams.domain.routing.route_indexed` (internal).

One :class:`Router` per routing call: it holds the event, the customer's preference and
suppression entries, the reference index, and collects what each fired rule decides.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.domain.alignment import missing_fields_alert, template_miss_alert
from streams.domain.catalogue import event_data
from streams.domain.channel import (
    ChannelChoice,
    Undeliverable,
    choose_channel,
)
from streams.domain.ids import audit_id, communication_id
from streams.domain.outcome import SuppressedCommunication, UndeliverableCommunication
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
from streams.domain.reference_index import ReferenceIndex
from streams.domain.rules import condition_holds
from streams.domain.suppression import SuppressionEntry, suppression_key
from streams.domain.templates import TemplateMiss


def _recipient(preference: Preference, channel: Channel) -> Recipient:
    """Only the contact the chosen channel needs."""
    if channel is Channel.EMAIL:
        return Recipient(email=preference.email)
    if channel is Channel.SMS:
        return Recipient(phone=preference.phone)
    if channel is Channel.PRINT:
        return Recipient(postal_address=preference.postal_address)
    return Recipient()


def _fires(rule: CommRule, event: BusinessEvent, data: Mapping[str, str]) -> bool:
    """:func:`~streams.domain.rules.rule_fires` for a rule of the index's candidates (of the
    event's type, enabled: those two checks are done)."""
    at = event.occurred_at
    if rule.effective_from is not None and at < rule.effective_from:
        return False
    if rule.effective_to is not None and at >= rule.effective_to:
        return False
    if rule.segments and event.segment not in rule.segments:
        return False
    conditions = rule.conditions
    return not conditions or all(condition_holds(c, data) for c in conditions)


_EMPTY: Mapping[str, str] = {}
_CHANNEL_TEXT = {c: c.value for c in Channel}
_EMITTED = AuditKind.COMMAND_EMITTED.value


class Router:
    """The mutable scratchpad of one routing call (never escapes it)."""

    __slots__ = (
        "account_id",
        "alerts",
        "audit",
        "case_id",
        "commands",
        "data",
        "emitted_here",
        "event",
        "index",
        "language",
        "preference",
        "source_topic",
        "state",
        "suppressed",
        "undeliverable",
        "updates",
    )

    def __init__(
        self,
        event: BusinessEvent,
        *,
        source_topic: str,
        preference: Preference | None,
        state: Mapping[str, SuppressionEntry],
        index: ReferenceIndex,
    ) -> None:
        self.event = event
        self.source_topic = source_topic
        self.preference = preference
        self.language = preference.language if preference is not None else None
        self.state = state
        self.index = index
        self.emitted_here: dict[str, SuppressionEntry] = {}
        self.data: Mapping[str, str] = _EMPTY
        """``event_data(event)``, once a rule is a candidate (insertion order unspecified)."""
        if isinstance(event, AccountEvent):
            self.account_id: str | None = event.account_id
            self.case_id: str | None = None
        else:
            self.account_id = None
            self.case_id = event.case_id
        self.commands: list[CompositionCommand] = []
        self.suppressed: list[SuppressedCommunication] = []
        self.undeliverable: list[UndeliverableCommunication] = []
        self.alerts: list[AlignmentAlert] = []
        self.audit: list[AuditRecord] = []
        self.updates: dict[str, SuppressionEntry] = {}

    def fired(self) -> list[CommRule]:
        candidates = self.index.rules_for(self.event.event_type)
        if not candidates:
            return []
        event = self.event
        data = self.data = event_data(event)
        return [rule for rule in candidates if _fires(rule, event, data)]

    def _base(self, rule: CommRule) -> dict[str, str]:
        return {
            "rule_id": rule.rule_id,
            "rule_version": str(rule.version),
            "event_type": self.event.event_type,
            "communication_type": rule.communication_type,
            "template_id": rule.template_id,
            "source_topic": self.source_topic,
        }

    def _record(self, kind: str, com_id: str, summary: str, details: dict[str, str]) -> None:
        event = self.event
        self.audit.append(
            AuditRecord(
                audit_id=audit_id(kind, com_id),
                kind=kind,
                customer_id=event.customer_id,
                case_id=self.case_id,
                communication_id=com_id,
                source_event_id=event.event_id,
                occurred_at=event.occurred_at,
                summary=summary,
                details=details,
            )
        )

    def _audit(
        self, kind: AuditKind, com_id: str, rule: CommRule, summary: str, details: dict[str, str]
    ) -> None:
        merged = dict(sorted({**self._base(rule), **details}.items()))
        self._record(kind.value, com_id, summary, merged)

    def _alert(self, rule: CommRule, com_id: str, alert: AlignmentAlert) -> None:
        self.alerts.append(alert)
        details = {"alert_id": alert.alert_id, "alert_kind": alert.kind}
        if alert.template_version is not None:
            details["template_version"] = str(alert.template_version)
        if alert.missing_fields:
            details["missing_fields"] = ",".join(alert.missing_fields)
        summary = f"{alert.kind}: rule {rule.rule_id} produced no document"
        self._audit(AuditKind.ALIGNMENT_ALERT, com_id, rule, summary, details)

    def _undeliverable(self, rule: CommRule, com_id: str, choice: Undeliverable) -> None:
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

    def _suppressed(
        self, rule: CommRule, com_id: str, key: str, previous: SuppressionEntry, gap: int
    ) -> None:
        # the reason and details of streams.domain.suppression.decide, word for word
        window = rule.suppression_window_ms
        when = "earlier" if gap >= 0 else "later"
        reason = f"same communication already emitted {abs(gap)} ms {when} (window {window} ms)"
        self.suppressed.append(
            SuppressedCommunication(
                rule_id=rule.rule_id,
                communication_id=com_id,
                suppression_key=key,
                previous_communication_id=previous.communication_id,
                reason=reason,
            )
        )
        details = {
            "cause": "DUPLICATE",
            "suppression_key": key,
            "previous_communication_id": previous.communication_id,
            "suppression_window_ms": str(window),
        }
        self._audit(AuditKind.SUPPRESSED, com_id, rule, f"duplicate: {reason}", details)

    def route(self, rule: CommRule) -> None:
        event = self.event
        data = self.data
        occurred_at = event.occurred_at
        com_id = communication_id(event.event_id, rule.rule_id)
        resolved = self.index.resolve(rule.template_id, self.language)
        if type(resolved) is TemplateMiss:
            alert = template_miss_alert(rule, resolved, raised_at=occurred_at)
            self._alert(rule, com_id, alert)
            return
        assert isinstance(resolved, TemplateVersion)
        # not present: absent or blank (``not v.strip()`` is ``not v or v.isspace()``)
        missing = [
            name
            for name in resolved.required_fields
            if not (value := data.get(name)) or value.isspace()
        ]
        if missing:
            alert = missing_fields_alert(
                rule, resolved, missing, raised_at=occurred_at, never_supplied=False
            )
            self._alert(rule, com_id, alert)
            return

        preference = self.preference
        choice = choose_channel(
            preference, regulatory=rule.regulatory, at_ms=occurred_at, allowed=resolved.channels
        )
        if type(choice) is not ChannelChoice:
            assert isinstance(choice, Undeliverable)
            self._undeliverable(rule, com_id, choice)
            return

        # suppression (streams.domain.suppression.decide, inlined): the entry this event sees
        key = suppression_key(event, rule.communication_type, data)
        previous = self.emitted_here.get(key)
        if previous is None:
            previous = self.state.get(key)
        window = rule.suppression_window_ms
        store = True
        if previous is not None:
            if previous.communication_id == com_id:
                store = False  # a replay: same decision, same id
            else:
                gap = occurred_at - previous.emitted_at
                if window > 0 and abs(gap) < window:
                    self._suppressed(rule, com_id, key, previous, gap)
                    return
                if gap < 0:
                    store = False  # older than the stored entry: later events compare with it
        emitted = SuppressionEntry(
            communication_id=com_id,
            source_event_id=event.event_id,
            emitted_at=occurred_at,
            expires_at=occurred_at + (window if window > 0 else 0),
        )
        if store:
            self.updates[key] = emitted
        # even when the stored entry stays (a late, older event), a sibling rule of this event
        # with the same key must see this emission
        self.emitted_here[key] = emitted

        assert preference is not None  # a channel is only ever chosen from a preference
        channel = _CHANNEL_TEXT[choice.channel]
        self.commands.append(
            CompositionCommand(
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
                channel=channel,
                recipient=_recipient(preference, choice.channel),
                data={name: data[name] for name in sorted(data)},
                regulatory=rule.regulatory,
                disclaimer_id=resolved.disclaimer_id,
                disclaimer_version=resolved.disclaimer_version,
                created_at=occurred_at,
            )
        )
        summary = (
            f"{rule.communication_type} via {channel} from template "
            f"{resolved.template_id} v{resolved.version} ({resolved.language})"
        )
        # the base and command details of route_event, literally in sorted key order
        self._record(
            _EMITTED,
            com_id,
            summary,
            {
                "channel": channel,
                "channel_reason": choice.reason,
                "communication_type": rule.communication_type,
                "event_type": event.event_type,
                "language": resolved.language,
                "regulatory": "true" if rule.regulatory else "false",
                "rule_id": rule.rule_id,
                "rule_version": str(rule.version),
                "source_topic": self.source_topic,
                "suppression_key": key,
                "template_id": rule.template_id,
                "template_version": str(resolved.version),
            },
        )
