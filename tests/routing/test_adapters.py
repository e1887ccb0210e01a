"""The worker's shared outputs (:class:`~streams.routing.adapters.WorkerOutputs`) over plain
fakes of its Faust topics and assignor: where an audit record is chained, and what a dead letter
writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.codec import codec_for
from streams.deadletter.letters import dead_letter_headers
from streams.domain.ids import audit_id
from streams.domain.records import AlignmentAlert, AuditKind, AuditRecord, DeadLetter
from streams.routing.adapters import TopicAlerts, WorkerOutputs
from streams.routing.handlers.audit import AuditChains
from streams.routing.metrics import RoutingMetrics
from tests.domain.factories import T0
from tests.routing.handlers.fakes import Record, Table

pytestmark = pytest.mark.unit

INTAKE = "audit.intake.v1"
EVENTS = "air.account-events.v1"
RULES = "air.comm-rules.v1"
NOW = T0 + 123
audit_codec = codec_for(AuditRecord)
letter_codec = codec_for(DeadLetter)
alert_codec = codec_for(AlignmentAlert)


@dataclass
class Topic:
    """A Faust topic: every ``send`` as its keyword arguments."""

    name: str
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


@dataclass
class Assignor:
    """Topic groups as faust's assignor gives them (co-partitioned topics share a group)."""

    groups: dict[str, int]

    def group_for_topic(self, topic: str) -> int:
        return self.groups[topic]


@dataclass
class App:
    assignor: Assignor


@dataclass
class Totals:
    dead_letters: int = 0
    audit_written: int = 0


@dataclass
class World:
    chain_directly: bool = True
    handling: Record | None = None
    groups: dict[str, int] = field(default_factory=lambda: {INTAKE: 0, EVENTS: 0, RULES: 1})
    heads: Table = field(default_factory=Table)
    audit: Topic = field(default_factory=lambda: Topic("audit.communications.v1"))
    intake: Topic = field(default_factory=lambda: Topic(INTAKE))
    dlqs: dict[str, Topic] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    metrics: RoutingMetrics = field(default_factory=RoutingMetrics)

    def __post_init__(self) -> None:
        chains = AuditChains(
            heads=self.heads, audit=self, encode=audit_codec.encode, counters=self.totals
        )
        self.outputs = WorkerOutputs(
            app=App(Assignor(self.groups)),
            chains=chains,
            intake_topic=self.intake,
            intake_name=INTAKE,
            encode_intake=audit_codec.encode,
            chain_directly=self.chain_directly,
            dlq_topic=self.make_dlq,
            letter_codec=lambda name: letter_codec,
            counters=self.totals,
            metrics=self.metrics,
            current_message=lambda: self.handling,
            now_ms=lambda: NOW,
        )

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        await self.audit.send(key=key, value=value, partition=partition)

    def make_dlq(self, name: str) -> Topic:
        assert name not in self.dlqs, "a dead-letter topic is made once"
        topic = self.dlqs[name] = Topic(name)
        return topic

    def chained(self) -> list[AuditRecord]:
        return [audit_codec.decode(s["value"]) for s in self.audit.sent]

    def via_intake(self) -> list[AuditRecord]:
        return [audit_codec.decode(s["value"]) for s in self.intake.sent]

    def dead_letter_count(self, topic: str, reason: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "air_exstream_routing_dead_letters_total", {"topic": topic, "reason": reason}
        )


def record(topic: str = EVENTS, *, partition: int = 3, offset: int = 9, **kw: Any) -> Record:
    values: dict[str, Any] = {"key": b"cust-1", "value": b"\x01bad", "headers": None}
    values.update(kw)
    return Record(topic=topic, partition=partition, offset=offset, **values)


def note(n: int = 1) -> AuditRecord:
    return AuditRecord(
        audit_id=f"a-{n}", kind=AuditKind.ALIGNMENT_ALERT, occurred_at=T0, summary="s"
    )


async def test_an_audit_record_of_a_co_partitioned_input_is_chained_in_its_partition() -> None:
    world = World(handling=record(EVENTS, partition=4))
    await world.outputs.send_audit(note(), b"cust-1")
    assert [(s["key"], s["partition"]) for s in world.audit.sent] == [(b"cust-1", 4)]
    assert world.chained()[0].seq == 1
    assert world.intake.sent == []
    assert world.heads.writes[0][:2] == (4, b"4")


async def test_an_audit_record_of_another_input_goes_through_the_intake() -> None:
    world = World(handling=record(RULES, partition=0))
    await world.outputs.send_audit(note(), b"rule-1")
    assert world.audit.sent == []
    assert [s["key"] for s in world.intake.sent] == [b"rule-1"]
    assert world.via_intake() == [note()]  # unchained: the audit writer chains it


@pytest.mark.parametrize(
    ("world", "why"),
    [
        (World(handling=None), "a timer: no record is being handled"),
        (World(handling=record(EVENTS), chain_directly=False), "audit and intake differ"),
        (World(handling=record("unassigned.v1")), "the topic is not assigned here"),
    ],
)
async def test_an_audit_record_goes_through_the_intake_when_it_cannot_be_chained_here(
    world: World, why: str
) -> None:
    await world.outputs.send_audit(note(), None)
    assert world.audit.sent == [], why
    assert [s["key"] for s in world.intake.sent] == [b""]


async def test_a_dead_letter_goes_to_the_dlq_with_its_reason_counted_and_audited() -> None:
    world = World()
    bad = record(EVENTS, partition=3, offset=9, headers=[("content-type", b"avro")])
    world.handling = bad
    await world.outputs.dead_letter(bad, "DECODE_ERROR", "truncated record")

    [sent] = world.dlqs["air.account-events.v1.dlq"].sent
    letter = letter_codec.decode(sent["value"])
    assert sent["key"] == b"cust-1"
    assert sent["headers"] == dead_letter_headers(letter)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (EVENTS, 3, 9)
    assert (letter.error_type, letter.reason, letter.failed_at) == (
        "DECODE_ERROR",
        "truncated record",
        NOW,
    )
    assert world.totals.dead_letters == 1
    assert world.dead_letter_count(EVENTS, "DECODE_ERROR") == 1

    subject = f"{EVENTS}/3/9"
    [audit] = world.chained()  # in the dead-lettered record's partition and transaction
    assert world.audit.sent[0]["partition"] == 3
    assert audit.audit_id == audit_id(AuditKind.DEAD_LETTER, subject)
    assert (audit.kind, audit.customer_id, audit.occurred_at) == (
        AuditKind.DEAD_LETTER,
        "cust-1",
        NOW,
    )
    assert audit.summary == f"record {subject} dead-lettered: DECODE_ERROR"
    assert audit.details == {
        "error_type": "DECODE_ERROR",
        "source": subject,
        "reason": "truncated record",
    }


async def test_each_source_topic_gets_its_dead_letter_topic_once() -> None:
    world = World()
    for offset in range(3):
        await world.outputs.dead_letter(record(EVENTS, offset=offset), "BAD_MAGIC", "r")
    await world.outputs.dead_letter(record(RULES, key=None), "INVALID_RULE", "r")
    assert sorted(world.dlqs) == ["air.account-events.v1.dlq", "air.comm-rules.v1.dlq"]
    assert len(world.dlqs["air.account-events.v1.dlq"].sent) == 3
    assert world.totals.dead_letters == 4
    assert world.dead_letter_count(EVENTS, "BAD_MAGIC") == 3
    # not being handled (handling is None): the audit records went through the intake
    assert [a.customer_id for a in world.via_intake()] == ["cust-1"] * 3 + [None]


@pytest.mark.parametrize(
    ("rule_id", "key"), [("r-7", b"r-7"), (None, b"tpl-statement")], ids=["rule", "template"]
)
async def test_an_alert_is_keyed_by_its_rule_else_its_template_counted_and_audited(
    rule_id: str | None, key: bytes
) -> None:
    alerts = Topic("alignment.alerts.v1")
    audits: list[tuple[AuditRecord, bytes | None]] = []
    totals = AlertTotals()

    async def send_audit(record: AuditRecord, k: bytes | None) -> None:
        audits.append((record, k))

    alert = AlignmentAlert(
        alert_id="al-1",
        kind="TEMPLATE_MISSING",
        rule_id=rule_id,
        template_id="tpl-statement",
        message="m" * 300,
        raised_at=T0,
    )
    await TopicAlerts(
        topic=alerts, encode=alert_codec.encode, counters=totals, send_audit=send_audit
    ).emit(alert)
    assert [(s["key"], alert_codec.decode(s["value"])) for s in alerts.sent] == [(key, alert)]
    assert totals.alerts == 1
    [(audit, audit_key)] = audits
    assert audit_key == key
    assert audit == AuditRecord(
        audit_id=audit_id(AuditKind.ALIGNMENT_ALERT, "al-1"),
        kind=AuditKind.ALIGNMENT_ALERT,
        occurred_at=T0,
        summary="m" * 200,
        details={"alert_id": "al-1", "kind": "TEMPLATE_MISSING"},
    )


@dataclass
class AlertTotals:
    alerts: int = 0
