"""Routing one business event: the whole decision the stream agent delegates, as one pure function.

:func:`route_event` runs, for one event:

1. validation (:func:`~streams.domain.catalogue.validate_event`); an invalid event yields only a
   ``rejection`` (code + reason) for the dead-letter path, and nothing else;
2. rule matching (:func:`~streams.domain.rules.matching_rules`), by priority then rule id; then,
   for each rule that fires, in that order:
3. template resolution in the customer's language (fallback ``en``); a miss yields an
   :class:`AlignmentAlert` instead of a broken command;
4. the resolved version's required fields must all be present in the event's data; otherwise a
   MISSING_FIELDS alert instead of a broken command;
5. channel choice (:func:`~streams.domain.channel.choose_channel`) restricted to the template's
   channels; no channel yields an undeliverable outcome (audited as SUPPRESSED with cause
   UNDELIVERABLE);
6. suppression (:mod:`streams.domain.suppression`): a duplicate of an already emitted
   communication is recorded as suppressed;
7. otherwise a :class:`CompositionCommand` and the suppression entry to store.

Suppression comes last on purpose: every earlier step depends only on the inputs, never on the
suppression state, so re-routing an event with the state its first routing left behind (a replay)
repeats each rule's decision. (Were suppression checked before the channel, a rule that was
undeliverable the first time could find a sibling rule's entry on replay and turn "suppressed".)

Every decision leaves one audit record (COMMAND_EMITTED, SUPPRESSED or ALIGNMENT_ALERT) whose
``details`` hold ids, codes and names only, never an address, email or phone.

Guarantees:

- **Deterministic**: equal inputs give equal outcomes. All times in the output come from the event
  (``created_at``, audit ``occurred_at``, alert ``raised_at``), never from a clock, and every id is
  a hash of its inputs, so a replay reproduces the same records, which downstream idempotency then
  discards.
- **Pure**: nothing is mutated; the caller stores ``suppression_updates`` (and deletes
  ``expired_keys``) in its table after emitting the outcome's records.
- Rules of one event see each other's suppression updates: two rules of the same communication
  type for one event produce one command (the higher priority's), the other is suppressed.
- The recipient carries only the contact the chosen channel needs: the email address for EMAIL,
  the phone number for SMS, the postal address for PRINT, nothing for WEB and PUSH.

Calling it from a worker that keeps its state decoded in memory
----------------------------------------------------------------

- Build a :class:`~streams.domain.reference_index.ReferenceIndex` from the rules and template
  versions whenever the reference data changes (never per event), and call
  :func:`route_indexed` per event with the customer's decoded :class:`Preference` (or None) and
  their suppression entries as a plain mapping ``key -> SuppressionEntry`` (the customer's
  suppression table value, kept as Python objects between events).
- Apply the outcome to that mapping with :meth:`RoutingOutcome.apply_to` after emitting its
  records; it returns whether the mapping changed, i.e. whether the customer's suppression
  changelog record must be written (``streams.codec.state`` serialises it in the format the
  worker has always stored).
- :func:`route_event` is the same decision taking every rule and template per call; it builds a
  throw-away index each time, so a worker routing many events should hold an index instead.

Both give equal outcomes for equal inputs; ``tests/domain/test_routing_equivalence.py`` checks
them against the decision as first written (``benchmarks/baseline``) on generated inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from streams.domain.alignment import missing_fields_alert, template_miss_alert
from streams.domain.catalogue import EventRejection, event_data, validate_event
from streams.domain.channel import ChannelChoice, UndeliverableCode, choose_channel
from streams.domain.fast_validation import surely_valid
from streams.domain.ids import audit_id, communication_id
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
from streams.domain.rules import rule_fires
from streams.domain.suppression import SuppressionEntry, decide, suppression_key
from streams.domain.templates import TemplateMiss


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressedCommunication:
    """A communication not emitted because the same one was emitted within the window."""

    rule_id: str
    communication_id: str
    suppression_key: str
    previous_communication_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UndeliverableCommunication:
    """A communication not emitted because no channel may be used (see ``channel.py``)."""

    rule_id: str
    communication_id: str
    code: UndeliverableCode
    reason: str
    retry_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingOutcome:
    """Everything :func:`route_event` decided for one event. Tuples are in rule order."""

    source_event_id: str
    rejection: EventRejection | None = None
    """Set when the event is invalid: dead-letter it with ``rejection.code`` and ``.reason``."""
    commands: tuple[CompositionCommand, ...] = ()
    suppressed: tuple[SuppressedCommunication, ...] = ()
    undeliverable: tuple[UndeliverableCommunication, ...] = ()
    alerts: tuple[AlignmentAlert, ...] = ()
    audit: tuple[AuditRecord, ...] = ()
    suppression_updates: dict[str, SuppressionEntry] = field(default_factory=dict)
    """Entries to store in the suppression state (key -> entry)."""
    expired_keys: tuple[str, ...] = ()
    """Entries of the given state that expired at ``now_ms`` and may be deleted."""

    def apply_to(self, state: MutableMapping[str, SuppressionEntry]) -> bool:
        """Store ``suppression_updates`` in, and delete ``expired_keys`` from, the customer's
        suppression ``state`` (the mapping given to the routing call); True if it changed."""
        state.update(self.suppression_updates)
        removed = False
        for key in self.expired_keys:
            removed = state.pop(key, None) is not None or removed
        return removed or bool(self.suppression_updates)


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


_EMPTY: Mapping[str, str] = {}


class _Router:
    """The mutable scratchpad of one routing call (never escapes it)."""

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
        self.account_id = event.account_id if isinstance(event, AccountEvent) else None
        self.case_id = None if isinstance(event, AccountEvent) else event.case_id
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
        self.data = event_data(self.event)
        return [rule for rule in candidates if rule_fires(rule, self.event, self.data)]

    def _base(self, rule: CommRule) -> dict[str, str]:
        return {
            "rule_id": rule.rule_id,
            "rule_version": str(rule.version),
            "event_type": self.event.event_type,
            "communication_type": rule.communication_type,
            "template_id": rule.template_id,
            "source_topic": self.source_topic,
        }

    def _record(self, kind: AuditKind, com_id: str, summary: str, details: dict[str, str]) -> None:
        event = self.event
        self.audit.append(
            AuditRecord(
                audit_id=audit_id(kind, com_id),
                kind=kind.value,
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
        self._record(kind, com_id, summary, merged)

    def _alert(self, rule: CommRule, com_id: str, alert: AlignmentAlert) -> None:
        self.alerts.append(alert)
        details = {"alert_id": alert.alert_id, "alert_kind": alert.kind}
        if alert.template_version is not None:
            details["template_version"] = str(alert.template_version)
        if alert.missing_fields:
            details["missing_fields"] = ",".join(alert.missing_fields)
        summary = f"{alert.kind}: rule {rule.rule_id} produced no document"
        self._audit(AuditKind.ALIGNMENT_ALERT, com_id, rule, summary, details)

    def route(self, rule: CommRule) -> None:
        event = self.event
        data = self.data
        com_id = communication_id(event.event_id, rule.rule_id)
        resolved = self.index.resolve(rule.template_id, self.language)
        if isinstance(resolved, TemplateMiss):
            alert = template_miss_alert(rule, resolved, raised_at=event.occurred_at)
            self._alert(rule, com_id, alert)
            return
        missing = [name for name in resolved.required_fields if not _present(data, name)]
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

        key = suppression_key(event, rule.communication_type, data)
        previous_entry = self.emitted_here.get(key)
        if previous_entry is None:
            previous_entry = self.state.get(key)
        decision = decide(
            previous_entry,
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

        channel = choice.channel.value
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
                recipient=_recipient(self.preference, choice.channel),
                data=dict(sorted(data.items())),
                regulatory=rule.regulatory,
                disclaimer_id=resolved.disclaimer_id,
                disclaimer_version=resolved.disclaimer_version,
                created_at=event.occurred_at,
            )
        )
        emitted = decision.entry
        if emitted is not None:
            self.updates[key] = emitted
        else:
            emitted = SuppressionEntry(
                communication_id=com_id,
                source_event_id=event.event_id,
                emitted_at=event.occurred_at,
                expires_at=event.occurred_at + max(rule.suppression_window_ms, 0),
            )
        # even when the stored entry stays (a late, older event), a sibling rule of this event
        # with the same key must see this emission
        self.emitted_here[key] = emitted
        summary = (
            f"{rule.communication_type} via {channel} from template "
            f"{resolved.template_id} v{resolved.version} ({resolved.language})"
        )
        # the base and command details of route_event, literally in sorted key order
        self._record(
            AuditKind.COMMAND_EMITTED,
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


def route_indexed(
    event: BusinessEvent,
    *,
    source_topic: str,
    preference: Preference | None,
    index: ReferenceIndex,
    suppression_state: Mapping[str, SuppressionEntry],
    now_ms: int | None = None,
) -> RoutingOutcome:
    """Decide everything for one event (see the module docstring). Never raises on bad data.

    ``preference`` is the customer's (None when unknown); ``index`` the rules and templates as
    of this event (:class:`~streams.domain.reference_index.ReferenceIndex`);
    ``suppression_state`` the customer's suppression entries (not modified: see
    :meth:`RoutingOutcome.apply_to`). ``now_ms`` (optional, e.g. stream time) only selects
    ``expired_keys`` for clean-up: it never changes a decision.
    """
    if not surely_valid(event):
        rejection = validate_event(event)
        if rejection is not None:
            return RoutingOutcome(source_event_id=event.event_id, rejection=rejection)
    router = _Router(
        event,
        source_topic=source_topic,
        preference=preference,
        state=suppression_state,
        index=index,
    )
    for rule in router.fired():
        router.route(rule)
    expired: tuple[str, ...] = ()
    if now_ms is not None and suppression_state:
        updates = router.updates
        expired = tuple(
            sorted(
                key
                for key, entry in suppression_state.items()
                if entry.expires_at <= now_ms and key not in updates
            )
        )
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

    The same as :func:`route_indexed` with ``ReferenceIndex(rules, templates_by_id)``, built
    for this one call.
    """
    return route_indexed(
        event,
        source_topic=source_topic,
        preference=preference,
        index=ReferenceIndex(rules, templates_by_id),
        suppression_state=suppression_state,
        now_ms=now_ms,
    )
