"""Delivery tracking (flow 3 and the metadata of flow 7): Exstream's delivery events joined with
each communication's state, on the routing worker.

- **register** starts each communication's state (:func:`streams.domain.delivery.start`) in the
  ``communications`` table when its command is emitted (by routing, or as a fallback here), in
  the transaction that sends the command: the state exists before the command is visible to the
  sink, so without re-reading the commands topic. (The commands topic is the worker's output;
  a command another producer writes there is submitted by the sink but not tracked.)
- The **delivery agent** reads ``exstream.delivery-events.v1`` and applies
  :func:`~streams.domain.delivery.on_delivery_event`: statuses go to
  ``air.communication-status.v1``, document metadata to ``air.document-metadata.v1``, fallback
  commands (email bounced -> print/web) back to the commands topic, and an audit record for each.
  An event for a communication the tracker does not know is *parked* (see below) and applied if
  its command is registered later.
- An **SLA timer** reports communications with no delivery confirmation by their deadline
  (once each).

**Parking.** Exstream can report on a communication before the tracker knows it (the command's
transaction is not committed yet, or the worker replays from behind), so such an event waits in
the ``parked-delivery-events`` table (communication id -> JSON list of base64 canonical Avro
``DeliveryEvent``; the canonical encoding, not the record's bytes, so a JSON record parks too)
and is applied, in arrival order, when the command is registered. The table is bounded per
communication by :func:`streams.domain.parking.decide_parking`, a pure decision over the event
ids already parked:

- an event whose ``event_id`` is already parked for the communication (a webhook retry, a
  replay) is not parked again, even when the parking is full: applied after its twin, the
  state machine would ignore it anyway (``DUPLICATE_EVENT`` once the twin changed the state,
  else for the twin's reason). It counts as ignored (``ignored_events`` and
  ``parked_duplicates``). The ids are read by decoding the parked entries, at most 32 small
  Avro records per parked event;
- once :data:`~streams.domain.parking.MAX_PARKED_PER_COMMUNICATION` (32) events are parked for one
  communication id, a further one is not parked but dead-lettered as ``PARKED_LIMIT``
  (``parked_refused``), the reason naming the communication and event ids only. A real communication
  has a handful of delivery steps (at most five statuses on a channel path, plus a terminal one, a
  late milestone and Exstream's retries), so 32 is several times what any real communication parks
  and as many as the state machine remembers (``delivery.MAX_SEEN_EVENT_IDS``); more is a flood for
  an id that will probably never have a command (a foreign or corrupted id). The bound keeps one
  key's value, and the rewrite of the whole list on each put, small. A refused event is kept on
  ``exstream.delivery-events.v1.dlq`` with its original bytes: if its command does turn up,
  ``air-exstream dlq replay`` puts it back and it is applied like any other.

A parked event found unusable for its communication when applied (``CHANNEL_MISMATCH`` and the
other :data:`UNUSABLE` reasons) is logged with its ids and counted as ignored, not dead-lettered:
its own offset was not kept, and the record being processed then is another (the command's
input, or the bounce whose fallback command is registered). Entries parked before the canonical
encoding hold the record's own bytes (Avro or JSON) and are decoded either way; one that cannot
be decoded counts toward the bound and is skipped, logged, when the command comes.

Events, commands and delivery events are keyed by customer id and co-partitioned, so a
communication's input event, command, delivery events and state live in the same partition; the
table is keyed by communication id and its changelog is written to that partition. Handlers run
inside the worker's exactly-once transactions, and so does the SLA timer (the engine runs a
timer in a transaction of its own): a report and its state write are committed together.
"""

from __future__ import annotations

import base64
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.codec import CodecError, Codecs
from streams.domain import delivery
from streams.domain.parking import (
    PARKED_LIMIT,
    ParkDecision,
    decide_parking,
    parked_limit_reason,
)
from streams.domain.records import (
    AuditRecord,
    CommunicationStatus,
    CompositionCommand,
    DeliveryEvent,
    DocumentMetadata,
    Preference,
)
from streams.routing.handlers.decode import decode_or_dead_letter
from streams.routing.metrics import RoutingMetrics
from streams.routing.preference_versions import latest_value
from topology import names
from topology.model import Topology

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">H")

UNUSABLE: Mapping[str, str] = {
    delivery.IgnoredReason.COMMUNICATION_MISMATCH: (
        "the delivery event's customer_id is not the customer of its communication_id's "
        "command; the event was not applied"
    ),
    delivery.IgnoredReason.CHANNEL_MISMATCH: (
        "the delivery event's channel is not the channel its communication was sent on; "
        "the event was not applied"
    ),
    delivery.IgnoredReason.NOT_ON_CHANNEL_PATH: (
        "the delivery event's status is unknown or does not occur on its channel (see "
        "streams.domain.delivery.PATHS); the event was not applied"
    ),
}
"""Why a delivery event cannot apply to its communication at all (dead-lettered), as opposed to
events ignored as duplicates, stale or late, which are normal at-least-once traffic."""


@dataclass
class TrackingCounters:
    commands_tracked: int = 0
    delivery_events: int = 0
    ignored_events: int = 0
    parked_events: int = 0
    parked_duplicates: int = 0
    """Events not parked because their event id already was (also in ``ignored_events``)."""
    parked_refused: int = 0
    """Events dead-lettered as ``PARKED_LIMIT``."""
    statuses: int = 0
    metadata: int = 0
    fallbacks: int = 0
    sla_breaches: int = 0


@dataclass
class TrackingContext:
    """What delivery tracking's handlers need from the worker."""

    guard: Any
    """Table writes in the handled record's transaction
    (:class:`~streams.routing.engine_adapters.StoreGuard`)."""
    commands_topic: Any
    delivery_topic_name: str
    status_topic: Any
    metadata_topic: Any
    communications: Any
    """table: communication id -> 2-byte partition + serialized state."""
    parked: Any
    """table: communication id -> JSON list of base64 delivery events awaiting their command."""
    preferences: Any
    """table: customer id -> Avro Preference."""
    send_audit: Callable[[AuditRecord, bytes | None], Awaitable[None]]
    dead_letter: Callable[[Any, str, str], Awaitable[None]]
    sla_ms: Mapping[str, int]
    sla_check_interval_s: float
    counters: TrackingCounters
    codecs: Codecs
    topology: Topology
    registry_wait_s: float
    """See :attr:`~streams.routing.settings.WorkerSettings.registry_wait_s`."""
    metrics: RoutingMetrics = field(default_factory=RoutingMetrics)


Register = Callable[[Any, CompositionCommand], Awaitable[None]]
"""``register(msg, command)``: start tracking a command emitted while ``msg`` is processed."""


@dataclass(frozen=True, slots=True)
class Tracking:
    """Delivery tracking's handlers (the worker runs them, :mod:`.engine_worker`)."""

    register: Register
    """Start tracking a command emitted while a record is processed (in its transaction)."""
    track_delivery: Callable[[Any], Awaitable[None]]
    """Handle one record of the delivery events topic."""
    sla_check: Callable[[], Awaitable[None]]
    """Report the communications past their deadline (once each)."""


def tracking_handlers(
    ctx: TrackingContext,
    *,
    communications: Callable[[], Iterable[tuple[bytes, bytes]]],
    owned: Callable[[], set[int]],
) -> Tracking:
    """The handlers over ``ctx`` (its ``guard``: ``put``, ``delete`` and ``put_outside`` of a
    table value). ``communications()``: every (key, value) of the
    communications table this worker holds; ``owned()``: the partitions whose communications
    this worker reports."""
    codecs, topic = ctx.codecs, ctx.topology.name
    command_codec = codecs.for_topic(topic(names.COMMANDS), CompositionCommand)
    event_codec = codecs.for_topic(ctx.delivery_topic_name, DeliveryEvent)
    status_codec = codecs.for_topic(topic(names.COMMUNICATION_STATUS), CommunicationStatus)
    metadata_codec = codecs.for_topic(topic(names.DOCUMENT_METADATA), DocumentMetadata)
    pref_state = codecs.for_state(Preference)
    parked_state = codecs.for_state(DeliveryEvent)
    """Parked events are table state: single-object encoding whatever the topics carry."""
    counters = ctx.counters

    def load(raw: bytes | None) -> tuple[int, delivery.CommunicationState] | None:
        if not raw:
            return None
        (partition,) = _HEADER.unpack_from(raw)
        return partition, delivery.loads(raw[_HEADER.size :])

    async def store(msg: Any, key: bytes, state: delivery.CommunicationState) -> None:
        value = _HEADER.pack(msg.partition) + delivery.dumps(state)
        await ctx.guard.put(ctx.communications, msg, key, value)

    async def emit(transition: delivery.Transition, msg: Any | None = None) -> None:
        for status in transition.statuses:
            await ctx.status_topic.send(
                key=status.customer_id.encode(), value=status_codec.encode(status)
            )
            counters.statuses += 1
        for meta in transition.metadata:
            await ctx.metadata_topic.send(
                key=meta.customer_id.encode(), value=metadata_codec.encode(meta)
            )
            counters.metadata += 1
        for command in transition.fallback_commands:
            await ctx.commands_topic.send(
                key=command.customer_id.encode(), value=command_codec.encode(command)
            )
            counters.fallbacks += 1
            ctx.metrics.decided("delivery", "fallback")
            if msg is not None:
                await register(msg, command)
        for record in transition.audit:
            await ctx.send_audit(record, (record.customer_id or "").encode() or None)

    def preference_of(customer_id: str) -> Preference | None:
        # the preference in force now (the table keeps earlier versions for the events' join)
        raw = latest_value(ctx.preferences.get(customer_id.encode()))
        return pref_state.decode(raw) if raw else None

    async def apply(
        msg: Any,
        key: bytes,
        state: delivery.CommunicationState,
        event: DeliveryEvent,
        *,
        parked: bool = False,
    ) -> delivery.CommunicationState:
        counters.delivery_events += 1
        transition = delivery.on_delivery_event(
            state, event, preference=preference_of(event.customer_id)
        )
        if transition.ignored_reason is not None:
            counters.ignored_events += 1
            log.debug("delivery event %s ignored: %s", event.event_id, transition.ignored_reason)
            if transition.ignored_reason in UNUSABLE:
                if parked:
                    # ``msg`` is the record whose command is being registered, not this event's
                    # (whose offset was not kept): dead-lettering ``msg`` would blame another
                    log.warning(
                        "parked delivery event %s for communication %s not applied: %s",
                        event.event_id,
                        event.communication_id,
                        transition.ignored_reason,
                    )
                elif msg.topic == ctx.delivery_topic_name:
                    await ctx.dead_letter(
                        msg, transition.ignored_reason, UNUSABLE[transition.ignored_reason]
                    )
        await emit(transition, msg)
        if transition.state is not None:
            await store(msg, key, transition.state)
            return transition.state
        return state

    async def register(msg: Any, command: CompositionCommand) -> None:
        key = command.communication_id.encode()
        if load(ctx.communications.get(key)) is not None:
            return  # a replay of a command already tracked
        # the input record's time stands for the command's: both are sent in one transaction
        state = delivery.start(command, submitted_at=int(msg.timestamp * 1000), sla_ms=ctx.sla_ms)
        await store(msg, key, state)
        counters.commands_tracked += 1
        waiting = ctx.parked.get(key)
        if waiting:
            for raw in orjson.loads(waiting):
                event = parked_event(raw)
                if event is None:
                    counters.ignored_events += 1
                    log.warning(
                        "a delivery event parked for communication %s cannot be decoded; skipped",
                        command.communication_id,
                    )
                    continue
                state = await apply(msg, key, state, event, parked=True)
            await ctx.guard.delete(ctx.parked, msg, key)

    def parked_event(raw: str) -> DeliveryEvent | None:
        """A parked entry's event. Entries parked before the canonical encoding hold the
        record's own bytes, which may be JSON."""
        data = base64.b64decode(raw)
        try:
            return parked_state.decode(data)
        except CodecError:
            pass
        try:
            return parked_state.decode_json(data)
        except CodecError:
            return None

    async def track_delivery(msg: Any) -> None:
        event = await decode_or_dead_letter(
            event_codec.decode, msg, ctx.dead_letter, wait_s=ctx.registry_wait_s
        )
        if event is None:
            return
        key = event.communication_id.encode()
        loaded = load(ctx.communications.get(key))
        if loaded is None:
            await park(msg, key, event)
            return
        await apply(msg, key, loaded[1], event)

    async def park(msg: Any, key: bytes, event: DeliveryEvent) -> None:
        waiting: list[str] = orjson.loads(ctx.parked.get(key) or b"[]")
        # an undecodable entry (None) keeps its place in the count and matches no event
        ids = [e.event_id if (e := parked_event(raw)) else None for raw in waiting]
        decision = decide_parking(ids, event.event_id)
        if decision is ParkDecision.DUPLICATE:
            counters.ignored_events += 1
            counters.parked_duplicates += 1
            log.debug("delivery event %s is already parked", event.event_id)
            return
        if decision is ParkDecision.LIMIT:
            counters.parked_refused += 1
            reason = parked_limit_reason(event.communication_id, event.event_id, len(waiting))
            await ctx.dead_letter(msg, PARKED_LIMIT, reason)
            return
        waiting.append(base64.b64encode(parked_state.encode(event)).decode())
        await ctx.guard.put(ctx.parked, msg, key, orjson.dumps(waiting))
        counters.parked_events += 1

    async def sla_check() -> None:
        now_ms = int(time.time() * 1000)
        reported = owned()
        for key, raw in communications():
            loaded = load(raw)
            if loaded is None:
                continue
            partition, state = loaded
            if partition not in reported or state.sla_breached or state.sla_deadline >= now_ms:
                continue
            transition = delivery.on_sla_check(state, now_ms=now_ms)
            if transition.state is None:
                continue
            await emit(transition)
            counters.sla_breaches += 1
            ctx.metrics.decided("delivery", "sla_breach")
            value = _HEADER.pack(partition) + delivery.dumps(transition.state)
            await ctx.guard.put_outside(ctx.communications, partition, key, value)

    return Tracking(register=register, track_delivery=track_delivery, sla_check=sla_check)
