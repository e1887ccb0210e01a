"""What routing one event decided: :class:`RoutingOutcome` (see :mod:`streams.domain.routing`)."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from streams.domain.catalogue import EventRejection
from streams.domain.channel import UndeliverableCode
from streams.domain.records import AlignmentAlert, AuditRecord, CompositionCommand
from streams.domain.suppression import SuppressionEntry


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
