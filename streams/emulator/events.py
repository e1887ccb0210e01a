"""Experience-Insights-shaped event JSON for one customer of a job (pure).

Shape as in Exstream's online help ("Event JSON file"): an ``expctr`` envelope (``schemaVersion``,
``schemaType``, ``schemaSource``, ``tenant``, ``eventId``, ``eventDate``), then
``exstreamEmailStatistics`` for OpenText Notifications email events or ``exstreamJob`` for the
others, and ``user``: the output manifest's metadata for that customer. The integration puts its
own keys there (metadata defined on the design, see :data:`USER_KEYS`), which is how an event maps
back to one of our communications. ``exstreamJob.msg`` on failure events is emulator-only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from streams.emulator.design import iso

NAMESPACE = uuid.UUID("0c3f6f9e-3b8e-4d1a-8c55-1f2f7b6c9d21")
SCHEMA_SOURCE = "air-exstream"
USER_KEYS = ("AirCommunicationId", "CustomerId", "AirChannel", "DocumentId", "ExstreamJobId")


@dataclass(frozen=True, slots=True)
class Customer:
    """What the output manifest says of one customer of a job."""

    communication_id: str
    customer_id: str
    channel: str
    exstream_communication_id: str | None
    job_id: str
    document_id: str | None
    email: str | None = None


def event(
    customer: Customer,
    schema_type: str,
    *,
    tenant: str,
    domain: str,
    at_ms: int,
    msg: str | None = None,
    failed: bool = False,
) -> dict[str, Any]:
    event_id = str(
        uuid.uuid5(NAMESPACE, f"{customer.job_id}/{customer.communication_id}/{schema_type}")
    )
    user = {
        "AirCommunicationId": customer.communication_id,
        "CustomerId": customer.customer_id,
        "AirChannel": customer.channel,
        "ExstreamJobId": customer.job_id,
    }
    if customer.document_id is not None:
        user["DocumentId"] = customer.document_id
    body: dict[str, Any] = {
        "expctr": {
            "schemaVersion": "1.0",
            "schemaType": schema_type,
            "schemaSource": SCHEMA_SOURCE,
            "tenant": tenant,
            "eventId": event_id,
            "eventDate": iso(at_ms),
        },
        "user": user,
    }
    if schema_type.startswith("Exstream-Email-") and not schema_type.endswith("-Failed"):
        body["exstreamEmailStatistics"] = {
            "creationTime": iso(at_ms),
            "emailProvider": "OpenText Notifications",
            "customerEmailId": customer.email or "",
            "campaignId": SCHEMA_SOURCE,
            "domain": domain,
            "communicationId": customer.exstream_communication_id or "",
            "eventType": schema_type.removeprefix("Exstream-Email-"),
        }
    else:
        job: dict[str, Any] = {
            "campaignId": SCHEMA_SOURCE,
            "communicationId": customer.exstream_communication_id or "",
            "contentType": "application/pdf",
            "creationTime": iso(at_ms),
            "domain": domain,
            "status": "error" if failed else "success",
        }
        if msg is not None:
            job["msg"] = msg
        body["exstreamJob"] = job
    return body
