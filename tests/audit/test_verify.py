"""Verification against signed checkpoints, as pure logic: what is verified, what is only
unconfirmed, and each way an attacker with write access could try to fake the trail."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.audit.chain import ChainHead, append
from streams.audit.checkpoints import Checkpoint, key_id_of, sign
from streams.audit.verify import (
    SeenCheckpoint,
    TrailRecord,
    TrustedStart,
    checkpoint_violations,
    verify_partition,
)
from streams.domain.records import AuditRecord
from tests.audit.forgery import chained, forged_delivery, status_record

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.generate()
KID = key_id_of(KEY.public_key())
KEYS = {KID: KEY.public_key()}
T0 = 1_780_000_000_000
TOPIC = "audit.communications.v1"
CP_TOPIC = "audit.checkpoints.v1"


def trail(records: list[AuditRecord], *, at: int = T0, step: int = 10) -> list[TrailRecord]:
    """Records at offsets 0.., appended by the broker ``step`` ms apart from ``at``."""
    return [TrailRecord(i, r, at + i * step, True) for i, r in enumerate(records)]


def signed(
    record: AuditRecord, at: int, *, partition: int = 0, key: Ed25519PrivateKey = KEY
) -> Checkpoint:
    return sign(key, key_id_of(key.public_key()), partition, ChainHead(record.seq, record.hash), at)


def seen(*checkpoints: Checkpoint) -> list[SeenCheckpoint]:
    return [SeenCheckpoint(CP_TOPIC, 0, i, cp) for i, cp in enumerate(checkpoints)]


def verify(
    items: list[TrailRecord], *checkpoints: Checkpoint, start: TrustedStart | None = None
) -> object:
    valid, bad = checkpoint_violations(seen(*checkpoints), KEYS)
    assert bad == []
    return verify_partition(TOPIC, 0, items, valid, start=start, clock_skew_ms=1_000)


def test_records_up_to_the_last_checkpoint_are_verified_the_rest_unconfirmed() -> None:
    records = chained(30)
    items = trail(records)
    verdict = verify(items, signed(records[9], T0 + 95), signed(records[19], T0 + 195))
    assert verdict.ok
    assert (verdict.verified, verdict.unconfirmed) == (20, 10)
    assert verdict.unconfirmed_offsets == tuple(range(20, 30))
    assert verdict.anchor is not None
    assert (verdict.anchor.seq, verdict.anchor.offset) == (20, 19)
    assert verdict.checkpoints == 2


def test_without_checkpoints_everything_is_unconfirmed_but_the_chain_is_still_checked() -> None:
    records = chained(5)
    verdict = verify(trail(records))
    assert verdict.ok
    assert (verdict.verified, verdict.unconfirmed) == (0, 5)
    broken = [*records[:2], *records[3:]]
    (gap,) = verify(trail(broken)).violations
    assert (gap.offset, gap.seq) == (2, 4)
    assert "does not continue the chain" in gap.problem


# ------------------------------------------------------------------------------ attacks


def test_a_forged_append_after_the_head_is_caught_by_the_next_heartbeat() -> None:
    """The issue's scenario: 20 chained records, then a forged DELIVERED chained after the
    head with the public algorithm."""
    records = chained(20)
    forged = forged_delivery(records[-1])
    items = [*trail(records), TrailRecord(20, forged, T0 + 5_000, True)]
    checkpoint = signed(records[-1], T0 + 300)
    # before the writer signs again, the forged record is only unconfirmed
    early = verify(items, checkpoint)
    assert early.ok
    assert (early.verified, early.unconfirmed) == (20, 1)
    # the writer's heartbeat: its head is still seq 20 after the forged record was appended
    heartbeat = signed(records[-1], T0 + 70_000)
    late = verify(items, checkpoint, heartbeat)
    assert (late.verified, late.unconfirmed) == (20, 0)
    (violation,) = late.violations
    assert (violation.topic, violation.partition, violation.offset, violation.seq) == (
        TOPIC,
        0,
        20,
        21,
    )
    assert "not written by the audit writer" in violation.problem


def test_a_forged_append_after_the_head_needs_broker_timestamps() -> None:
    records = chained(3)
    forged = forged_delivery(records[-1])
    items = [TrailRecord(i, r, T0, False) for i, r in enumerate([*records, forged])]
    verdict = verify(items, signed(records[-1], T0 + 90_000))
    assert verdict.ok  # producer-set timestamps cannot tell, and the verdict says so
    assert not verdict.broker_time
    assert verdict.unconfirmed == 1


def test_a_forged_append_between_checkpoints_is_named() -> None:
    records = chained(10)
    forged = forged_delivery(records[4])  # chained after seq 5 while the writer went on
    items = trail([*records[:5], forged, *records[5:]])
    verdict = verify(items, signed(records[4], T0 + 45), signed(records[-1], T0 + 200))
    assert verdict.verified == 10
    (violation,) = verdict.violations
    assert (violation.offset, violation.seq) == (5, 6)
    assert "not part of the chain the audit writer signed" in violation.problem
    assert "the writer's record at seq 6 is at offset 6" in violation.problem


def test_before_the_next_checkpoint_a_fork_is_already_a_violation() -> None:
    records = chained(6)
    forged = forged_delivery(records[2])
    items = trail([*records[:3], forged, *records[3:]])
    verdict = verify(items, signed(records[2], T0 + 25))
    (violation,) = verdict.violations
    assert violation.offset == 4  # the writer's own record follows the same predecessor
    assert "a fork: the record at offset 3 also follows seq 3" in violation.problem
    assert verdict.unconfirmed_offsets == (3, 5, 6)  # both branches followed


def test_a_rewritten_tail_with_a_recomputed_chain_does_not_fit_the_signed_head() -> None:
    records = chained(12)
    kept = records[:8]
    rewritten = chained(4, head=ChainHead(kept[-1].seq, kept[-1].hash), first=100)
    items = trail([*kept, *rewritten], at=T0 + 1_000_000)  # rewritten later, from scratch
    verdict = verify(items, signed(records[5], T0 + 55), signed(records[-1], T0 + 200))
    assert verdict.anchor is not None
    assert verdict.anchor.seq == 6
    (violation,) = verdict.violations
    assert (violation.offset, violation.seq) == (11, 12)
    assert "does not fit the signed head" in violation.problem
    # which records after the anchor were rewritten only a checkpoint could tell
    assert verdict.unconfirmed_offsets == (6, 7, 8, 9, 10, 11)


def test_a_partition_recreated_from_scratch_fits_no_signed_head() -> None:
    original = chained(15)
    fabricated = chained(6, first=500)
    verdict = verify(trail(fabricated, at=T0 + 10_000_000), signed(original[-1], T0 + 200))
    assert verdict.anchor is None
    assert verdict.verified == 0
    (violation,) = verdict.violations
    assert violation.offset == 6
    assert violation.seq == 15
    assert "not in the partition, which ends at seq 6" in violation.problem


def test_deleted_records_below_the_signed_head_are_named() -> None:
    records = chained(10)
    items = [TrailRecord(i, r, T0 + i, True) for i, r in enumerate(records) if i >= 4]
    verdict = verify(items, signed(records[-1], T0 + 100))
    (violation,) = verdict.violations
    assert (violation.offset, violation.seq) == (4, 5)
    assert "the record before it (seq 4) is missing" in violation.problem


def test_a_duplicated_record_is_named() -> None:
    records = chained(6)
    items = trail([*records[:4], records[2], *records[4:]])
    verdict = verify(items, signed(records[-1], T0 + 100))
    (violation,) = verdict.violations
    assert violation.offset == 4
    assert "a copy of the record at offset 2" in violation.problem


def test_an_altered_record_is_named() -> None:
    records = chained(6)
    altered = dataclasses.replace(records[3], summary="communication com-3 is DELIVERED")
    items = trail([*records[:3], altered, *records[4:]])
    verdict = verify(items, signed(records[-1], T0 + 100))
    assert [(v.offset, v.problem) for v in verdict.violations] == [
        (3, "content altered: the record's hash does not match its fields")
    ]
    assert verdict.verified == 5  # the others still hang on the signed head
    # in the unsigned tail the chain goes on from the altered record as stored
    tail = verify(items, signed(records[1], T0 + 15))
    assert [v.offset for v in tail.violations] == [3]
    assert tail.unconfirmed_offsets == (2, 4, 5)


def test_forged_checkpoints_are_violations_on_the_checkpoints_topic() -> None:
    records = chained(5)
    mallory = Ed25519PrivateKey.generate()
    forged_head = forged_delivery(records[-1])
    by_mallory = signed(forged_head, T0 + 100, key=mallory)
    borrowed_id = dataclasses.replace(by_mallory, key_id=KID)
    valid, bad = checkpoint_violations(
        seen(signed(records[-1], T0 + 60), by_mallory, borrowed_id), KEYS
    )
    assert len(valid) == 1
    assert [(v.topic, v.partition, v.offset) for v in bad] == [(CP_TOPIC, 0, 1), (CP_TOPIC, 0, 2)]
    assert "not an accepted public key" in bad[0].problem
    assert "does not verify" in bad[1].problem
    # the forged record itself (appended after the writer's checkpoint) stays unconfirmed
    items = [*trail(records), TrailRecord(5, forged_head, T0 + 1_000, True)]
    verdict = verify_partition(TOPIC, 0, items, valid, clock_skew_ms=0)
    assert (verdict.verified, verdict.unconfirmed) == (5, 1)


def test_a_checkpoint_of_another_partition_is_not_used() -> None:
    records = chained(3)
    other = signed(records[-1], T0 + 100, partition=1)
    valid, _ = checkpoint_violations(seen(other), KEYS)
    verdict = verify_partition(TOPIC, 0, trail(records), valid)
    assert verdict.anchor is None
    assert verdict.checkpoints == 0


# ------------------------------------------------------------------------------ incremental


def test_incremental_verification_starts_at_a_trusted_checkpoint() -> None:
    records = chained(50)
    trusted = signed(records[29], T0 + 295)
    start = TrustedStart(trusted, offset=29)
    items = trail(records)[29:]
    verdict = verify(items, signed(records[44], T0 + 445), start=start)
    assert verdict.ok
    assert (verdict.verified, verdict.unconfirmed) == (15, 5)
    # nothing new signed yet: the new records are unconfirmed
    nothing_new = verify(items, start=start)
    assert nothing_new.ok
    assert (nothing_new.verified, nothing_new.unconfirmed) == (0, 20)


def test_incremental_verification_refuses_a_changed_start() -> None:
    records = chained(10)
    start = TrustedStart(signed(records[4], T0 + 45), offset=4)
    recreated = trail(chained(10, first=77))[4:]
    verdict = verify(recreated, start=start)
    (violation,) = verdict.violations
    assert (violation.offset, violation.seq) == (4, 5)
    assert "trusted checkpoint is gone or changed" in violation.problem


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.data())
def test_any_single_forged_record_before_the_last_checkpoint_is_named(
    n: int, data: st.DataObject
) -> None:
    records = chained(n)
    at = data.draw(st.integers(0, n - 1))
    forged = forged_delivery(records[at], communication=f"com-{at}")
    items = trail([*records[: at + 1], forged, *records[at + 1 :]])
    head_written = chained(1, head=ChainHead(records[-1].seq, records[-1].hash), first=999)
    items.append(TrailRecord(len(items), head_written[0], T0 + 10 * len(items), True))
    verdict = verify(items, signed(head_written[0], T0 + 10 * len(items) + 5))
    assert [(v.offset, v.seq) for v in verdict.violations] == [(at + 1, at + 2)]
    assert verdict.verified == n + 1


def test_records_carry_their_partition_in_every_verdict() -> None:
    record, _ = append(ChainHead(), status_record(1))
    verdict = verify_partition(TOPIC, 4, [TrailRecord(0, record, T0, True)], [])
    assert (verdict.topic, verdict.partition) == (TOPIC, 4)
