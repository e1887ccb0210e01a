from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.audit.chain import GENESIS, ChainHead, append, verify_chain
from streams.domain.records import AuditRecord

pytestmark = pytest.mark.unit


def _record(i: int, customer: str = "c-1") -> AuditRecord:
    return AuditRecord(
        audit_id=f"a-{i}",
        kind="COMMAND_EMITTED",
        customer_id=customer,
        communication_id=f"com-{i}",
        occurred_at=1_700_000_000_000 + i,
        summary=f"command {i}",
        details={"rule_id": f"r-{i % 3}"},
    )


def _chain(n: int) -> list[tuple[int, AuditRecord]]:
    head = ChainHead()
    out = []
    for i in range(n):
        chained, head = append(head, _record(i))
        out.append((i, chained))
    return out


def test_first_record_links_to_genesis_and_seq_starts_at_one() -> None:
    (_, first), *_ = _chain(1)
    assert first.seq == 1
    assert first.prev_hash == GENESIS
    assert len(first.hash) == 64


def test_intact_chain_verifies() -> None:
    report = verify_chain(0, _chain(20))
    assert report.ok
    assert report.records == 20
    assert report.head.seq == 20


def test_edited_field_is_detected() -> None:
    chain = _chain(5)
    offset, rec = chain[2]
    chain[2] = (offset, dataclasses.replace(rec, summary="rewritten"))
    report = verify_chain(0, chain)
    assert not report.ok
    assert [v.seq for v in report.violations] == [3]
    assert "content altered" in report.violations[0].problem


def test_deleted_record_is_detected() -> None:
    chain = _chain(5)
    del chain[1]
    problems = [v.problem for v in verify_chain(0, chain).violations]
    assert any("sequence gap" in p for p in problems)
    assert any("broken link" in p for p in problems)


def test_reordered_records_are_detected() -> None:
    chain = _chain(5)
    chain[1], chain[2] = chain[2], chain[1]
    assert not verify_chain(0, chain).ok


def test_recomputed_hash_after_edit_still_breaks_the_next_link() -> None:
    chain = _chain(4)
    offset, rec = chain[1]
    forged, _ = append(ChainHead(seq=1, hash=rec.prev_hash), dataclasses.replace(rec, summary="x"))
    chain[1] = (offset, forged)
    report = verify_chain(0, chain)
    assert [v.seq for v in report.violations] == [3]
    assert "broken link" in report.violations[0].problem


@given(st.integers(min_value=1, max_value=30), st.data())
def test_any_single_edit_is_detected(n: int, data: st.DataObject) -> None:
    chain = _chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    field = data.draw(st.sampled_from(["summary", "customer_id", "occurred_at", "details"]))
    offset, rec = chain[i]
    changed = {
        "summary": rec.summary + "!",
        "customer_id": "someone-else",
        "occurred_at": rec.occurred_at + 1,
        "details": {**rec.details, "extra": "1"},
    }[field]
    chain[i] = (offset, dataclasses.replace(rec, **{field: changed}))
    assert not verify_chain(0, chain).ok
