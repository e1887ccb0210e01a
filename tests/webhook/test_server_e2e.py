"""The webhook receiver over loopback HTTP, writing to the real local broker."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from streams.codec import codec_for
from streams.deadletter.letters import H_ERROR_TYPE, H_REASON
from streams.domain.records import DeadLetter, DeliveryEvent
from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.server import Emulator, EmulatorConfig
from streams.emulator.state import World
from streams.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from streams.simulator.generator import template_catalogue
from streams.topic_reader import RawRecord, read_topic
from streams.webhook.server import HOOK_PATH, PROBLEM, WebhookReceiver, build_receiver
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e

SECRET = b"current-webhook-secret"
PREVIOUS = b"previous-webhook-secret"


def payload(event_id: str = "dev-1", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": event_id,
        "communicationId": "com-1",
        "customerId": "cust-000042",
        "jobId": "job-7",
        "documentId": "doc-9",
        "channel": "EMAIL",
        "status": "EMAIL_DELIVERED",
        "occurredAt": 1_800_000_000_123,
        "bounceType": None,
        "exceptionCode": None,
        "exceptionText": None,
    }
    return base | overrides


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Hook:
    kafka: KafkaCluster
    receiver: WebhookReceiver
    session: aiohttp.ClientSession
    url: str
    topic: str
    dlq: str

    async def post(
        self,
        raw: bytes,
        *,
        secret: bytes = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
        event_id: str | None = None,
        signed_body: bytes | None = None,
        sign_it: bool = True,
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if sign_it:
            headers[SIGNATURE_HEADER] = signature or sign(
                secret, raw if signed_body is None else signed_body, timestamp or int(time.time())
            )
        if event_id is not None:
            headers[EVENT_ID_HEADER] = event_id
        async with self.session.post(f"{self.url}{HOOK_PATH}", data=raw, headers=headers) as r:
            content = await r.read()
            ctype = r.headers.get("Content-Type", "")
            body: Any = orjson.loads(content) if "json" in ctype else content
            return Reply(r.status, body, dict(r.headers))

    async def get(self, path: str) -> Reply:
        async with self.session.get(f"{self.url}{path}") as r:
            return Reply(r.status, await r.text(), dict(r.headers))

    async def records(self, topic: str) -> list[RawRecord]:
        def read() -> list[RawRecord]:
            return list(
                read_topic(
                    self.kafka.bootstrap_servers, topic, client_config=self.kafka.client_config()
                )
            )

        return await asyncio.to_thread(read)


@pytest.fixture
async def hook(kafka: KafkaCluster, topic_factory: Callable[..., str]) -> AsyncIterator[Hook]:
    topic = topic_factory("webhook-delivery-events", partitions=3)
    dlq = topic_factory("webhook-delivery-events-dlq")
    receiver = build_receiver(
        secrets=[SECRET, PREVIOUS],
        client_config=kafka.client_config(),
        topic=topic,
        dlq_topic=dlq,
        kafka_timeout_s=15.0,
    )
    server = TestServer(receiver.app(), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Hook(kafka, receiver, session, str(server.make_url("")), topic, dlq)
    finally:
        await session.close()
        await server.close()  # runs the app's cleanup: the producer is flushed and closed


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"air_exstream_webhook_{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not in /metrics")


async def test_a_signed_callback_is_written_as_a_delivery_event(hook: Hook) -> None:
    raw = orjson.dumps(payload())
    reply = await hook.post(raw, event_id="dev-1")
    assert reply.status == 204, reply.body

    records = await hook.records(hook.topic)
    assert len(records) == 1
    record = records[0]
    assert record.key == b"cust-000042"
    assert ("x-exstream-event-id", b"dev-1") in record.headers
    assert codec_for(DeliveryEvent).decode(record.value) == DeliveryEvent(
        event_id="dev-1",
        communication_id="com-1",
        customer_id="cust-000042",
        job_id="job-7",
        document_id="doc-9",
        channel="EMAIL",
        status="EMAIL_DELIVERED",
        occurred_at=1_800_000_000_123,
    )
    assert await hook.records(hook.dlq) == []


async def test_a_callback_signed_with_the_previous_secret_is_accepted(hook: Hook) -> None:
    reply = await hook.post(orjson.dumps(payload("dev-rotated")), secret=PREVIOUS)
    assert reply.status == 204, reply.body
    assert len(await hook.records(hook.topic)) == 1


async def test_unauthenticated_callbacks_get_401_and_nothing_is_written(hook: Hook) -> None:
    raw = orjson.dumps(payload("dev-bad"))
    now = int(time.time())
    cases = {
        "signature_mismatch": await hook.post(raw, secret=b"forged-secret"),
        "signature_stale": await hook.post(raw, timestamp=now - 301),
        "signature_missing": await hook.post(raw, sign_it=False),
        "signature_malformed": await hook.post(raw, signature="v1=deadbeef"),
    }
    # the body altered after signing: the signature no longer matches
    altered = await hook.post(
        orjson.dumps(payload("dev-bad", status="FAILED")), signed_body=raw, event_id="dev-bad"
    )
    for reason, reply in [*cases.items(), ("signature_mismatch", altered)]:
        assert reply.status == 401, reason
        assert reply.headers["Content-Type"].startswith(PROBLEM)
        assert reply.body["status"] == 401
        assert reply.body["title"] == "Unauthorized"
        assert reply.body["type"]
        assert reply.body["detail"]
        assert reply.body["code"] == reason.removeprefix("signature_").upper()

    # a later valid callback is the only record on either topic
    assert (await hook.post(orjson.dumps(payload("dev-good")))).status == 204
    records = await hook.records(hook.topic)
    assert [codec_for(DeliveryEvent).decode(r.value).event_id for r in records] == ["dev-good"]
    assert await hook.records(hook.dlq) == []

    metrics = (await hook.get("/metrics")).body
    assert metric(metrics, "received_total") == 6
    assert metric(metrics, "accepted_total") == 1
    assert 'rejected_total{reason="signature_mismatch"} 2' in metrics
    assert 'rejected_total{reason="signature_stale"} 1' in metrics
    assert 'rejected_total{reason="signature_missing"} 1' in metrics
    assert 'rejected_total{reason="signature_malformed"} 1' in metrics


async def test_an_identical_duplicate_is_acknowledged_and_written_once(hook: Hook) -> None:
    raw = orjson.dumps(payload("dev-dup"))
    first = await hook.post(raw, event_id="dev-dup")
    # Exstream's retry: same bytes, new signature (a later timestamp)
    second = await hook.post(raw, event_id="dev-dup", timestamp=int(time.time()) + 2)
    assert first.status == 204
    assert second.status == 200
    assert second.body == {"eventId": "dev-dup", "status": "duplicate"}
    assert len(await hook.records(hook.topic)) == 1
    assert metric((await hook.get("/metrics")).body, "duplicates_total") == 1


async def test_concurrent_identical_copies_are_written_once(hook: Hook) -> None:
    raw = orjson.dumps(payload("dev-burst"))
    replies = await asyncio.gather(*(hook.post(raw) for _ in range(6)))
    assert sorted(r.status for r in replies) == [200] * 5 + [204]
    assert len(await hook.records(hook.topic)) == 1


async def test_the_same_event_id_with_another_body_is_refused_409(hook: Hook) -> None:
    assert (await hook.post(orjson.dumps(payload("dev-x")))).status == 204
    reply = await hook.post(orjson.dumps(payload("dev-x", status="EMAIL_OPENED")))
    assert reply.status == 409
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert reply.body["eventId"] == "dev-x"
    records = await hook.records(hook.topic)
    assert [codec_for(DeliveryEvent).decode(r.value).status for r in records] == ["EMAIL_DELIVERED"]
    assert 'rejected_total{reason="conflict"} 1' in (await hook.get("/metrics")).body


async def test_an_invalid_body_gets_400_and_a_dead_letter(hook: Hook) -> None:
    raw = orjson.dumps(payload("dev-invalid", status="TELEPORTED"))
    reply = await hook.post(raw, event_id="dev-invalid")
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert reply.body["code"] == "UNKNOWN_STATUS"
    assert "status" in reply.body["detail"]
    # Exstream retries until a 2xx: the retry is refused again but not dead-lettered twice
    assert (await hook.post(raw, event_id="dev-invalid")).status == 400

    assert await hook.records(hook.topic) == []
    letters = await hook.records(hook.dlq)
    assert len(letters) == 1
    record = letters[0]
    assert record.key == b"cust-000042"
    assert dict(record.headers)[H_ERROR_TYPE] == b"UNKNOWN_STATUS"
    assert b"status" in dict(record.headers)[H_REASON]
    letter = codec_for(DeadLetter).decode(record.value)
    assert letter.original_value == raw  # byte for byte: nothing is lost
    assert letter.source_topic == hook.topic
    assert letter.error_type == "UNKNOWN_STATUS"
    assert "status" in letter.reason
    assert letter.original_headers["x-exstream-event-id"] == "dev-invalid"

    metrics = (await hook.get("/metrics")).body
    assert 'rejected_total{reason="invalid_payload"} 2' in metrics
    assert metric(metrics, "dead_letters_total") == 1
    assert metric(metrics, "accepted_total") == 0


async def test_garbage_with_a_valid_signature_is_dead_lettered_without_a_key(hook: Hook) -> None:
    raw = b"\x00\x01 not json at all"
    reply = await hook.post(raw)
    assert reply.status == 400
    assert reply.body["code"] == "NOT_JSON"
    letters = await hook.records(hook.dlq)
    assert len(letters) == 1
    assert letters[0].key is None
    assert codec_for(DeadLetter).decode(letters[0].value).original_value == raw


async def test_a_body_over_64_kib_gets_413_and_nothing_is_written(hook: Hook) -> None:
    raw = orjson.dumps(payload("dev-big", exceptionText="x" * (64 * 1024)))
    reply = await hook.post(raw)
    assert reply.status == 413
    assert reply.headers["Content-Type"].startswith(PROBLEM)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked transfer
        for i in range(0, len(raw), 8192):
            yield raw[i : i + 8192]

    headers = {SIGNATURE_HEADER: sign(SECRET, raw, int(time.time()))}
    async with hook.session.post(f"{hook.url}{HOOK_PATH}", data=chunks(), headers=headers) as r:
        assert r.status == 413
    assert await hook.records(hook.topic) == []
    assert await hook.records(hook.dlq) == []
    assert 'rejected_total{reason="too_large"} 2' in (await hook.get("/metrics")).body


async def test_health_and_metrics(hook: Hook) -> None:
    health = await hook.get("/healthz")
    assert health.status == 200
    assert orjson.loads(health.body) == {"status": "ok"}
    assert (await hook.post(orjson.dumps(payload("dev-m")))).status == 204
    metrics = await hook.get("/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE air_exstream_webhook_received_total counter" in metrics.body
    assert metric(metrics.body, "received_total") == 1
    assert metric(metrics.body, "accepted_total") == 1
    assert metric(metrics.body, "kafka_errors_total") == 0
    assert metric(metrics.body, "request_duration_seconds_count") == 1


# --------------------------------------------------------------------------- with the emulator


async def test_the_emulators_callbacks_land_on_the_topic_once_each(hook: Hook) -> None:
    """The Exstream emulator (every callback sent twice, some bounces and failures) posting to
    the receiver: each delivery event is on the topic exactly once, decodable."""
    template = next(
        t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en"
    )
    data = {f: f"value-{i}" for i, f in enumerate(template.required_fields)}
    config = EmulatorConfig(
        client_id="air",
        client_secret="emulator-client-secret",
        webhook_url=f"{hook.url}{HOOK_PATH}",
        webhook_secret=SECRET,
        stage_delay_s=0.0,
        faults=FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0, duplicate_callback_rate=1.0),
    )
    world = World.with_templates(
        template_catalogue(),
        outcomes=Outcomes(bounce_rate=0.3, failure_rate=0.2, open_rate=0.5),
        rng=random.Random(7),
    )
    emulator = Emulator(config, world, seed=7)
    server = TestServer(emulator.app(), host="127.0.0.1")
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        async with hook.session.post(
            f"{base}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "air",
                "client_secret": "emulator-client-secret",
            },
        ) as r:
            token = (await r.json())["access_token"]
        channels = ["PRINT", "EMAIL", "WEB", "SMS", "PUSH"]
        job = {
            "correlationId": "webhook-e2e",
            "communications": [
                {
                    "communicationId": f"com-{i}",
                    "customerId": f"cust-{i % 4}",
                    "templateId": template.template_id,
                    "templateVersion": template.version,
                    "language": template.language,
                    "channel": channels[i % len(channels)],
                    "data": data,
                }
                for i in range(10)
            ],
        }
        auth = {"Authorization": f"Bearer {token}"}
        async with hook.session.post(f"{base}/v1/jobs", json=job, headers=auth) as r:
            assert r.status == 202, await r.text()
            job_id = (await r.json())["jobId"]
        deadline = time.monotonic() + 20
        while True:  # every item's callbacks are queued once the job has finished
            async with hook.session.get(f"{base}/v1/jobs/{job_id}", headers=auth) as r:
                if (await r.json())["status"] in ("completed", "failed"):
                    break
            assert time.monotonic() < deadline, "the emulator's job did not finish"
            await asyncio.sleep(0.05)
        await asyncio.wait_for(emulator.drain_callbacks(), 30)
        sent = emulator.stats["callbacks_enqueued"]
        assert emulator.stats["callbacks_abandoned"] == 0
    finally:
        await server.close()

    records = await hook.records(hook.topic)
    codec = codec_for(DeliveryEvent)
    events = [codec.decode(r.value) for r in records]
    assert len(events) == sent
    assert len({e.event_id for e in events}) == sent
    assert {e.communication_id for e in events} == {f"com-{i}" for i in range(10)}
    for record, event in zip(records, events, strict=True):
        assert record.key == event.customer_id.encode()
    assert await hook.records(hook.dlq) == []
    metrics = (await hook.get("/metrics")).body
    assert metric(metrics, "accepted_total") == sent
    assert metric(metrics, "duplicates_total") == sent
