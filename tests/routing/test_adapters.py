"""The topic adapters of the handlers' ports (:mod:`streams.routing.adapters`) over a plain fake
topic: an alignment alert's key, count and audit record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.codec import codec_for
from streams.domain.ids import audit_id
from streams.domain.records import AlignmentAlert, AuditKind, AuditRecord
from streams.routing.adapters import TopicAlerts
from tests.domain.factories import T0

pytestmark = pytest.mark.unit

alert_codec = codec_for(AlignmentAlert)


@dataclass
class Topic:
    """A topic: every ``send`` as its keyword arguments."""

    name: str
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


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
