"""The audit writer over plain fakes: one chain per audit partition, its head in the table, the
signed checkpoints after each append, and the intake's dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streams.audit.chain import GENESIS, ChainHead, verify_chain
from streams.codec import CodecError, codec_for
from streams.domain.records import AuditKind, AuditRecord
from streams.routing.handlers.audit import (
    AuditChains,
    AuditWriter,
    decode_head,
    encode_head,
    head_key,
)
from tests.domain.factories import T0
from tests.routing.handlers.fakes import Outputs, Record, Table

pytestmark = pytest.mark.unit

audit_codec = codec_for(AuditRecord)
INTAKE = "audit.intake.v1"


@dataclass
class Totals:
    audit_written: int = 0


@dataclass
class AuditTopic:
    """``audit.communications.v1``: every chained record with its key and partition."""

    sent: list[tuple[int, bytes, AuditRecord]] = field(default_factory=list)

    async def send(self, key: bytes, value: bytes, partition: int) -> None:
        self.sent.append((partition, key, audit_codec.decode(value)))

    def chain(self, partition: int) -> list[AuditRecord]:
        return [r for p, _, r in self.sent if p == partition]


@dataclass
class Signing:
    """Checkpoints asked for, with what the table held for that head at that moment."""

    table: Table
    seen: list[tuple[int, ChainHead, bytes | None]] = field(default_factory=list)

    async def after_append(self, partition: int, head: ChainHead) -> None:
        self.seen.append((partition, head, self.table.get(head_key(partition))))


@dataclass
class World:
    heads: Table = field(default_factory=Table)
    topic: AuditTopic = field(default_factory=AuditTopic)
    totals: Totals = field(default_factory=Totals)
    outputs: Outputs = field(default_factory=Outputs)
    signed: bool = True

    def __post_init__(self) -> None:
        self.signing = Signing(self.heads)
        self.chains = AuditChains(
            heads=self.heads,
            audit=self.topic,
            encode=audit_codec.encode,
            counters=self.totals,
            checkpoints=self.signing if self.signed else None,
        )
        self.writer = AuditWriter(
            chains=self.chains,
            decode=audit_codec.decode,
            dead_letter=self.outputs.dead_letter,
            registry_wait_s=1.0,
        )


def audit(n: int, customer: str | None = "cust-1") -> AuditRecord:
    return AuditRecord(
        audit_id=f"a-{n}",
        kind=AuditKind.ALIGNMENT_ALERT,
        customer_id=customer,
        occurred_at=T0 + n,
        summary=f"record {n}",
        details={"n": str(n)},
    )


def intake(
    value: bytes | None, *, partition: int = 2, offset: int = 7, key: bytes | None = b"k"
) -> Record:
    return Record(topic=INTAKE, partition=partition, offset=offset, key=key, value=value)


async def test_the_first_append_starts_the_chain_of_the_records_partition() -> None:
    world = World()
    await world.chains.append(intake(None, partition=3), b"cust-1", audit(1))
    [(partition, key, chained)] = world.topic.sent
    assert (partition, key) == (3, b"cust-1")
    assert (chained.seq, chained.prev_hash) == (1, GENESIS)
    assert chained.audit_id == "a-1"
    # the head is in the table under the partition, written in the record's transaction
    assert world.heads.writes == [(3, b"3", encode_head(ChainHead(1, chained.hash)))]
    assert world.totals.audit_written == 1


async def test_appends_continue_the_stored_head_and_the_chain_verifies() -> None:
    world = World()
    for n in range(1, 6):
        await world.chains.append(intake(None, partition=1, offset=n), b"cust-1", audit(n))
    chain = world.topic.chain(1)
    assert [r.seq for r in chain] == [1, 2, 3, 4, 5]
    assert [r.prev_hash for r in chain[1:]] == [r.hash for r in chain[:-1]]
    report = verify_chain(1, enumerate(chain))
    assert report.ok
    assert decode_head(world.heads.get(head_key(1))) == ChainHead(5, chain[-1].hash)
    assert world.totals.audit_written == 5


async def test_each_audit_partition_has_a_chain_of_its_own() -> None:
    world = World()
    await world.chains.append(intake(None, partition=0), b"a", audit(1))
    await world.chains.append(intake(None, partition=4), b"b", audit(2))
    await world.chains.append(intake(None, partition=0), b"a", audit(3))
    assert [r.seq for r in world.topic.chain(0)] == [1, 2]
    assert [r.seq for r in world.topic.chain(4)] == [1]
    assert world.topic.chain(4)[0].prev_hash == GENESIS
    assert {k for _, k, _ in world.heads.writes} == {b"0", b"4"}


async def test_a_chain_continues_from_a_head_an_earlier_owner_stored() -> None:
    world = World()
    earlier = ChainHead(seq=41, hash="ab" * 32)
    world.heads.data[head_key(2)] = encode_head(earlier)
    await world.chains.append(intake(None), b"k", audit(1))
    [(_, _, chained)] = world.topic.sent
    assert (chained.seq, chained.prev_hash) == (42, earlier.hash)


async def test_a_head_replaced_in_the_table_is_read_again_not_the_one_last_written() -> None:
    world = World()
    await world.chains.append(intake(None), b"k", audit(1))
    # e.g. the partition restored from its changelog: another value than the one written
    restored = ChainHead(seq=41, hash="cd" * 32)
    world.heads.data[head_key(2)] = encode_head(restored)
    await world.chains.append(intake(None, offset=8), b"k", audit(2))
    await world.chains.append(intake(None, offset=9), b"k", audit(3))
    chained = [r for _, _, r in world.topic.sent]
    assert [(r.seq, r.prev_hash) for r in chained] == [
        (1, GENESIS),
        (42, restored.hash),
        (43, chained[1].hash),
    ]


async def test_the_checkpoint_sees_the_new_head_after_it_is_stored() -> None:
    world = World()
    await world.chains.append(intake(None, partition=5), b"k", audit(1))
    await world.chains.append(intake(None, partition=5), b"k", audit(2))
    heads = [head for _, head, _ in world.signing.seen]
    assert [h.seq for h in heads] == [1, 2]
    assert all(p == 5 for p, _, _ in world.signing.seen)
    assert [stored for _, _, stored in world.signing.seen] == [encode_head(h) for h in heads]


async def test_without_signing_nothing_is_checkpointed() -> None:
    world = World(signed=False)
    await world.chains.append(intake(None), b"k", audit(1))
    assert world.signing.seen == []
    assert len(world.topic.sent) == 1


async def test_a_failed_head_write_fails_the_append_uncounted() -> None:
    """The transaction then aborts (the chained record with it) and the record is handled
    again: the append must not count or checkpoint what was not committed."""
    world = World()
    world.heads.fail_next_put = True
    with pytest.raises(RuntimeError):
        await world.chains.append(intake(None), b"k", audit(1))
    assert world.totals.audit_written == 0
    assert world.signing.seen == []
    await world.chains.append(intake(None), b"k", audit(1))
    assert world.topic.sent[-1][2].seq == 1  # the head did not move on the failed try


async def test_the_writer_chains_an_intake_record_under_its_key_and_partition() -> None:
    world = World()
    await world.writer.handle(intake(audit_codec.encode(audit(1)), partition=2, key=b"rule-9"))
    [(partition, key, chained)] = world.topic.sent
    assert (partition, key) == (2, b"rule-9")
    assert chained.audit_id == "a-1"
    assert chained.seq == 1
    assert world.outputs.sent == []


async def test_the_writer_chains_an_unkeyed_intake_record_under_an_empty_key() -> None:
    world = World()
    await world.writer.handle(intake(audit_codec.encode(audit(1, customer=None)), key=None))
    [(_, key, _)] = world.topic.sent
    assert key == b""


async def test_an_undecodable_intake_record_is_dead_lettered_not_chained() -> None:
    world = World()
    garbage = b"not an audit record"
    with pytest.raises(CodecError) as raised:
        audit_codec.decode(garbage)
    await world.writer.handle(intake(garbage, offset=11))
    assert world.topic.sent == []
    assert world.heads.writes == []
    [(offset, code, reason)] = world.outputs.of("dead_letter")
    assert offset == 11
    assert (code, reason) == (raised.value.code, str(raised.value))
