"""One customer's or one case's history, from audit records: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from streams.domain.records import AuditRecord


def timeline(
    records: Iterable[AuditRecord],
    *,
    customer_id: str | None = None,
    case_id: str | None = None,
) -> list[AuditRecord]:
    """The records about ``customer_id`` and/or ``case_id`` in the order things happened.

    Order: the business time (``occurred_at``), then the chain position (``seq``), which is the
    order the audit writer saw them in: a customer's records all live in one partition, so
    ``seq`` is a total order among them.
    """
    if customer_id is None and case_id is None:
        raise ValueError("timeline needs a customer id or a case id")
    selected = [
        r
        for r in records
        if (customer_id is None or r.customer_id == customer_id)
        and (case_id is None or r.case_id == case_id)
    ]
    selected.sort(key=lambda r: (r.occurred_at, r.seq))
    return selected
