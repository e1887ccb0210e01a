"""Experience-Insights-shaped events for the receiver's tests."""

from __future__ import annotations

from typing import Any

import orjson


def ei_event(
    event_id: str | None = "ev-1",
    schema_type: str = "Exstream-Email-POST",
    *,
    communication_id: str = "com-1",
    customer_id: str = "cust-000042",
    channel: str = "EMAIL",
    when: str = "2027-01-15T08:00:00.123Z",
    document_id: str | None = "doc-9",
    job_id: str | None = "job-7",
    msg: str | None = None,
    **user: Any,
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "schemaVersion": "1.0",
        "schemaType": schema_type,
        "schemaSource": "air-exstream",
        "tenant": "air",
        "eventDate": when,
    }
    if event_id is not None:
        envelope["eventId"] = event_id
    metadata: dict[str, Any] = {
        "AirCommunicationId": communication_id,
        "CustomerId": customer_id,
        "AirChannel": channel,
        **user,
    }
    if document_id is not None:
        metadata["DocumentId"] = document_id
    if job_id is not None:
        metadata["ExstreamJobId"] = job_id
    event: dict[str, Any] = {"expctr": envelope, "user": metadata}
    if schema_type.startswith("Exstream-Email-") and not schema_type.endswith("-Failed"):
        event["exstreamEmailStatistics"] = {
            "creationTime": when,
            "emailProvider": "OpenText Notifications",
            "customerEmailId": "someone@example.com",
            "campaignId": "c",
            "domain": "air",
            "communicationId": "design-1",
            "eventType": schema_type.removeprefix("Exstream-Email-"),
        }
    else:
        job: dict[str, Any] = {
            "campaignId": "c",
            "communicationId": "design-1",
            "contentType": "application/pdf",
            "creationTime": when,
            "domain": "air",
            "status": "error" if schema_type.endswith("-Failed") else "success",
        }
        if msg is not None:
            job["msg"] = msg
        event["exstreamJob"] = job
    return event


def batch(*events: dict[str, Any]) -> bytes:
    return orjson.dumps(list(events))
