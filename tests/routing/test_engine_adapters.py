"""The handlers' ports over the engine (streams/routing/engine_adapters.py), on plain fakes of
the engine's outputs and stores: where a table put and an audit record go, what a dead letter
writes, and the wait for the rules and templates published before an event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from streams.audit.chain import ChainHead
from streams.codec import codec_for
from streams.deadletter.letters import dead_letter_headers
from streams.domain.records import AuditKind, AuditRecord, DeadLetter
from streams.engine.api import Record
from streams.routing.alignment import ReferencePartition, Verdict
from streams.routing.engine_adapters import (
    CountedOutputs,
    EngineOutputs,
    EngineTopic,
    HandledRecord,
    ReferenceAdmission,
    StoreGuard,
    StoreTable,
)
from streams.routing.handlers.audit import AuditChains, decode_head, head_key
from streams.routing.join_gate import JoinGate, ProgressSignal
from streams.routing.metrics import RoutingMetrics
from tests.domain.factories import T0
from tests.routing.engine_fakes import FakeOutputs, FakeStore

pytestmark = pytest.mark.unit

EVENTS = "air.account-events.v1"
RULES = "air.comm-rules.v1"
INTAKE = "audit.intake.v1"
AUDIT = "audit.communications.v1"
audit_codec = codec_for(AuditRecord)
letter_codec = codec_for(DeadLetter)


def record(topic: str = EVENTS, partition: int = 3, offset: int = 7, ts: int = T0) -> Record:
    return Record(topic, partition, offset, b"C1", b"\x00garbage", [("h", b"v")], ts)


def audit(n: int) -> AuditRecord:
    return AuditRecord(
        audit_id=f"a{n}", kind=AuditKind.COMMAND_EMITTED, occurred_at=T0 + n, summary="s"
    )


@dataclass
class Totals:
    dead_letters: int = 0
    audit_written: int = 0


@dataclass
class World:
    outputs: FakeOutputs = field(default_factory=FakeOutputs)
    heads: FakeStore = field(default_factory=lambda: FakeStore("audit-chain-heads"))
    current: HandledRecord = field(default_factory=HandledRecord)
    totals: Totals = field(default_factory=Totals)
    counts: dict[str, int] = field(default_factory=lambda: {EVENTS: 6, INTAKE: 6, RULES: 1})

    def __post_init__(self) -> None:
        chains = AuditChains(
            heads=StoreTable(self.heads, self.current),
            audit=_ChainedAudit(EngineTopic(self.outputs, AUDIT)),
            encode=audit_codec.encode,
            counters=self.totals,
        )
        self.shared = EngineOutputs(
            outputs=self.outputs,
            current=self.current,
            chains=chains,
            intake_name=INTAKE,
            encode_intake=audit_codec.encode,
            partition_counts=self.counts,
            letter_codec=lambda _name: letter_codec,
            counters=self.totals,
            metrics=RoutingMetrics(),
            now_ms=lambda: T0 + 5,
        )

    async def while_handling(self, rec: Record, audit_record: AuditRecord) -> None:
        async def handler(r: Record) -> None:
            await self.shared.send_audit(audit_record, r.key)

        await self.current.wrap(handler)(rec)


@dataclass
class _ChainedAudit:
    topic: EngineTopic

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        await self.topic.send(key=key, value=value, partition=partition)


async def test_a_put_goes_to_the_handled_records_partition_and_get_finds_it_from_any() -> None:
    store, current = FakeStore("preferences"), HandledRecord()
    table = StoreTable(store, current)
    await table.put(record(partition=4), b"C1", b"v1")
    assert store.puts == [(4, b"C1", b"v1")]
    assert table.get(b"C1") == b"v1"  # no record handled: every held partition
    current.record = record(partition=4)
    assert table.get(b"C1") == b"v1"
    current.record = record(partition=1)
    assert table.get(b"C1") == b"v1"
    assert table.get(b"C2") is None
    store.held = {0, 1, 2, 3, 5}  # partition 4 revoked
    assert table.get(b"C1") is None
    await table.put(record(partition=1), b"C1", None)
    assert store.puts[-1] == (1, b"C1", None)
    assert table.entries() == 0


async def test_the_handled_record_is_known_only_while_its_handler_runs() -> None:
    current = HandledRecord()
    seen: list[Record | None] = []

    async def handler(r: Record) -> None:
        seen.append(current.record)
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await current.wrap(handler)(record())
    assert seen == [record()]
    assert current.record is None


async def test_audit_of_a_customer_partitioned_record_is_chained_in_its_partition() -> None:
    world = World()
    await world.while_handling(record(partition=3), audit(1))
    await world.while_handling(record(partition=3, offset=8), audit(2))
    chained = world.outputs.to(AUDIT)
    assert [(s.partition, s.key) for s in chained] == [(3, b"C1"), (3, b"C1")]
    first, second = (audit_codec.decode(s.value) for s in chained)
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert world.outputs.to(INTAKE) == []
    head = decode_head(world.heads.get(3, head_key(3)))
    assert head == ChainHead(seq=2, hash=second.hash)
    assert world.heads.puts[-1][0] == 3  # the head's changelog in the record's partition


async def test_audit_of_a_rule_record_or_a_timer_goes_through_the_intake() -> None:
    world = World()
    await world.while_handling(record(topic=RULES, partition=0), audit(1))
    await world.shared.send_audit(audit(2), None)  # no record handled: a timer
    intake = world.outputs.to(INTAKE)
    assert [(s.key, audit_codec.decode(s.value).audit_id) for s in intake] == [
        (b"C1", "a1"),
        (b"", "a2"),
    ]
    assert world.outputs.to(AUDIT) == []


async def test_without_as_many_audit_as_intake_partitions_every_audit_record_goes_through_it() -> (
    None
):
    world = World(counts={EVENTS: 6, RULES: 1})
    await world.while_handling(record(), audit(1))
    assert len(world.outputs.to(INTAKE)) == 1
    assert world.outputs.to(AUDIT) == []


async def test_a_dead_letter_keeps_the_record_and_its_reason_with_an_audit_record() -> None:
    world = World()
    rec = record()

    async def handler(r: Record) -> None:
        await world.shared.dead_letter(r, "UNDECODABLE", "bad bytes")

    await world.current.wrap(handler)(rec)
    [sent] = world.outputs.to(EVENTS + ".dlq")
    letter = letter_codec.decode(sent.value)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (EVENTS, 3, 7)
    assert (letter.error_type, letter.reason, letter.original_value) == (
        "UNDECODABLE",
        "bad bytes",
        b"\x00garbage",
    )
    assert sent.key == b"C1"
    assert list(sent.headers or []) == list(dead_letter_headers(letter))
    [chained] = world.outputs.to(AUDIT)
    entry = audit_codec.decode(chained.value)
    assert entry.kind == AuditKind.DEAD_LETTER
    assert entry.details["source"] == f"{EVENTS}/3/7"
    assert chained.partition == 3
    assert world.totals.dead_letters == 1


@dataclass
class View:
    states: list[ReferencePartition]
    asked: int = 0
    """Observations of the ends requested."""
    read: int = 0
    """Times its states were read."""

    def partition_states(self) -> list[ReferencePartition]:
        self.read += 1
        return self.states

    def request_observation(self) -> None:
        self.asked += 1


def caught_up(at_ms: int) -> ReferencePartition:
    return ReferencePartition(
        position=5, end_offset=5, observed_at_ms=at_ms, last_timestamp_ms=T0 - 10
    )


def admission_of(
    signal: ProgressSignal, rules: View, templates: View, *, recheck_s: float
) -> ReferenceAdmission:
    """An admission over the two views whose clock says an event arrived at ``T0 + 50``."""
    return ReferenceAdmission(
        gate=JoinGate(signal=signal, max_wait_s=60.0, recheck_s=recheck_s),
        rules=rules,
        templates=templates,
        now_ms=lambda: T0 + 50,
    )


async def test_an_event_waits_until_the_views_observed_their_ends_after_it() -> None:
    signal = ProgressSignal()
    rules, templates = View([caught_up(T0 - 1)]), View([caught_up(T0 + 1)])
    admission = admission_of(signal, rules, templates, recheck_s=0.01)
    waiting = asyncio.create_task(admission.await_reference(record(ts=T0)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    rules.states = [caught_up(T0 + 2)]
    signal.notify()
    await asyncio.wait_for(waiting, 10)
    assert admission.gate.counters.waited == 1
    assert admission.gate.counters.gave_up == 0


async def test_an_event_asks_a_caught_up_view_to_observe_its_ends_instead_of_waiting() -> None:
    signal = ProgressSignal()
    rules, templates = View([caught_up(T0 - 1)]), View([caught_up(T0 + 1)])
    admission = admission_of(signal, rules, templates, recheck_s=60.0)  # no recheck by time
    waiting = asyncio.create_task(admission.await_reference(record(ts=T0)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    assert (rules.asked, templates.asked) == (1, 0)  # the stale one only
    rules.states = [caught_up(T0 + 60)]  # the observation's answer
    signal.notify()
    await asyncio.wait_for(waiting, 10)


async def test_a_view_with_records_still_to_apply_is_not_asked_for_its_ends() -> None:
    signal = ProgressSignal()
    loading = ReferencePartition(position=3, end_offset=5, observed_at_ms=T0 - 1,
                                 last_timestamp_ms=T0 - 10)  # fmt: skip
    rules, templates = View([loading]), View([caught_up(T0 + 1)])
    admission = admission_of(signal, rules, templates, recheck_s=0.01)
    waiting = asyncio.create_task(admission.await_reference(record(ts=T0)))
    for _ in range(5):
        await asyncio.sleep(0.02)
    assert not waiting.done()
    assert rules.asked == 0  # its fetches bring the records: no question needed
    rules.states = [caught_up(T0 + 60)]
    signal.notify()
    await asyncio.wait_for(waiting, 10)


async def test_the_tracking_guard_writes_in_the_records_partition_or_the_one_named() -> None:
    store = FakeStore("communications")
    table, guard = StoreTable(store, HandledRecord()), StoreGuard()
    await guard.put(table, record(partition=2), b"c1", b"s1")
    await guard.put_outside(table, 5, b"c2", b"s2")  # the SLA timer: no record
    await guard.delete(table, record(partition=2), b"c1")
    assert store.puts == [(2, b"c1", b"s1"), (5, b"c2", b"s2"), (2, b"c1", None)]
    assert table.items() == [(b"c2", b"s2")]


async def test_a_document_request_waits_for_the_templates_only() -> None:
    signal = ProgressSignal()
    never = View([ReferencePartition(None, None, None, None)])  # the rules: not caught up
    templates = View([caught_up(T0 - 1)])
    admission = admission_of(signal, never, templates, recheck_s=0.01)
    waiting = asyncio.create_task(admission.await_templates(record(ts=T0)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    templates.states = [caught_up(T0 + 2)]
    signal.notify()
    await asyncio.wait_for(waiting, 10)
    assert admission.gate.counters.gave_up == 0


async def test_records_handled_and_sent_are_counted_by_topic() -> None:
    metrics = RoutingMetrics()
    fake = FakeOutputs()
    out = CountedOutputs(fake, metrics.record_out)

    async def handler(r: Record) -> None:
        out.send("commands", b"c", key=r.key)
        out.send("audit", b"a", partition=r.partition)
        out.send("commands", b"c2", key=r.key)

    await HandledRecord().wrap(handler, record_in=metrics.record_in)(record())
    rendered = metrics.render()
    assert f'air_exstream_routing_records_in_total{{topic="{EVENTS}"}} 1.0' in rendered
    assert 'air_exstream_routing_records_out_total{topic="commands"} 2.0' in rendered
    assert 'air_exstream_routing_records_out_total{topic="audit"} 1.0' in rendered
    assert [s.topic for s in fake.sent] == ["commands", "audit", "commands"]


async def test_a_record_whose_handler_raises_is_not_counted() -> None:
    metrics = RoutingMetrics()

    async def handler(_r: Record) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await HandledRecord().wrap(handler, record_in=metrics.record_in)(record())
    assert "records_in_total{" not in metrics.render()


async def test_an_event_below_what_a_view_proved_goes_without_reading_it_again() -> None:
    signal = ProgressSignal()
    rules, templates = View([caught_up(T0 + 40)]), View([caught_up(T0 + 100)])
    admission = admission_of(signal, rules, templates, recheck_s=60.0)
    await asyncio.wait_for(admission.await_reference(record(ts=T0)), 10)
    assert (rules.read, templates.read) == (1, 1)
    # a rule published since (not applied yet): an event stamped before the proven observation
    # is still covered by it, and the view is not read; a later one waits for the rule
    rules.states = [ReferencePartition(position=5, end_offset=6, observed_at_ms=T0 + 45,
                                       last_timestamp_ms=T0 + 41)]  # fmt: skip
    await asyncio.wait_for(admission.await_reference(record(ts=T0 + 40)), 10)
    assert (rules.read, templates.read) == (1, 1)
    later = asyncio.create_task(admission.await_reference(record(ts=T0 + 44)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not later.done()
    assert (rules.read, templates.read) == (2, 1)
    rules.states = [caught_up(T0 + 46)]
    signal.notify()
    await asyncio.wait_for(later, 10)
    counters = admission.gate.counters
    assert counters.gave_up == 0
    # the one that went on what was proven is counted as the gate counts any event let go
    assert (counters.waited, counters.by_verdict) == (1, {Verdict.CAUGHT_UP.value: 3})
