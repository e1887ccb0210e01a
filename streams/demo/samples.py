"""One sample record of every schema, for the demo's round trip through Kafka."""

from __future__ import annotations

from typing import Any

from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    AuditRecord,
    CaseEvent,
    CommRule,
    CommunicationStatus,
    CompositionCommand,
    Condition,
    DeadLetter,
    DeliveryEvent,
    DocumentMetadata,
    DocumentRequest,
    PostalAddress,
    Preference,
    QuietHours,
    Recipient,
    TemplateVersion,
)

T0 = 1_767_225_600_000


def sample_records() -> list[Any]:
    address = PostalAddress(
        line1="1 Sample Road", city="Springfield", postal_code="12345", country="US"
    )
    return [
        AccountEvent(
            event_id="evt-1",
            event_type="BILLING_CYCLE_CLOSED",
            customer_id="cust-1",
            account_id="acct-1",
            occurred_at=T0,
            attributes={"amount_due": "42.10", "currency": "USD"},
        ),
        CaseEvent(
            event_id="evt-2",
            event_type="CLAIM_DECIDED",
            customer_id="cust-1",
            case_id="case-1",
            case_type="CLAIM",
            outcome="APPROVED",
            occurred_at=T0,
        ),
        DocumentRequest(
            request_id="req-1",
            customer_id="cust-1",
            document_type="POLICY_COPY",
            reference_id="POL-1",
            requested_at=T0,
        ),
        Preference(
            customer_id="cust-1",
            language="en",
            email_consent=True,
            email="someone@example.com",
            postal_address=address,
            quiet_hours=QuietHours(start_hour=22, end_hour=7),
            updated_at=T0,
        ),
        CommRule(
            rule_id="rule-1",
            version=1,
            event_type="BILLING_CYCLE_CLOSED",
            conditions=[Condition(field="amount_due", op="GT", value="0")],
            communication_type="BILLING_STATEMENT",
            template_id="tpl-1",
        ),
        TemplateVersion(
            template_id="tpl-1",
            version=2,
            language="en",
            status="APPROVED",
            communication_type="BILLING_STATEMENT",
            required_fields=["amount_due"],
            body="Amount due: {amount_due}",
            updated_at=T0,
        ),
        DeliveryEvent(
            event_id="dlv-1",
            communication_id="com-1",
            customer_id="cust-1",
            channel="EMAIL",
            status="EMAIL_DELIVERED",
            occurred_at=T0,
        ),
        CompositionCommand(
            communication_id="com-1",
            source_event_id="evt-1",
            source_topic="air.account-events.v1",
            event_type="BILLING_CYCLE_CLOSED",
            rule_id="rule-1",
            rule_version=1,
            customer_id="cust-1",
            communication_type="BILLING_STATEMENT",
            template_id="tpl-1",
            template_version=2,
            language="en",
            channel="PRINT",
            recipient=Recipient(postal_address=address),
            data={"amount_due": "42.10"},
            created_at=T0,
        ),
        AlignmentAlert(
            alert_id="alr-1",
            kind="MISSING_TEMPLATE",
            rule_id="rule-9",
            template_id="tpl-9",
            message="rule-9 points at tpl-9, which Exstream does not have",
            raised_at=T0,
        ),
        CommunicationStatus(
            communication_id="com-1",
            customer_id="cust-1",
            channel="EMAIL",
            status="EMAIL_DELIVERED",
            updated_at=T0,
        ),
        DocumentMetadata(
            document_id="doc-1",
            communication_id="com-1",
            customer_id="cust-1",
            template_id="tpl-1",
            template_version=2,
            communication_type="BILLING_STATEMENT",
            channel="EMAIL",
            language="en",
            origin="STREAM",
            produced_at=T0,
        ),
        AuditRecord(
            audit_id="aud-1",
            kind="COMMAND_EMITTED",
            customer_id="cust-1",
            occurred_at=T0,
            summary="sample",
        ),
        DeadLetter(
            source_topic="air.account-events.v1",
            source_partition=0,
            source_offset=7,
            reason="sample",
            error_type="DECODE_ERROR",
            original_value=b"\x00\x01",
            failed_at=T0,
        ),
    ]
