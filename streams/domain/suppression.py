"""Duplicate suppression: one communication per business fact within the rule's window.

**What counts as "the same communication"** is the *suppression key*, a hash of

- the customer id,
- the rule's ``communication_type`` (not the rule id: two overlapping rules of one communication
  type yield one communication, the higher-priority rule's, since rules are evaluated by priority),
- the event type,
- the business object: ``account_id`` for account events, ``case_id`` for case events,
- the event type's natural key from the catalogue (e.g. ``statement_period`` for
  BILLING_CYCLE_CLOSED, ``claim_number`` and ``outcome`` for CLAIM_DECIDED), read from the event.

So two BILLING_CYCLE_CLOSED events for the same account and statement period, published twice by
Air Inc., produce one statement; a new statement period produces a new one.

**Replays are not suppression.** The key deliberately excludes the event id, and the state entry
remembers the *communication id* it emitted (a hash of event id and rule id). Re-processing the same
event for the same rule therefore finds its own entry and emits again, with the same deterministic
communication id, which downstream idempotency discards. A replay thus yields exactly the decision
it got the first time, instead of being "suppressed" into a different outcome. This holds for
every emitted event however much later it is replayed, because (for a fixed window) entries only
move forward, by at least the window. (A *suppressed* event replayed alone, after its key's entry
moved on to a newer emission, is judged against that newer entry and may then be emitted;
replaying the stream in order rebuilds the state and repeats every decision.)

**Time** is the events' ``occurred_at``, never the wall clock, so replays decide identically. An
event is suppressed when an entry exists for its key, belongs to another communication, and
``|occurred_at - entry.emitted_at| < window_ms`` (absolute: an older event arriving late inside the
window is a duplicate too). A window of 0 or less disables suppression. After an emission the entry
is set to the emitted event, except that an emission *older* than the entry (outside the window, in
the past) leaves the newer entry in place, since later events must compare with the latest.

**State** is a plain mapping ``key -> SuppressionEntry`` (one per customer in the routing table).
Entries carry their expiry; :func:`prune` drops those expired at a given time. Pruning an entry
forgets it: an event replayed after its entry was pruned is judged afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from streams.domain.catalogue import event_data, spec_for
from streams.domain.ids import digest_id
from streams.domain.records import AccountEvent, BusinessEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressionEntry:
    """The last communication emitted for one suppression key."""

    communication_id: str
    source_event_id: str
    emitted_at: int
    """The emitted event's ``occurred_at``."""
    expires_at: int
    """``emitted_at + window``: after this the entry no longer suppresses anything newer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressionDecision:
    emit: bool
    entry: SuppressionEntry | None
    """The entry to store under the key when it changes, else None."""
    reason: str | None = None
    """Why the event is suppressed (None when emitted); no personal data."""
    previous: SuppressionEntry | None = None
    """The entry that suppressed it."""


def suppression_key(
    event: BusinessEvent, communication_type: str, data: Mapping[str, str] | None = None
) -> str:
    """The key identifying "the same communication" for ``event`` (see the module docstring).
    ``data`` is ``event_data(event)`` when precomputed."""
    business_id = event.account_id if isinstance(event, AccountEvent) else event.case_id
    spec = spec_for(event.event_type)
    fields = event_data(event) if data is None else data
    natural = [fields.get(name) for name in spec.natural_key] if spec is not None else []
    return digest_id(
        "sup",
        "suppression",
        event.customer_id,
        communication_type,
        event.event_type,
        business_id,
        *natural,
    )


def decide(
    entry: SuppressionEntry | None,
    *,
    communication_id: str,
    source_event_id: str,
    occurred_at: int,
    window_ms: int,
) -> SuppressionDecision:
    """Whether to emit ``communication_id`` given the key's current ``entry``."""
    fresh = SuppressionEntry(
        communication_id=communication_id,
        source_event_id=source_event_id,
        emitted_at=occurred_at,
        expires_at=occurred_at + max(window_ms, 0),
    )
    if entry is None:
        return SuppressionDecision(emit=True, entry=fresh)
    if entry.communication_id == communication_id:
        return SuppressionDecision(emit=True, entry=None)  # a replay: same decision, same id
    if window_ms > 0 and abs(occurred_at - entry.emitted_at) < window_ms:
        return SuppressionDecision(
            emit=False,
            entry=None,
            reason=(
                f"same communication already emitted {abs(occurred_at - entry.emitted_at)} ms "
                f"{'earlier' if occurred_at >= entry.emitted_at else 'later'} "
                f"(window {window_ms} ms)"
            ),
            previous=entry,
        )
    if occurred_at < entry.emitted_at:
        return SuppressionDecision(emit=True, entry=None)
    return SuppressionDecision(emit=True, entry=fresh)


def prune(state: Mapping[str, SuppressionEntry], now_ms: int) -> dict[str, SuppressionEntry]:
    """``state`` without the entries that expired at or before ``now_ms``."""
    return {key: entry for key, entry in state.items() if entry.expires_at > now_ms}


def expired_keys(state: Mapping[str, SuppressionEntry], now_ms: int) -> list[str]:
    """The keys :func:`prune` would drop at ``now_ms``, sorted."""
    return sorted(key for key, entry in state.items() if entry.expires_at <= now_ms)
