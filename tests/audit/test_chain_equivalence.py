"""``append`` chains exactly as it did when first written (the hash definition never changes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.baseline.chain import append as first_append
from streams.audit.chain import ChainHead, append, verify_chain
from streams.domain.records import AuditRecord
from tests.codec.strategies import records

pytestmark = pytest.mark.unit

heads = st.just(ChainHead()) | st.builds(
    ChainHead, seq=st.integers(0, 2**40), hash=st.text("0123456789abcdef", min_size=64, max_size=64)
)


@given(heads, st.lists(records(AuditRecord), min_size=1, max_size=5))
def test_chained_records_and_heads_are_as_first_written(
    head: ChainHead, batch: list[AuditRecord]
) -> None:
    ours, theirs = head, head
    chained = []
    for record in batch:
        mine, ours = append(ours, record)
        first, theirs = first_append(theirs, record)
        assert repr(mine) == repr(first)
        assert ours == theirs
        chained.append(mine)
    if head == ChainHead():
        report = verify_chain(0, enumerate(chained))
        assert report.ok
        assert report.head == ours


@given(st.lists(records(AuditRecord), min_size=1, max_size=5))
def test_a_chain_written_as_first_written_still_verifies(batch: list[AuditRecord]) -> None:
    head, chained = ChainHead(), []
    for record in batch:
        record, head = first_append(head, record)
        chained.append(record)
    report = verify_chain(3, enumerate(chained))
    assert report.ok
    assert report.head == head
