"""The events handler over plain fakes: every dead-letter path, the decoded state it keeps, and
byte-identical outputs to the worker's previous per-event path (``route_event``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.codec import CodecError, codec_for
from streams.codec.state import decode_suppression, encode_suppression
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    BusinessEvent,
    CaseEvent,
    CommRule,
    CompositionCommand,
    Preference,
    TemplateVersion,
)
from streams.domain.routing import route_event
from streams.routing.handlers.decode import key_mismatch
from streams.routing.handlers.events import (
    EventCodecs,
    EventsHandler,
    ReferenceSource,
)
from streams.routing.handlers.ports import Decode
from streams.routing.partitioning import WRONG_PARTITION, murmur2_partition, partition_problem
from streams.routing.preference_versions import Version, value_as_of, with_version
from streams.simulator.generator import Dataset, Scenario, generate, template_key
from streams.simulator.publish import event_bytes
from tests.domain.factories import T0, billing_event, preference, rule, template
from tests.routing.handlers.fakes import EventTotals, Metrics, Outputs, Record, Table

pytestmark = pytest.mark.unit

ACCOUNTS = "air.account-events.v1"
CASES = "air.case-events.v1"
PARTITIONS = 6
GRACE_MS = 30 * 24 * 3_600_000
COUNTS = {ACCOUNTS: PARTITIONS, CASES: PARTITIONS}

account_codec = codec_for(AccountEvent)
case_codec = codec_for(CaseEvent)
pref_codec = codec_for(Preference)
command_codec = codec_for(CompositionCommand)
alert_codec = codec_for(AlignmentAlert)


@dataclass
class Reference:
    """The reference views: rules and template versions, and a version bumped on change."""

    rules: list[CommRule]
    templates: list[TemplateVersion]
    version: int = 0

    def by_id(self) -> dict[str, list[TemplateVersion]]:
        out: dict[str, list[TemplateVersion]] = {}
        for t in self.templates:
            out.setdefault(t.template_id, []).append(t)
        return out

    def source(self) -> ReferenceSource:
        return ReferenceSource(
            version=lambda: self.version, rules=lambda: self.rules, templates_by_id=self.by_id
        )


@dataclass
class World:
    """A handler with its fakes."""

    reference: Reference
    preferences: Table = field(default_factory=Table)
    suppression: Table = field(default_factory=Table)
    outputs: Outputs = field(default_factory=Outputs)
    totals: EventTotals = field(default_factory=EventTotals)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.handler = EventsHandler(
            preferences=self.preferences,
            suppression=self.suppression,
            reference=self.reference.source(),
            outputs=self.outputs,
            codecs=EventCodecs(
                preference=pref_codec.decode,
                command=command_codec.encode,
                alert=alert_codec.encode,
            ),
            counters=self.totals,
            metrics=self.metrics,
            partition_counts=COUNTS,
            suppression_grace_ms=GRACE_MS,
            registry_wait_s=1.0,
        )

    def set_preference(self, p: Preference | None, *, customer_id: str, at_ms: int = 0) -> None:
        key = customer_id.encode()
        value = pref_codec.encode(p) if p is not None else None
        self.preferences.data[key] = with_version(  # type: ignore[assignment]
            self.preferences.data.get(key),
            Version(len(self.preferences.data), at_ms, value),
            history_ms=10**12,
            max_versions=16,
        )

    async def route(self, record: Record) -> None:
        codec = case_codec if record.topic == CASES else account_codec
        await self.handler.handle(record, decode=codec.decode, source_topic=record.topic)


def event_record(event: BusinessEvent, *, offset: int = 0, **overrides: Any) -> Record:
    key = event.customer_id.encode()
    topic = CASES if isinstance(event, CaseEvent) else ACCOUNTS
    codec = case_codec if isinstance(event, CaseEvent) else account_codec
    values: dict[str, Any] = {
        "topic": topic,
        "partition": murmur2_partition(key, PARTITIONS),
        "offset": offset,
        "key": key,
        "value": codec.encode(event),  # type: ignore[attr-defined]
        "timestamp": event.occurred_at / 1000,
    }
    values.update(overrides)
    return Record(**values)


def simple_world() -> World:
    world = World(Reference(rules=[rule()], templates=[template()]))
    world.set_preference(preference(), customer_id="cust-1")
    return world


# ---------------------------------------------------------------------------- dead letters


async def test_an_undecodable_record_is_dead_lettered_with_the_codec_code() -> None:
    world = simple_world()
    await world.route(event_record(billing_event(), value=b"garbage"))
    [(offset, code, reason)] = world.outputs.of("dead_letter")
    assert (offset, code) == (0, "BAD_MAGIC")
    assert reason
    assert world.outputs.of("command") == []
    assert world.totals.events == 0  # not counted as a routed event


async def test_a_record_keyed_by_another_customer_is_a_key_mismatch() -> None:
    world = simple_world()
    await world.route(event_record(billing_event(), key=b"cust-2"))
    [(_, code, reason)] = world.outputs.of("dead_letter")
    assert code == "KEY_MISMATCH"
    assert reason == key_mismatch(b"cust-2", "cust-1")
    assert world.suppression.writes == []


async def test_a_keyed_record_outside_its_key_partition_is_dead_lettered() -> None:
    world = simple_world()
    good = murmur2_partition(b"cust-1", PARTITIONS)
    wrong = (good + 1) % PARTITIONS
    await world.route(event_record(billing_event(), partition=wrong))
    [(_, code, reason)] = world.outputs.of("dead_letter")
    assert code == WRONG_PARTITION
    assert reason == partition_problem(b"cust-1", wrong, PARTITIONS)


async def test_an_unkeyed_record_is_routed_in_any_partition() -> None:
    world = simple_world()
    wrong = (murmur2_partition(b"cust-1", PARTITIONS) + 1) % PARTITIONS
    await world.route(event_record(billing_event(), key=None, partition=wrong))
    assert world.outputs.of("dead_letter") == []
    assert len(world.outputs.of("command")) == 1


async def test_a_rejected_event_is_dead_lettered_with_its_code() -> None:
    world = simple_world()
    await world.route(event_record(billing_event(event_type="NO_SUCH_EVENT")))
    [(_, code, _)] = world.outputs.of("dead_letter")
    assert code == "UNKNOWN_EVENT_TYPE"
    assert world.metrics.decisions[("event", "rejected")] == 1
    assert world.totals.events == 1
    assert world.outputs.of("command") == []


# ---------------------------------------------------------------------------- outputs and state


async def test_a_routed_event_sends_registers_audits_and_stores_its_suppression() -> None:
    world = simple_world()
    await world.route(event_record(billing_event()))
    [command] = world.outputs.of("command")
    decoded = command_codec.decode(command)
    assert decoded.customer_id == "cust-1"
    assert world.outputs.of("register") == [decoded.communication_id]
    assert len(world.outputs.of("audit")) == 1
    [(partition, key, value)] = world.suppression.writes
    assert (partition, key) == (murmur2_partition(b"cust-1", PARTITIONS), b"cust-1")
    assert value is not None
    assert len(decode_suppression(value)) == 1
    assert world.totals.commands == 1
    assert world.metrics.decisions[("event", "command")] == 1


async def test_a_duplicate_is_suppressed_from_the_state_kept_decoded() -> None:
    world = simple_world()
    await world.route(event_record(billing_event()))
    await world.route(event_record(billing_event(event_id="evt-2", occurred_at=T0 + 1), offset=1))
    assert len(world.outputs.of("command")) == 1
    assert world.totals.suppressed == 1
    assert world.handler.decoded_suppression.hits == 1  # not decoded from JSON again
    assert world.handler.decoded_suppression.decodes == 0  # kept as written


async def test_state_changed_in_the_table_is_read_from_the_table_not_the_cache() -> None:
    """The table is the source of truth: a value restored underneath (recovery) wins."""
    world = simple_world()
    await world.route(event_record(billing_event()))
    world.suppression.data[b"cust-1"] = encode_suppression({})  # e.g. restored from a changelog
    await world.route(event_record(billing_event(event_id="evt-2", occurred_at=T0 + 1), offset=1))
    assert len(world.outputs.of("command")) == 2  # the restored (empty) state decided


async def test_a_failed_write_leaves_no_half_applied_state_behind() -> None:
    world = simple_world()
    world.suppression.fail_next_put = True
    with pytest.raises(RuntimeError):
        await world.route(event_record(billing_event()))
    assert world.suppression.data == {}
    # the retried record (its transaction aborted) decides as the first time
    await world.route(event_record(billing_event()))
    assert len(world.outputs.of("command")) == 2
    assert len(set(world.outputs.of("command"))) == 1


async def test_revoked_partitions_lose_their_decoded_state() -> None:
    world = simple_world()
    await world.route(event_record(billing_event()))
    partition = murmur2_partition(b"cust-1", PARTITIONS)
    assert len(world.handler.decoded_suppression) == 1
    assert len(world.handler.decoded_preferences) == 1
    world.handler.forget([(partition + 1) % PARTITIONS])
    assert len(world.handler.decoded_suppression) == 1
    world.handler.forget([partition])
    assert len(world.handler.decoded_suppression) == 0
    assert len(world.handler.decoded_preferences) == 0


async def test_the_reference_index_is_built_once_per_reference_version() -> None:
    world = simple_world()
    for n in range(3):
        event = billing_event(event_id=f"evt-{n}")
        await world.route(event_record(event, offset=n))
    assert world.handler.index_builds == 1
    world.reference.rules = []  # every rule deleted: the next event fires none
    world.reference.version += 1
    event = billing_event(
        event_id="evt-9",
        attributes={**billing_event().attributes, "statement_period": "2023-12"},
    )
    await world.route(event_record(event, offset=9))
    assert world.handler.index_builds == 2
    assert len(world.outputs.of("command")) == 1  # only the first event's


# ---------------------------------------------------------------------------- the old path


def seeded_records(data: Dataset) -> list[Record]:
    """The dataset's event records as published, with misplaced and mis-keyed ones mixed in."""
    rng = random.Random(7)
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for n, sim in enumerate(data.events):
        value, headers = event_bytes(sim, rng)
        key: bytes | None = sim.record.customer_id.encode()
        assert key is not None
        partition = murmur2_partition(key, PARTITIONS)
        if n % 97 == 5:
            key = b"somebody-else"
        elif n % 89 == 7:
            partition = (partition + 1) % PARTITIONS
        elif n % 83 == 11:
            key = None
        out.append(
            Record(
                topic=CASES if isinstance(sim.record, CaseEvent) else ACCOUNTS,
                partition=partition,
                offset=offsets[partition],
                key=key,
                value=value,
                headers=[(k, v if isinstance(v, bytes | None) else v.encode()) for k, v in headers]
                if headers
                else None,
                timestamp=sim.record.occurred_at / 1000,
            )
        )
        offsets[partition] += 1
    return out


async def route_as_before(
    record: Record,
    *,
    decode: Decode[BusinessEvent],
    world: World,
    rules: Sequence[CommRule],
    templates_by_id: Mapping[str, Sequence[TemplateVersion]],
) -> None:
    """The worker's ``route_one`` before the handler: ``route_event`` per event, the preference
    and the suppression state decoded from the tables' bytes for every event."""
    outputs = world.outputs
    try:
        event = decode(record.value, record.headers)
    except CodecError as exc:
        await outputs.dead_letter(record, exc.code, str(exc))
        return
    key = event.customer_id.encode()
    if record.key is not None and record.key != key:
        await outputs.dead_letter(
            record, "KEY_MISMATCH", key_mismatch(record.key, event.customer_id)
        )
        return
    if record.key is not None:
        misplaced = partition_problem(key, record.partition, COUNTS[record.topic])
        if misplaced is not None:
            await outputs.dead_letter(record, WRONG_PARTITION, misplaced)
            return
    pref_raw = value_as_of(world.preferences.get(key), round(record.timestamp * 1000))
    pref = pref_codec.decode(pref_raw) if pref_raw else None
    state = decode_suppression(world.suppression.get(key))
    outcome = route_event(
        event,
        source_topic=record.topic,
        preference=pref,
        rules=rules,
        templates_by_id=templates_by_id,
        suppression_state=state,
        now_ms=event.occurred_at - GRACE_MS,
    )
    world.totals.events += 1
    if outcome.rejection is not None:
        await outputs.dead_letter(record, outcome.rejection.code, outcome.rejection.reason)
        return
    for command in outcome.commands:
        await outputs.send_command(key, command_codec.encode(command))
        await outputs.register(record, command)
    for alert in outcome.alerts:
        await outputs.send_alert(
            (alert.rule_id or alert.template_id).encode(), alert_codec.encode(alert)
        )
    for entry in outcome.audit:
        await outputs.send_audit(entry, key)
    world.totals.commands += len(outcome.commands)
    world.totals.suppressed += len(outcome.suppressed) + len(outcome.undeliverable)
    world.totals.alerts += len(outcome.alerts)
    if outcome.suppression_updates or outcome.expired_keys:
        state.update(outcome.suppression_updates)
        for stale in outcome.expired_keys:
            state.pop(stale, None)
        await world.suppression.put(record, key, encode_suppression(state))


async def test_outputs_and_changelog_are_byte_identical_to_the_per_event_path() -> None:
    data = generate(Scenario(seed=11, customers=60, events=1_500, invalid_share=0.05))
    rules = list({r.rule_id: r for r in data.rules}.values())
    templates = list({template_key(t): t for t in data.templates}.values())
    records = seeded_records(data)
    middle = data.events[len(data.events) // 2].record.occurred_at
    worlds = [World(Reference(rules=rules, templates=templates)) for _ in range(2)]
    for world in worlds:
        for n, p in enumerate(data.preferences):
            world.set_preference(p, customer_id=p.customer_id)
            if n % 10 == 0:  # withdrawn mid-stream: earlier events still see it
                world.set_preference(None, customer_id=p.customer_id, at_ms=middle)
    new, old = worlds
    by_id = old.reference.by_id()
    for record in records:
        codec = case_codec if record.topic == CASES else account_codec
        await new.route(record)
        await route_as_before(
            record, decode=codec.decode, world=old, rules=rules, templates_by_id=by_id
        )
    # every kind of output and dead letter happened, so the comparison means something
    codes = {code for _, code, _ in old.outputs.of("dead_letter")}
    assert {"KEY_MISMATCH", WRONG_PARTITION}.issubset(codes)
    assert len(codes) >= 4  # decode errors and rejections too
    assert old.totals.commands > 100
    assert old.totals.suppressed > 0
    assert old.totals.alerts > 0
    assert len(old.suppression.writes) > 100
    # repr compares dict order too (what the encodings write)
    assert repr(new.outputs.sent) == repr(old.outputs.sent)
    assert new.suppression.writes == old.suppression.writes
    assert new.suppression.data == old.suppression.data
    assert new.totals == old.totals
    assert new.handler.index_builds == 1
    assert new.handler.decoded_suppression.hits > 100
