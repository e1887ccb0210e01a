"""Driver data: what Exstream's input channels receive as the request body (pure).

Exstream runs a communication *design* over driver data whose shape the design's data source
defines (JSON here). One customer record holds what one of our communications needs: our
communication id (the key everything maps back with, also put on the output manifest so that
delivery events carry it), the customer id, the Exstream communication (design) id, the channel,
the recipient, and the data the template's fields take. A batch is one multi-customer driver file
``{"customers": [record, ...]}``.

The record's field names and the multi-customer wrapper are this project's driver data source
definition (a deployment designs its data source to match); they are not an Exstream contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.domain.records import CompositionCommand

DRIVER_CONTENT_TYPE = "application/json"
EXTERNAL_ID_VARIABLE = "externalId"
"""The flow-model variable our batch id is handed in (``exstream-variable`` header)."""


def customer_record(
    command: CompositionCommand, *, exstream_communication_id: str | None
) -> dict[str, Any]:
    """One customer's driver record for ``command``."""
    recipient: dict[str, Any] = {}
    if command.recipient.name:
        recipient["name"] = command.recipient.name
    if command.recipient.email:
        recipient["email"] = command.recipient.email
    if command.recipient.phone:
        recipient["phone"] = command.recipient.phone
    if command.recipient.postal_address is not None:
        a = command.recipient.postal_address
        recipient["postalAddress"] = {
            "line1": a.line1,
            "line2": a.line2,
            "city": a.city,
            "region": a.region,
            "postalCode": a.postal_code,
            "country": a.country,
        }
    return {
        "communicationId": command.communication_id,
        "customerId": command.customer_id,
        "exstreamCommunicationId": exstream_communication_id,
        "templateId": command.template_id,
        "templateVersion": command.template_version,
        "language": command.language,
        "channel": command.channel,
        "regulatory": command.regulatory,
        "recipient": recipient,
        "data": dict(command.data),
    }


def ondemand_record(
    *,
    request_id: str,
    customer_id: str,
    template_id: str,
    version: int,
    language: str,
    channel: str,
    data: dict[str, str],
) -> bytes:
    """The driver data of one on-demand document (a portal request)."""
    return orjson.dumps(
        {
            "communicationId": request_id,
            "customerId": customer_id,
            "templateId": template_id,
            "templateVersion": version,
            "language": language,
            "channel": channel,
            "data": data,
        }
    )


def batch_file(records: Iterable[dict[str, Any]]) -> bytes:
    """A multi-customer driver file."""
    return orjson.dumps({"customers": list(records)})


def external_id_header(external_id: str) -> dict[str, str]:
    """How our batch id reaches the job: an ``exstream-variable`` header (public: each such
    header becomes a flow-model variable). That the flow model makes this variable the job's
    ``externalId`` is this deployment's choice (emulator-only: not public)."""
    return {"exstream-variable": f"{EXTERNAL_ID_VARIABLE}={external_id}"}


def parse_external_id_header(value: str | None) -> str | None:
    """The external id in an ``exstream-variable`` header (the emulator's side of it)."""
    if not value:
        return None
    name, sep, rest = value.partition("=")
    return rest.strip() or None if sep and name.strip() == EXTERNAL_ID_VARIABLE else None
