"""One on-demand document end to end: emulator in-process, templates read from
``exstream.templates.v1`` (as the template sync publishes them), records on the real broker."""

from __future__ import annotations

import asyncio
import random
import uuid

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from streams.codec import codec_for
from streams.config import KafkaSettings
from streams.domain.records import AuditRecord, DocumentMetadata
from streams.emulator.design import seed
from streams.emulator.faults import FaultConfig
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
from streams.exstream.settings import ExstreamSettings
from streams.ondemand.auth import KeyStore, new_key
from streams.ondemand.kafka import KafkaWriter
from streams.ondemand.server import OnDemandConfig, OnDemandService
from streams.simulator.generator import template_catalogue
from streams.templatesync.view import templates_view
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

CUSTOMER = "cust-000042"


async def test_document_writes_metadata_and_audit_records(kafka: KafkaCluster) -> None:
    topology = load_topology("local", prefix=f"od{uuid.uuid4().hex[:8]}.")
    apply_topology(kafka.client_config(), topology)
    metadata_topic = topology.name(names.DOCUMENT_METADATA)
    audit_topic = topology.name(names.AUDIT_INTAKE)
    emulator = Emulator(
        EmulatorConfig(
            client_id="air",
            client_secret="emulator-secret",
            faults=FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0),
        ),
        Runtime(design=seed(template_catalogue()), rng=random.Random(1)),
    )
    exstream = TestServer(emulator.app(), host="127.0.0.1")
    await exstream.start_server()
    publish_synced_templates(template_catalogue(), topology, kafka.client_config())
    view = templates_view(
        KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
        topology.name(names.TEMPLATES),
        partitions=topology.topic(names.TEMPLATES).partitions,
    )
    reader = asyncio.ensure_future(view.run())
    await view.wait_ready(30.0)
    bearer, key = new_key("portal-e2e", CUSTOMER)
    service = OnDemandService(
        OnDemandConfig(
            exstream=ExstreamSettings(
                url=str(exstream.make_url("")).rstrip("/"),
                client_id="air",
                client_secret="emulator-secret",
            ),
            link_secrets=(b"link-secret",),
            metadata_topic=metadata_topic,
            audit_topic=audit_topic,
        ),
        KeyStore([key]),
        KafkaWriter(kafka.client_config(), timeout_s=10.0),
        view,
    )
    server = TestServer(service.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                server.make_url(f"/v1/customers/{CUSTOMER}/documents/invoice"),
                params={
                    "amount_due": "12.50",
                    "due_date": "2026-02-01",
                    "statement_period": "2026-01",
                    "currency": "EUR",
                    "language": "es",
                },
                headers={"Authorization": f"Bearer {bearer}"},
            ) as reply,
        ):
            assert reply.status == 200, await reply.text()
            assert (await reply.read()).startswith(b"%PDF")
            document_id = reply.headers["X-Document-Id"]
    finally:
        await server.close()
        await exstream.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)

    metadata_records = list(read_topic(kafka.bootstrap_servers, metadata_topic))
    audit_records = list(read_topic(kafka.bootstrap_servers, audit_topic))
    assert len(metadata_records) == 1
    assert len(audit_records) == 1
    assert metadata_records[0].key == audit_records[0].key == CUSTOMER.encode()
    metadata = codec_for(DocumentMetadata).decode(metadata_records[0].value)
    audit = codec_for(AuditRecord).decode(audit_records[0].value)
    assert metadata.document_id == document_id
    assert metadata.origin == "ON_DEMAND"
    assert metadata.customer_id == CUSTOMER
    assert metadata.template_id == "tpl-billing-statement"
    assert metadata.template_version == 2
    assert metadata.language == "es"
    assert metadata.communication_type == "INVOICE"
    assert audit.kind == "DOCUMENT_PRODUCED"
    assert audit.customer_id == CUSTOMER
    assert audit.communication_id == metadata.communication_id
    assert audit.details["document_id"] == document_id
    assert audit.seq == 0
    assert audit.hash == ""
