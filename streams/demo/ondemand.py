"""The demo's synchronous portal path: ``air-exstream ondemand`` as a separate process.

The service reads the templates the template sync published, asks the Exstream emulator's
on-demand generate for each document, and writes the document's metadata and an audit entry
to Kafka (which the routing worker's audit writer chains). The portal's API keys are made for
the run, one per customer, and passed as hashes only; the link secret is per run too.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.codec import Codecs
from streams.demo.processes import ProcessFailed, ServiceProcess, free_port, wait_http
from streams.domain.records import DocumentMetadata
from streams.ondemand.auth import new_key
from streams.ondemand.records import ondemand_communication_id
from streams.topic_reader import read_topic
from topology import names

INVOICE = {
    "amount_due": "12.50",
    "due_date": "2026-02-01",
    "statement_period": "2026-01",
    "currency": "EUR",
    "language": "en",
}
"""The query of one invoice request (what the portal sends besides the customer id)."""

RETRY_STATUSES = (429, 503, 504)


@dataclass(frozen=True, slots=True)
class Portal:
    url: str
    bearers: dict[str, str]
    """Customer id -> the bearer credential bound to it (never printed)."""


def start_ondemand(
    bootstrap: str,
    prefix: str,
    workdir: Path,
    services: list[ServiceProcess],
    *,
    exstream_url: str,
    client_secret: str,
    customers: list[str],
) -> tuple[ServiceProcess, Portal]:
    """Start the service (it answers once the templates are loaded) with one key per customer."""
    bearers: dict[str, str] = {}
    keys: dict[str, dict[str, str]] = {}
    for i, customer in enumerate(customers):
        bearer, key = new_key(f"demo-portal-{i}", customer)
        bearers[customer] = bearer
        keys[key.key_id] = {"sha256": key.digest, "customer_id": key.customer_id}
    port = free_port()
    service = ServiceProcess(
        "On-demand service",
        ["ondemand", "--port", str(port), "--prefix", prefix, "--no-apply-topology"],
        workdir,
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXSTREAM_URL": exstream_url,
            "EXSTREAM_CLIENT_SECRET": client_secret,
            "ONDEMAND_URL_SECRET": secrets.token_urlsafe(24),
            "ONDEMAND_API_KEYS": orjson.dumps(keys).decode(),
        },
    )
    services.append(service)
    service.start()
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", service, timeout_s=90.0)
    return service, Portal(url, bearers)


def request_documents(
    portal: Portal, service: ServiceProcess, *, attempts: int = 10
) -> dict[str, int]:
    """One invoice per customer, as the portal asks for it; an answer the portal may retry
    (429, 503, 504) is asked again a few times. Returns requests, documents served (PDFs)."""
    served = 0
    for customer, bearer in portal.bearers.items():
        path = f"/v1/customers/{urllib.parse.quote(customer)}/documents/invoice"
        url = f"{portal.url}{path}?{urllib.parse.urlencode(INVOICE)}"
        for _ in range(attempts):
            if not service.alive():
                raise ProcessFailed(f"{service.name} exited:\n{service.tail()}")
            status, body = _get(url, bearer)
            if status == 200 and body.startswith(b"%PDF"):
                served += 1
                break
            if status not in RETRY_STATUSES:
                raise ProcessFailed(f"{service.name} answered {status} for an invoice")
            time.sleep(0.5)
    return {"ondemand_requests": len(portal.bearers), "ondemand_documents_served": served}


def _get(url: str, bearer: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def summarise_ondemand(bootstrap: str, topology: Any) -> dict[str, int]:
    """The metadata records the on-demand service wrote (its communication ids derive from the
    document id; the worker's records of portal requests on the asynchronous path carry origin
    ``ON_DEMAND`` too)."""
    topic = topology.name(names.DOCUMENT_METADATA)
    codec = Codecs.from_environment(topology).for_topic(topic, DocumentMetadata)
    records = (codec.decode(r.value) for r in read_topic(bootstrap, topic))
    served = sum(
        1 for m in records if m.communication_id == ondemand_communication_id(m.document_id)
    )
    return {"ondemand_metadata_records": served}
