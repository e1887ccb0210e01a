"""The delivery state of one communication, and what each Exstream delivery event does to it.

The routing worker joins ``exstream.delivery-events.v1`` with a table of
:class:`CommunicationState` keyed by communication id; this module is its whole decision, pure
(no Kafka, no I/O, no clock). :func:`start` creates the state when a command is submitted,
:func:`on_delivery_event` applies one event, :func:`on_sla_check` is called by a timer, and
:func:`dumps` / :func:`loads` encode the state for the table (orjson).

**Status path and ranks.** The status is ``SUBMITTED`` (rank 0) until the first event, then a
:class:`~streams.domain.records.DeliveryStatus` on the communication's channel path:

========  ==========  =========  ======================  ========================  ===========
channel   1           2          3                       4 (delivery confirmed)    5
========  ==========  =========  ======================  ========================  ===========
PRINT     ACCEPTED    COMPOSED   PRINTED                 MAILED
EMAIL     ACCEPTED    COMPOSED   EMAIL_SENT              EMAIL_DELIVERED           EMAIL_OPENED
WEB       ACCEPTED    COMPOSED                           WEB_POSTED
SMS       ACCEPTED    COMPOSED                           SMS_DELIVERED
PUSH      ACCEPTED    COMPOSED                           PUSH_DELIVERED
========  ==========  =========  ======================  ========================  ===========

``FAILED`` (any channel) and ``EMAIL_BOUNCED`` (EMAIL only) are *terminal*, rank 9: reachable from
every non-terminal status (a bounce may follow a delivery report), left by nothing.

**One event** is judged in this order; the first match decides, and an ignored event returns
``state=None`` (store nothing), no records, and ``ignored_reason`` (an :class:`IgnoredReason`):

1. no state: ``UNKNOWN_COMMUNICATION`` (the agent parks the event until the command is
   registered, at most 32 per communication id and an event id once; one beyond is
   dead-lettered as ``PARKED_LIMIT``: see :mod:`streams.routing.tracking`);
2. the event names another communication or customer: ``COMMUNICATION_MISMATCH``; another channel
   than the command's: ``CHANNEL_MISMATCH``; a status not on the channel's path (MAILED for an
   email, an unknown status): ``NOT_ON_CHANNEL_PATH``;
3. its event id was seen before (the ids of the last :data:`MAX_SEEN_EVENT_IDS` events that
   changed the state are kept; an ignored event is not remembered, and is judged the same way
   again when it repeats): ``DUPLICATE_EVENT``;
4. a *late milestone* is recorded as history (see below), without changing the status;
5. the status is the current one: ``ALREADY_REACHED``; the current status is terminal:
   ``TERMINAL``; its rank is below the current one: ``STALE`` (out of order: an event that skipped
   ahead, e.g. MAILED before PRINTED, moved the status forward and the late PRINTED changes
   nothing);
6. otherwise the status moves forward.

**An accepted change** emits exactly one :class:`CommunicationStatus` (``previous_status`` set,
``updated_at`` the event's time) and one STATUS_CHANGED :class:`AuditRecord`, plus:

- ``COMPOSED`` (the first time): the *production* record, a :class:`DocumentMetadata` (origin
  ``STREAM``, or ``ON_DEMAND`` for the command of a portal request, see
  :mod:`streams.domain.document_requests`; ``produced_at`` the event's time, ``delivered_at``
  when already known) and a DOCUMENT_PRODUCED audit record;
- a delivery confirmation (rank 4): ``delivered_at`` and a :class:`DocumentMetadata` again with
  ``delivered_at`` set and the same document id (the topic is keyed per customer and downstream
  keeps the latest record per document). If COMPOSED has not arrived yet, ``produced_at`` in that
  record is the delivery time (a document is produced no later than it is delivered) until the
  late COMPOSED corrects it;
- ``FAILED``: the status carries the event's ``exception_code`` / ``exception_text``; there is no
  fallback (a composition or dispatch failure would fail again with the same template and data);
- ``EMAIL_BOUNCED``: the fallback decision below.

**Late milestones are history, not status.** COMPOSED and the delivery confirmation carry facts
(the document exists; it was delivered) that must not be lost because an event overtook them. So
a COMPOSED arriving after a higher status, even a terminal one, still records ``document_id`` and
``produced_at`` and emits the production record; a delivery confirmation arriving after a higher
status (EMAIL_OPENED before EMAIL_DELIVERED) records ``delivered_at`` and emits the delivered
metadata, unless the communication has failed or bounced. Neither emits a status or a
STATUS_CHANGED audit record: the status did not change. Consequence: every order of one channel's
events ends in the same state (apart from ``seen_event_ids``, the arrival history) and the same
latest metadata record, and each status is emitted at most once.

**Fallback after a bounce** (hard or soft alike: Exstream's mail transfer agent retries a soft
bounce before it reports one, so a reported bounce, either type, ends the email path and the
customer has not received the document). The channel is
:func:`streams.domain.channel.fallback_channel`, the project's single fallback policy: PRINT with a
valid postal address for a customer who is not paperless, or for any customer when the
communication is regulatory; else WEB when the customer consented to it. A *paperless* customer is
not sent paper after an ordinary email bounces: paperless is the customer's opt-out from paper,
and the preference model (``channel.py``) says a bounce does not override it; such a customer gets
the portal copy with web consent, else nothing. When a fallback is made:

- a :class:`CompositionCommand` for the same template version, language and data, with the
  deterministic id ``digest_id("com", "communication-fallback", original id, channel)``, the
  fallback channel, a recipient holding only what that channel needs (the postal address for
  PRINT, nothing for WEB) and ``created_at`` the bounce's time; the agent emits it and starts its
  own state when it is submitted (it has its own SLA);
- ``fallback_id`` in the original's state;
- the bounce's status has ``exception_code`` ``EMAIL_BOUNCED`` and a text naming the bounce type
  and the fallback; a second status, for the *new* communication, with status ``SUBMITTED``,
  ``fallback_of`` the original id and no previous status;
- a COMMAND_EMITTED audit record for the fallback.

With no eligible fallback (no preference, no valid address, paperless without web consent) the
bounce's status carries ``exception_code`` ``UNDELIVERABLE_NO_FALLBACK`` and the reason, so Air
Inc. (which owns the bad contact data) sees the exception on the communication's latest status;
the status stays EMAIL_BOUNCED (what happened), the code says what it means.

**SLA.** :func:`start` sets ``sla_deadline = submitted_at + sla_ms[channel]`` (a channel missing
from ``sla_ms`` uses :data:`DEFAULT_SLA_MS`, else the longest of those). :func:`on_sla_check` at
``now_ms > sla_deadline`` emits, once, an exception status (the current status unchanged,
``exception_code`` ``SLA_BREACHED``) and a STATUS_CHANGED audit record, and sets ``sla_breached``.
It does nothing once the delivery is confirmed (rank 4 or more, or ``delivered_at`` known), after
a terminal status, before the deadline, or when already breached. A breach does not stop later
events from being applied.

**Audit records** hold ids, statuses and codes only (communication, event, job, document ids,
channel, bounce type, exception code), never an address, email, phone or Exstream's free
``exception_text`` (which may quote contact data). Audit ids are deterministic per communication
and status (``digest_id("aud", "audit", kind, communication id, status)``), DOCUMENT_PRODUCED and
COMMAND_EMITTED use :func:`~streams.domain.ids.audit_id`.

**Deterministic.** Every time comes from the event or an argument, every id from a hash, so
replaying the same events on the same state yields identical transitions, which downstream
idempotency discards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from streams.domain.channel import ChannelChoice, fallback_channel
from streams.domain.document_requests import ORIGIN as REQUEST_ORIGIN
from streams.domain.document_requests import REQUEST_RULE_ID
from streams.domain.ids import audit_id, digest_id
from streams.domain.records import (
    AuditKind,
    AuditRecord,
    Channel,
    CommunicationStatus,
    CompositionCommand,
    DeliveryEvent,
    DocumentMetadata,
    PostalAddress,
    Preference,
    Recipient,
)
from streams.domain.records import DeliveryStatus as S

SUBMITTED = "SUBMITTED"
"""The status of a submitted communication before Exstream reported anything."""
ORIGIN = "STREAM"
MAX_SEEN_EVENT_IDS = 32
"""Accepted event ids remembered per communication for duplicate detection."""
STATE_VERSION = 1
"""Version of the :func:`dumps` encoding."""

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DEFAULT_SLA_MS: Mapping[str, int] = {
    Channel.PRINT: 5 * DAY_MS,
    Channel.EMAIL: HOUR_MS,
    Channel.WEB: HOUR_MS,
    Channel.SMS: 15 * 60_000,
    Channel.PUSH: 15 * 60_000,
}
"""Deadlines from submission to delivery confirmation when ``sla_ms`` has no entry."""

EXCEPTION_BOUNCED = "EMAIL_BOUNCED"
EXCEPTION_NO_FALLBACK = "UNDELIVERABLE_NO_FALLBACK"
EXCEPTION_SLA = "SLA_BREACHED"


class IgnoredReason(StrEnum):
    UNKNOWN_COMMUNICATION = "UNKNOWN_COMMUNICATION"
    COMMUNICATION_MISMATCH = "COMMUNICATION_MISMATCH"
    CHANNEL_MISMATCH = "CHANNEL_MISMATCH"
    NOT_ON_CHANNEL_PATH = "NOT_ON_CHANNEL_PATH"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"
    ALREADY_REACHED = "ALREADY_REACHED"
    TERMINAL = "TERMINAL"
    STALE = "STALE"
    # on_sla_check
    SLA_NOT_DUE = "SLA_NOT_DUE"
    SLA_ALREADY_BREACHED = "SLA_ALREADY_BREACHED"
    DELIVERED = "DELIVERED"


PATHS: Mapping[str, tuple[S, ...]] = {
    Channel.PRINT: (S.ACCEPTED, S.COMPOSED, S.PRINTED, S.MAILED),
    Channel.EMAIL: (S.ACCEPTED, S.COMPOSED, S.EMAIL_SENT, S.EMAIL_DELIVERED, S.EMAIL_OPENED),
    Channel.WEB: (S.ACCEPTED, S.COMPOSED, S.WEB_POSTED),
    Channel.SMS: (S.ACCEPTED, S.COMPOSED, S.SMS_DELIVERED),
    Channel.PUSH: (S.ACCEPTED, S.COMPOSED, S.PUSH_DELIVERED),
}
"""Each channel's non-terminal statuses in order (an unknown channel: ACCEPTED, COMPOSED)."""

TERMINAL_RANK = 9
DELIVERED_RANK = 4
RANKS: Mapping[str, int] = {
    SUBMITTED: 0,
    S.ACCEPTED: 1,
    S.COMPOSED: 2,
    S.PRINTED: 3,
    S.EMAIL_SENT: 3,
    S.MAILED: DELIVERED_RANK,
    S.EMAIL_DELIVERED: DELIVERED_RANK,
    S.WEB_POSTED: DELIVERED_RANK,
    S.SMS_DELIVERED: DELIVERED_RANK,
    S.PUSH_DELIVERED: DELIVERED_RANK,
    S.EMAIL_OPENED: 5,
    S.FAILED: TERMINAL_RANK,
    S.EMAIL_BOUNCED: TERMINAL_RANK,
}
TERMINAL: frozenset[str] = frozenset({S.FAILED, S.EMAIL_BOUNCED})
CONFIRMATIONS: frozenset[str] = frozenset(
    {S.MAILED, S.EMAIL_DELIVERED, S.WEB_POSTED, S.SMS_DELIVERED, S.PUSH_DELIVERED}
)
"""The status that confirms delivery on each channel."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommunicationState:
    """What is known of one submitted communication (the agent's table value)."""

    command: CompositionCommand
    """What was sent: channel, recipient, template, ..."""
    status: str
    """``SUBMITTED`` or the :class:`~streams.domain.records.DeliveryStatus` reached."""
    seen_event_ids: tuple[str, ...] = ()
    """Ids of the last :data:`MAX_SEEN_EVENT_IDS` events that changed the state, oldest first."""
    document_id: str | None = None
    produced_at: int | None = None
    """Time of the COMPOSED event (None until it arrived)."""
    delivered_at: int | None = None
    """Time of the delivery confirmation (None until it arrived)."""
    updated_at: int
    """Time of the last status change (the event's), or ``now_ms`` of an SLA breach; recording a
    late milestone does not change it."""
    fallback_id: str | None = None
    """Communication id of the fallback made after a bounce."""
    sla_deadline: int
    sla_breached: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """What one event (or SLA check) did. Emit the records, then store ``state`` if not None."""

    state: CommunicationState | None
    """The new state to store; None: nothing changed."""
    statuses: tuple[CommunicationStatus, ...] = ()
    """For ``air.communication-status.v1``."""
    metadata: tuple[DocumentMetadata, ...] = ()
    """For ``air.document-metadata.v1``."""
    fallback_commands: tuple[CompositionCommand, ...] = ()
    """For ``exstream.composition-commands.v1``."""
    audit: tuple[AuditRecord, ...] = ()
    ignored_reason: str | None = None
    """Set when the input changed nothing: an :class:`IgnoredReason`."""


def rank(status: str) -> int:
    """The status's rank on its path (0 for SUBMITTED or an unknown status)."""
    return RANKS.get(status, 0)


def path_of(channel: str) -> frozenset[str]:
    """Every status a communication of ``channel`` may report (terminal ones included)."""
    statuses: set[str] = {*PATHS.get(channel, (S.ACCEPTED, S.COMPOSED)), S.FAILED}
    if channel == Channel.EMAIL:
        statuses.add(S.EMAIL_BOUNCED)
    return frozenset(statuses)


def is_delivered(state: CommunicationState) -> bool:
    """Delivery is confirmed (a later status such as EMAIL_OPENED implies it)."""
    return state.delivered_at is not None or (
        state.status not in TERMINAL and rank(state.status) >= DELIVERED_RANK
    )


def fallback_communication_id(original_id: str, channel: str) -> str:
    """The deterministic id of the fallback of ``original_id`` by ``channel``."""
    return digest_id("com", "communication-fallback", original_id, channel)


def start(
    command: CompositionCommand, *, submitted_at: int, sla_ms: Mapping[str, int]
) -> CommunicationState:
    """The state of ``command`` just submitted at ``submitted_at`` (see SLA in the docstring)."""
    window = sla_ms.get(command.channel)
    if window is None:
        window = DEFAULT_SLA_MS.get(command.channel, max(DEFAULT_SLA_MS.values()))
    return CommunicationState(
        command=command,
        status=SUBMITTED,
        updated_at=submitted_at,
        sla_deadline=submitted_at + window,
    )


# --------------------------------------------------------------------------- events


def _ignored(reason: IgnoredReason) -> Transition:
    return Transition(state=None, ignored_reason=reason.value)


def _remember(seen: tuple[str, ...], event_id: str) -> tuple[str, ...]:
    return (*seen, event_id)[-MAX_SEEN_EVENT_IDS:]


def _status_audit_id(kind: str, com_id: str, what: str) -> str:
    return digest_id("aud", "audit", kind, com_id, what)


def _metadata(state: CommunicationState, *, produced_at: int) -> DocumentMetadata | None:
    if state.document_id is None:
        return None
    command = state.command
    return DocumentMetadata(
        document_id=state.document_id,
        communication_id=command.communication_id,
        customer_id=command.customer_id,
        account_id=command.account_id,
        case_id=command.case_id,
        template_id=command.template_id,
        template_version=command.template_version,
        communication_type=command.communication_type,
        channel=command.channel,
        language=command.language,
        origin=REQUEST_ORIGIN if command.rule_id == REQUEST_RULE_ID else ORIGIN,
        produced_at=produced_at,
        delivered_at=state.delivered_at,
    )


def _audit(
    state: CommunicationState,
    *,
    audit_id_: str,
    kind: AuditKind,
    occurred_at: int,
    summary: str,
    details: Mapping[str, str | None],
    communication_id: str | None = None,
) -> AuditRecord:
    command = state.command
    return AuditRecord(
        audit_id=audit_id_,
        kind=kind.value,
        customer_id=command.customer_id,
        case_id=command.case_id,
        communication_id=communication_id or command.communication_id,
        source_event_id=command.source_event_id,
        occurred_at=occurred_at,
        summary=summary,
        details={k: v for k, v in sorted(details.items()) if v is not None},
    )


def _event_details(event: DeliveryEvent) -> dict[str, str | None]:
    return {
        "delivery_event_id": event.event_id,
        "job_id": event.job_id,
        "document_id": event.document_id,
        "channel": event.channel,
    }


class _Builder:
    """Collects the records of one accepted event (never escapes :func:`on_delivery_event`)."""

    def __init__(self, state: CommunicationState, event: DeliveryEvent) -> None:
        self.state = state
        self.event = event
        self.statuses: list[CommunicationStatus] = []
        self.metadata: list[DocumentMetadata] = []
        self.commands: list[CompositionCommand] = []
        self.audit: list[AuditRecord] = []

    def transition(self) -> Transition:
        return Transition(
            state=self.state,
            statuses=tuple(self.statuses),
            metadata=tuple(self.metadata),
            fallback_commands=tuple(self.commands),
            audit=tuple(self.audit),
        )

    def record_production(self) -> None:
        """COMPOSED: document id, production time, metadata and DOCUMENT_PRODUCED (once)."""
        event = self.event
        self.state = dataclasses.replace(
            self.state,
            document_id=event.document_id or self.state.document_id,
            produced_at=event.occurred_at,
        )
        metadata = _metadata(self.state, produced_at=event.occurred_at)
        if metadata is not None:
            self.metadata.append(metadata)
        com_id = self.state.command.communication_id
        self.audit.append(
            _audit(
                self.state,
                audit_id_=audit_id(AuditKind.DOCUMENT_PRODUCED, com_id),
                kind=AuditKind.DOCUMENT_PRODUCED,
                occurred_at=event.occurred_at,
                summary=f"document produced for {com_id} from template "
                f"{self.state.command.template_id} v{self.state.command.template_version}",
                details={
                    **_event_details(event),
                    "document_id": self.state.document_id,
                    "template_id": self.state.command.template_id,
                    "template_version": str(self.state.command.template_version),
                    "communication_type": self.state.command.communication_type,
                    "language": self.state.command.language,
                },
            )
        )

    def record_delivery(self) -> None:
        """Delivery confirmation: ``delivered_at`` and the delivered metadata."""
        event = self.event
        self.state = dataclasses.replace(
            self.state,
            document_id=self.state.document_id or event.document_id,
            delivered_at=event.occurred_at,
        )
        produced_at = self.state.produced_at
        metadata = _metadata(
            self.state, produced_at=event.occurred_at if produced_at is None else produced_at
        )
        if metadata is not None:
            self.metadata.append(metadata)

    def change_status(self, preference: Preference | None, allowed: Collection[str] | None) -> None:
        event = self.event
        previous = self.state.status
        self.state = dataclasses.replace(
            self.state,
            status=event.status,
            document_id=self.state.document_id or event.document_id,
            updated_at=event.occurred_at,
        )
        exception_code = event.exception_code if event.status == S.FAILED else None
        exception_text = event.exception_text if event.status == S.FAILED else None
        fallback: CompositionCommand | None = None
        if event.status == S.EMAIL_BOUNCED:
            fallback, exception_code, exception_text = self._fallback(preference, allowed)

        command = self.state.command
        self.statuses.append(
            CommunicationStatus(
                communication_id=command.communication_id,
                customer_id=command.customer_id,
                case_id=command.case_id,
                source_event_id=command.source_event_id,
                channel=command.channel,
                status=event.status,
                previous_status=previous,
                exception_code=exception_code,
                exception_text=exception_text,
                updated_at=event.occurred_at,
            )
        )
        self.audit.append(
            _audit(
                self.state,
                audit_id_=_status_audit_id(
                    AuditKind.STATUS_CHANGED, command.communication_id, event.status
                ),
                kind=AuditKind.STATUS_CHANGED,
                occurred_at=event.occurred_at,
                summary=f"{command.communication_id}: {previous} -> {event.status}",
                details={
                    **_event_details(event),
                    "status": event.status,
                    "previous_status": previous,
                    "bounce_type": event.bounce_type if event.status == S.EMAIL_BOUNCED else None,
                    "exception_code": exception_code,
                    "fallback_communication_id": fallback.communication_id if fallback else None,
                    "fallback_channel": fallback.channel if fallback else None,
                },
            )
        )
        if fallback is not None:
            self._emit_fallback(fallback)

    def _fallback(
        self, preference: Preference | None, allowed: Collection[str] | None
    ) -> tuple[CompositionCommand | None, str, str]:
        """The fallback command (or None) and the bounce status's exception code and text."""
        event = self.event
        command = self.state.command
        bounce = event.bounce_type or "UNKNOWN"
        choice = fallback_channel(
            preference, command.channel, regulatory=command.regulatory, allowed=allowed
        )
        if not isinstance(choice, ChannelChoice):
            text = f"{bounce} bounce, no fallback: {choice.code.value}: {choice.reason}"
            return None, EXCEPTION_NO_FALLBACK, text
        if preference is None:  # not reachable: fallback_channel chooses only from a preference
            return None, EXCEPTION_NO_FALLBACK, f"{bounce} bounce, no fallback: NO_PREFERENCE"
        fallback_id = fallback_communication_id(command.communication_id, choice.channel.value)
        recipient = (
            Recipient(postal_address=preference.postal_address)
            if choice.channel is Channel.PRINT
            else Recipient()
        )
        fallback = dataclasses.replace(
            command,
            communication_id=fallback_id,
            channel=choice.channel.value,
            recipient=recipient,
            data=dict(command.data),
            created_at=event.occurred_at,
        )
        self.state = dataclasses.replace(self.state, fallback_id=fallback_id)
        text = f"{bounce} bounce, fallback {fallback_id} by {choice.channel.value}"
        return fallback, EXCEPTION_BOUNCED, text

    def _emit_fallback(self, fallback: CompositionCommand) -> None:
        event = self.event
        original = self.state.command.communication_id
        self.commands.append(fallback)
        self.statuses.append(
            CommunicationStatus(
                communication_id=fallback.communication_id,
                customer_id=fallback.customer_id,
                case_id=fallback.case_id,
                source_event_id=fallback.source_event_id,
                channel=fallback.channel,
                status=SUBMITTED,
                previous_status=None,
                fallback_of=original,
                updated_at=event.occurred_at,
            )
        )
        self.audit.append(
            _audit(
                self.state,
                audit_id_=audit_id(AuditKind.COMMAND_EMITTED, fallback.communication_id),
                kind=AuditKind.COMMAND_EMITTED,
                occurred_at=event.occurred_at,
                summary=f"fallback {fallback.communication_id} by {fallback.channel} after "
                f"{original} bounced",
                communication_id=fallback.communication_id,
                details={
                    "fallback_of": original,
                    "delivery_event_id": event.event_id,
                    "bounce_type": event.bounce_type,
                    "channel": fallback.channel,
                    "template_id": fallback.template_id,
                    "template_version": str(fallback.template_version),
                    "language": fallback.language,
                    "regulatory": "true" if fallback.regulatory else "false",
                },
            )
        )


def _late_milestone(state: CommunicationState, event: DeliveryEvent) -> bool:
    """A COMPOSED or delivery confirmation overtaken by a higher status, not yet recorded."""
    if event.status == state.status or rank(event.status) >= rank(state.status):
        return False
    if event.status == S.COMPOSED:
        return state.produced_at is None
    return (
        event.status in CONFIRMATIONS
        and state.delivered_at is None
        and state.status not in TERMINAL
    )


def on_delivery_event(
    state: CommunicationState | None,
    event: DeliveryEvent,
    *,
    preference: Preference | None,
    template_channels: Collection[str] | None = None,
) -> Transition:
    """Apply one delivery event to the state (see the module docstring). Never raises.

    ``preference`` is the customer's current one (None when unknown), used only for a bounce's
    fallback; ``template_channels`` the template's channel list when known (None or empty: all).
    """
    if state is None:
        return _ignored(IgnoredReason.UNKNOWN_COMMUNICATION)
    command = state.command
    if (
        event.communication_id != command.communication_id
        or event.customer_id != command.customer_id
    ):
        return _ignored(IgnoredReason.COMMUNICATION_MISMATCH)
    if event.channel != command.channel:
        return _ignored(IgnoredReason.CHANNEL_MISMATCH)
    if event.status not in path_of(command.channel):
        return _ignored(IgnoredReason.NOT_ON_CHANNEL_PATH)
    if event.event_id in state.seen_event_ids:
        return _ignored(IgnoredReason.DUPLICATE_EVENT)

    if _late_milestone(state, event):
        builder = _Builder(
            dataclasses.replace(
                state, seen_event_ids=_remember(state.seen_event_ids, event.event_id)
            ),
            event,
        )
        if event.status == S.COMPOSED:
            builder.record_production()
        else:
            builder.record_delivery()
        return builder.transition()

    if event.status == state.status:
        return _ignored(IgnoredReason.ALREADY_REACHED)
    if state.status in TERMINAL:
        return _ignored(IgnoredReason.TERMINAL)
    if rank(event.status) < rank(state.status):
        return _ignored(IgnoredReason.STALE)

    builder = _Builder(
        dataclasses.replace(state, seen_event_ids=_remember(state.seen_event_ids, event.event_id)),
        event,
    )
    builder.change_status(preference, template_channels)
    if event.status == S.COMPOSED and state.produced_at is None:
        builder.record_production()
    if event.status in CONFIRMATIONS:
        builder.record_delivery()
    return builder.transition()


# --------------------------------------------------------------------------- SLA


def on_sla_check(state: CommunicationState, *, now_ms: int) -> Transition:
    """Report a missed delivery deadline once (see SLA in the module docstring)."""
    if state.sla_breached:
        return _ignored(IgnoredReason.SLA_ALREADY_BREACHED)
    if state.status in TERMINAL:
        return _ignored(IgnoredReason.TERMINAL)
    if is_delivered(state):
        return _ignored(IgnoredReason.DELIVERED)
    if now_ms <= state.sla_deadline:
        return _ignored(IgnoredReason.SLA_NOT_DUE)
    command = state.command
    new_state = dataclasses.replace(
        state, sla_breached=True, updated_at=max(state.updated_at, now_ms)
    )
    status = CommunicationStatus(
        communication_id=command.communication_id,
        customer_id=command.customer_id,
        case_id=command.case_id,
        source_event_id=command.source_event_id,
        channel=command.channel,
        status=state.status,
        previous_status=state.status,
        exception_code=EXCEPTION_SLA,
        exception_text=f"no delivery confirmation by the deadline {state.sla_deadline} "
        f"(status {state.status})",
        updated_at=now_ms,
    )
    audit = _audit(
        state,
        audit_id_=_status_audit_id(
            AuditKind.STATUS_CHANGED, command.communication_id, EXCEPTION_SLA
        ),
        kind=AuditKind.STATUS_CHANGED,
        occurred_at=now_ms,
        summary=f"{command.communication_id}: SLA breached in status {state.status}",
        details={
            "status": state.status,
            "channel": command.channel,
            "exception_code": EXCEPTION_SLA,
            "sla_deadline": str(state.sla_deadline),
        },
    )
    return Transition(state=new_state, statuses=(status,), audit=(audit,))


# --------------------------------------------------------------------------- encoding


def dumps(state: CommunicationState) -> bytes:
    """The state as JSON bytes (keys sorted at every level, so equal states give equal bytes).

    The bytes ``{"v": STATE_VERSION, **dataclasses.asdict(state)}`` written with sorted keys gave,
    about six times faster (once per command the worker tracks): orjson writes the dataclasses
    natively, in field order, without ``asdict``'s deep copy; read back as dicts, they are
    written again sorted."""
    payload = orjson.loads(orjson.dumps(state))
    payload["v"] = STATE_VERSION
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


_T = TypeVar("_T")


def _build(cls: type[_T], values: Mapping[str, Any]) -> _T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in names})


def loads(data: bytes) -> CommunicationState:
    """The state :func:`dumps` encoded. Raises ``ValueError`` on anything else."""
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != STATE_VERSION:
            raise ValueError("not a communication state of encoding version 1")
        command = dict(raw["command"])
        recipient = dict(command["recipient"])
        address = recipient.get("postal_address")
        recipient["postal_address"] = None if address is None else _build(PostalAddress, address)
        command["recipient"] = _build(Recipient, recipient)
        state = dict(raw)
        state["command"] = _build(CompositionCommand, command)
        state["seen_event_ids"] = tuple(raw["seen_event_ids"])
        return _build(CommunicationState, state)
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a communication state: {type(exc).__name__}") from exc
