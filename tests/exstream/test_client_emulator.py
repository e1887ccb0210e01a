"""The Exstream client against the emulator over loopback HTTP: the client <-> emulator tier."""

from __future__ import annotations

import io
import zipfile

import orjson
import pytest

from streams.domain.records import CompositionCommand, Recipient
from streams.emulator.design import DRIVER_DATA_SOURCE, communication_id
from streams.exstream.driver import batch_file, customer_record, ondemand_record
from streams.exstream.errors import (
    ExstreamAuthError,
    ExstreamNotFound,
    ExstreamRejected,
    ExstreamThrottled,
)
from streams.simulator.generator import template_catalogue
from tests.exstream.emulated import Emulated, emulated

pytestmark = pytest.mark.component

TEMPLATE = next(t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en")
DESIGN_ID = communication_id(TEMPLATE.template_id, TEMPLATE.language)
DATA = {f: f"value-{i}" for i, f in enumerate(TEMPLATE.required_fields)}


def command(
    n: int, channel: str = "PRINT", data: dict[str, str] | None = None
) -> CompositionCommand:
    return CompositionCommand(
        communication_id=f"com-{n:04d}",
        source_event_id=f"evt-{n}",
        source_topic="air.account-events.v1",
        event_type="BILLING_CYCLE_CLOSED",
        rule_id="rule-1",
        rule_version=1,
        customer_id=f"cust-{n:06d}",
        communication_type=TEMPLATE.communication_type,
        template_id=TEMPLATE.template_id,
        template_version=TEMPLATE.version,
        language="en",
        channel=channel,
        recipient=Recipient(email="someone@example.com"),
        data=DATA if data is None else data,
        created_at=1,
    )


async def test_token_self_hosted_and_cloud_paths(exstream: Emulated) -> None:
    for style in ("self-hosted", "cloud"):
        async with exstream.client(otds_style=style) as client:
            assert client.tokens.url.endswith(
                ("/otdsws" if style == "self-hosted" else "") + "/otdstenant/air/oauth2/token"
            )
            assert await client.tokens.token()
            assert client.tokens.refreshes == 1


async def test_wrong_secret_is_an_auth_error_not_retriable(exstream: Emulated) -> None:
    async with exstream.client(client_secret="wrong") as client:
        with pytest.raises(ExstreamAuthError) as info:
            await client.design.communications()
    assert not info.value.retriable


async def test_a_revoked_token_is_refreshed_once(exstream: Emulated) -> None:
    async with exstream.client() as client:
        await client.design.communications()
        exstream.emulator.tokens.clear()  # every token revoked
        assert await client.design.communications()
        assert client.tokens.refreshes == 2


async def test_token_refreshed_before_it_expires() -> None:
    async for world in emulated(token_ttl_s=2.0):
        async with world.client(token_margin_s=60.0) as client:
            first = await client.tokens.token()
            # lifetime 2 s, margin capped at half of it: valid for about 1 s
            assert await client.tokens.token() == first
            import asyncio

            await asyncio.sleep(1.1)
            assert await client.tokens.token() != first


async def test_ondemand_pdf_and_json_outputs(exstream: Emulated) -> None:
    record = ondemand_record(
        request_id="req-1",
        customer_id="cust-000001",
        template_id=TEMPLATE.template_id,
        version=TEMPLATE.version,
        language="en",
        channel="WEB",
        data=DATA,
    )
    async with exstream.client() as client:
        pdf = await client.orchestration.generate_pdf(
            communication_id=DESIGN_ID, driver_data_source=DRIVER_DATA_SOURCE, driver_data=record
        )
        assert pdf.startswith(b"%PDF-")
        outputs = await client.orchestration.generate_outputs(
            communication_id=DESIGN_ID, driver_data_source=DRIVER_DATA_SOURCE, driver_data=record
        )
    assert len(outputs) == 1
    assert outputs[0].mime_type == "application/pdf"
    assert outputs[0].content.startswith(b"%PDF-")
    assert outputs[0].file_name


async def test_ondemand_errors_are_typed(exstream: Emulated) -> None:
    async with exstream.client() as client:
        with pytest.raises(ExstreamRejected) as missing:
            await client.orchestration.generate_pdf(
                communication_id=DESIGN_ID,
                driver_data_source=DRIVER_DATA_SOURCE,
                driver_data=orjson.dumps({"data": {}}),
            )
        with pytest.raises(ExstreamNotFound):
            await client.orchestration.generate_pdf(
                communication_id="00000000-0000-0000-0000-000000000000",
                driver_data_source=DRIVER_DATA_SOURCE,
                driver_data=orjson.dumps({"data": DATA}),
            )
    assert missing.value.status == 400
    assert "required fields missing" in missing.value.detail  # the orchestration envelope
    assert not missing.value.retriable


async def test_batch_job_lookup_outputs_and_artifacts(exstream: Emulated) -> None:
    records = [customer_record(command(n), exstream_communication_id=DESIGN_ID) for n in range(3)]
    async with exstream.client() as client:
        job_id = await client.orchestration.submit_batch(batch_file(records), external_id="b-1")
        found = await client.orchestration.jobs_by_external_id("b-1")
        assert [j.id for j in found] == [job_id]
        assert await client.orchestration.jobs_by_external_id("b-2") == []
        await exstream.emulator.events.drain()
        import asyncio

        for _ in range(100):
            job = await client.orchestration.job(job_id)
            if job.finished:
                break
            await asyncio.sleep(0.01)
        assert job.status == "complete"
        assert job.external_id == "b-1"
        steps = await client.orchestration.output_steps(job_id)
        assert len(steps) == 1
        outputs = await client.orchestration.delivery_outputs(steps[0]["id"])
        assert [c["status"] for c in outputs["customers"]] == ["composed"] * 3
        archive = await client.orchestration.customer_artifacts(steps[0]["id"], "com-0001")
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            (name,) = z.namelist()
            assert z.read(name).startswith(b"%PDF-")
        await client.orchestration.delete(job_id)
        with pytest.raises(ExstreamNotFound):
            await client.orchestration.job(job_id)
    assert exstream.runtime.ledger.summary()["documents"] == 3


async def test_the_emulator_composes_a_resubmission_again(exstream: Emulated) -> None:
    """Exstream does not refuse a second submission: not refusing is what the ledger shows."""
    records = [customer_record(command(1), exstream_communication_id=DESIGN_ID)]
    async with exstream.client() as client:
        for _ in range(2):
            await client.orchestration.submit_batch(batch_file(records), external_id="same")
        assert len(await client.orchestration.jobs_by_external_id("same")) == 2
    await exstream.emulator.events.drain()
    assert exstream.runtime.ledger.twice() == ["com-0001"]


async def test_a_malformed_driver_file_is_rejected(exstream: Emulated) -> None:
    async with exstream.client() as client:
        with pytest.raises(ExstreamRejected) as info:
            await client.orchestration.submit_batch(b'{"customers": [{}]}', external_id="x")
    assert info.value.status == 400
    assert "communicationId" in info.value.detail


async def test_stop_cancels_a_waiting_job(exstream: Emulated) -> None:
    exstream.emulator.config.stage_delay_s = 1.0
    async with exstream.client() as client:
        job_id = await client.orchestration.submit_batch(
            batch_file([customer_record(command(1), exstream_communication_id=DESIGN_ID)]),
            external_id="stop-me",
        )
        await client.orchestration.stop(job_id)
        assert (await client.orchestration.job(job_id)).status == "canceled"
    assert exstream.runtime.ledger.summary()["documents"] == 0


async def test_throttling_is_typed_with_retry_after() -> None:
    from streams.emulator.faults import FaultConfig

    faults = FaultConfig(
        latency_median_ms=0, latency_p99_ms=0, rate_limit_per_s=0.5, rate_limit_burst=1
    )
    async for world in emulated(faults=faults):
        async with world.client() as client:
            await client.orchestration.jobs_by_external_id("a")
            with pytest.raises(ExstreamThrottled) as info:
                await client.orchestration.jobs_by_external_id("a")
    assert info.value.retriable
    assert info.value.pushback
    assert info.value.retry_after_s is not None
    assert info.value.retry_after_s >= 1


async def test_design_lists_every_version_with_its_state(exstream: Emulated) -> None:
    async with exstream.client() as client:
        versions = await client.design.communications(page_size=7)
        states = {(v.name, v.version): v.state for v in versions}
        assert states[(f"{TEMPLATE.template_id} (en)", 2)] == "APPROVED"
        assert states[(f"{TEMPLATE.template_id} (en)", 3)] == "DRAFT"
        set_id = await client.design.communication_set(DESIGN_ID, 2)
        assert set_id is not None
        manifest = await client.design.manifest(set_id)
        assert manifest.driver_data_sources == [DRIVER_DATA_SOURCE]
        content = await client.design.content(DESIGN_ID, 2)
    assert content["templateId"] == TEMPLATE.template_id
    assert content["requiredFields"] == TEMPLATE.required_fields
    assert len(versions) == len(template_catalogue())
