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
- Route one customer's events in order, each with the state its predecessor left (that is what
  makes replays repeat their decisions, see above).
- ``now_ms`` makes each call scan the customer's entries for ``expired_keys``: pass it with
  every event (as the worker does) or only now and then; decisions are the same either
  way, only the clean-up candidates differ.
- :func:`route_event` is the same decision taking every rule and template per call; it builds a
  throw-away index each time, so a worker routing many events should hold an index instead.
- Records: :mod:`streams.codec` encodes the outcome's commands, alerts and (chained, see
  :func:`streams.audit.chain.append`) audit records.

Both give equal outcomes for equal inputs; ``tests/domain/test_routing_equivalence.py`` checks
them against the decision as first written (``benchmarks/baseline``) on generated inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streams.domain.catalogue import validate_event
from streams.domain.fast_validation import surely_valid
from streams.domain.outcome import (
    RoutingOutcome,
    SuppressedCommunication,
    UndeliverableCommunication,
)
from streams.domain.records import BusinessEvent, CommRule, Preference, TemplateVersion
from streams.domain.reference_index import ReferenceIndex
from streams.domain.router import Router
from streams.domain.suppression import SuppressionEntry

__all__ = [
    "ReferenceIndex",
    "RoutingOutcome",
    "SuppressedCommunication",
    "UndeliverableCommunication",
    "route_event",
    "route_indexed",
]


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
    router = Router(
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
        stale = [
            key
            for key, entry in suppression_state.items()
            if entry.expires_at <= now_ms and key not in updates
        ]
        if stale:
            expired = tuple(sorted(stale))
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
