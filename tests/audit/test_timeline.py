from __future__ import annotations

import pytest

from streams.audit.timeline import timeline
from streams.domain.records import AuditRecord

pytestmark = pytest.mark.unit


def _rec(seq: int, at: int, customer: str, case: str | None = None) -> AuditRecord:
    return AuditRecord(
        audit_id=f"a{seq}",
        kind="COMMAND_EMITTED",
        customer_id=customer,
        case_id=case,
        occurred_at=at,
        summary="s",
        seq=seq,
    )


def test_orders_by_business_time_then_chain_position() -> None:
    records = [_rec(3, 10, "c1"), _rec(1, 20, "c1"), _rec(2, 10, "c1"), _rec(4, 5, "c2")]
    assert [r.seq for r in timeline(records, customer_id="c1")] == [2, 3, 1]


def test_filters_by_case() -> None:
    records = [_rec(1, 1, "c1", "k1"), _rec(2, 2, "c1", "k2"), _rec(3, 3, "c1", "k1")]
    assert [r.seq for r in timeline(records, case_id="k1")] == [1, 3]


def test_requires_a_selector() -> None:
    with pytest.raises(ValueError, match="customer id or a case id"):
        timeline([])
