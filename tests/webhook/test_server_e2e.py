"""The event receiver over loopback HTTP, writing to the real local broker."""

from __future__ import annotations

import asyncio
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
from streams.signing import SIGNATURE_HEADER, sign
from streams.topic_reader import RawRecord, read_topic
from streams.webhook.server import HOOK_PATH, PROBLEM, WebhookReceiver, build_receiver
from tests.conftest import KafkaCluster
from tests.webhook.ei import batch, ei_event

pytestmark = pytest.mark.e2e

SECRET = b"current-webhook-secret"
PREVIOUS = b"previous-webhook-secret"


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
        signed_body: bytes | None = None,
        sign_it: bool = True,
        bearer: str | None = None,
    ) -> Reply:
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        elif sign_it:
            headers[SIGNATURE_HEADER] = signature or sign(
                secret, raw if signed_body is None else signed_body, timestamp or int(time.time())
            )
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


async def _hook(
    kafka: KafkaCluster, topic_factory: Callable[..., str], **options: Any
) -> AsyncIterator[Hook]:
    topic = topic_factory("webhook-delivery-events", partitions=3)
    dlq = topic_factory("webhook-delivery-events-dlq")
    receiver = build_receiver(
        secrets=[SECRET, PREVIOUS],
        client_config=kafka.client_config(),
        topic=topic,
        dlq_topic=dlq,
        kafka_timeout_s=15.0,
        **options,
    )
    server = TestServer(receiver.app(), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Hook(kafka, receiver, session, str(server.make_url("")), topic, dlq)
    finally:
        await session.close()
        await server.close()  # runs the app's cleanup: the producer is flushed and closed


@pytest.fixture
async def hook(kafka: KafkaCluster, topic_factory: Callable[..., str]) -> AsyncIterator[Hook]:
    async for h in _hook(kafka, topic_factory, max_body_bytes=64 * 1024):
        yield h


@pytest.fixture
async def bearer_hook(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> AsyncIterator[Hook]:
    async for h in _hook(kafka, topic_factory, auth="bearer"):
        yield h


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(f"air_exstream_webhook_{name} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not in /metrics")


def ids(records: list[RawRecord]) -> list[str]:
    return [codec_for(DeliveryEvent).decode(r.value).event_id for r in records]


async def test_a_signed_batch_is_written_as_delivery_events(hook: Hook) -> None:
    raw = batch(
        ei_event("ev-1"),
        ei_event("ev-2", "Exstream-Generated", customer_id="cust-000043", channel="PRINT"),
    )
    reply = await hook.post(raw)
    assert reply.status == 200, reply.body
    assert reply.body == {"accepted": 2, "duplicates": 0}

    records = sorted(await hook.records(hook.topic), key=lambda r: r.key)
    assert [r.key for r in records] == [b"cust-000042", b"cust-000043"]
    assert ("x-exstream-event-id", b"ev-1") in records[0].headers
    first = codec_for(DeliveryEvent).decode(records[0].value)
    assert first == DeliveryEvent(
        event_id="ev-1",
        communication_id="com-1",
        customer_id="cust-000042",
        job_id="job-7",
        document_id="doc-9",
        channel="EMAIL",
        status="EMAIL_DELIVERED",
        occurred_at=first.occurred_at,
    )
    assert codec_for(DeliveryEvent).decode(records[1].value).status == "COMPOSED"
    assert await hook.records(hook.dlq) == []


async def test_a_batch_signed_with_the_previous_secret_is_accepted(hook: Hook) -> None:
    reply = await hook.post(batch(ei_event("ev-rotated")), secret=PREVIOUS)
    assert reply.status == 200, reply.body
    assert len(await hook.records(hook.topic)) == 1


async def test_unauthenticated_batches_get_401_and_nothing_is_written(hook: Hook) -> None:
    raw = batch(ei_event("ev-bad"))
    now = int(time.time())
    cases = {
        "signature_mismatch": await hook.post(raw, secret=b"forged-secret"),
        "signature_stale": await hook.post(raw, timestamp=now - 301),
        "signature_missing": await hook.post(raw, sign_it=False),
        "signature_malformed": await hook.post(raw, signature="v1=deadbeef"),
    }
    # the body altered after signing: the signature no longer matches
    altered = await hook.post(batch(ei_event("ev-bad", "Exstream-Email-NDLV")), signed_body=raw)
    for reason, reply in [*cases.items(), ("signature_mismatch", altered)]:
        assert reply.status == 401, reason
        assert reply.headers["Content-Type"].startswith(PROBLEM)
        assert reply.body["status"] == 401
        assert reply.body["title"] == "Unauthorized"
        assert reply.body["code"] == reason.removeprefix("signature_").upper()

    # a later valid batch is the only record on either topic
    assert (await hook.post(batch(ei_event("ev-good")))).status == 200
    assert ids(await hook.records(hook.topic)) == ["ev-good"]
    assert await hook.records(hook.dlq) == []

    metrics = (await hook.get("/metrics")).body
    assert metric(metrics, "received_total") == 6
    assert metric(metrics, "accepted_total") == 1
    assert 'rejected_total{reason="signature_mismatch"} 2' in metrics
    assert 'rejected_total{reason="signature_stale"} 1' in metrics


async def test_bearer_authentication_is_a_configurable_choice(bearer_hook: Hook) -> None:
    hook = bearer_hook
    raw = batch(ei_event("ev-b"))
    assert (await hook.post(raw, bearer="forged")).status == 401
    assert (await hook.post(raw)).status == 401  # an HMAC signature is not a bearer secret
    assert (await hook.post(raw, bearer=PREVIOUS.decode())).status == 200
    assert (await hook.post(raw, bearer=SECRET.decode())).body == {"accepted": 0, "duplicates": 1}
    assert ids(await hook.records(hook.topic)) == ["ev-b"]


async def test_a_resent_batch_is_acknowledged_and_written_once(hook: Hook) -> None:
    raw = batch(ei_event("ev-d1"), ei_event("ev-d2", "Exstream-Email-OPEN"))
    first = await hook.post(raw)
    # Exstream's retry: same events, new signature (a later timestamp), one more event
    second = await hook.post(
        batch(ei_event("ev-d1"), ei_event("ev-d3", "Exstream-Email-Submit")),
        timestamp=int(time.time()) + 2,
    )
    assert first.body == {"accepted": 2, "duplicates": 0}
    assert second.body == {"accepted": 1, "duplicates": 1}
    assert sorted(ids(await hook.records(hook.topic))) == ["ev-d1", "ev-d2", "ev-d3"]
    assert metric((await hook.get("/metrics")).body, "duplicates_total") == 1


async def test_concurrent_identical_batches_are_written_once(hook: Hook) -> None:
    raw = batch(ei_event("ev-burst"), ei_event("ev-burst"))  # a copy inside the batch too
    replies = await asyncio.gather(*(hook.post(raw) for _ in range(6)))
    assert all(r.status == 200 for r in replies)
    assert sum(r.body["accepted"] for r in replies) == 1
    assert ids(await hook.records(hook.topic)) == ["ev-burst"]


async def test_an_event_id_reused_with_other_content_refuses_the_batch_409(hook: Hook) -> None:
    assert (await hook.post(batch(ei_event("ev-x")))).status == 200
    reply = await hook.post(batch(ei_event("ev-new"), ei_event("ev-x", "Exstream-Email-OPEN")))
    assert reply.status == 409
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert reply.body["eventId"] == "ev-x"
    assert ids(await hook.records(hook.topic)) == ["ev-x"]  # nothing of the refused batch
    assert 'rejected_total{reason="conflict"} 1' in (await hook.get("/metrics")).body


async def test_an_invalid_batch_gets_400_one_dead_letter_and_nothing_written(hook: Hook) -> None:
    raw = batch(ei_event("ev-ok"), ei_event("ev-invalid", "Exstream-Teleported"))
    reply = await hook.post(raw)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert reply.body["code"] == "UNKNOWN_STATUS"
    assert reply.body["detail"].startswith("event 1:")
    # Exstream re-sends until a 2xx: refused again but not dead-lettered twice
    assert (await hook.post(raw)).status == 400

    assert await hook.records(hook.topic) == []
    letters = await hook.records(hook.dlq)
    assert len(letters) == 1
    record = letters[0]
    assert record.key == b"cust-000042"
    assert dict(record.headers)[H_ERROR_TYPE] == b"UNKNOWN_STATUS"
    assert b"schemaType" in dict(record.headers)[H_REASON]
    letter = codec_for(DeadLetter).decode(record.value)
    assert letter.original_value == raw  # byte for byte: nothing is lost
    assert letter.source_topic == hook.topic
    assert letter.error_type == "UNKNOWN_STATUS"

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


async def test_a_body_over_the_limit_gets_413_and_nothing_is_written(hook: Hook) -> None:
    raw = batch(*(ei_event(f"ev-{i}", padding="x" * 1024) for i in range(80)))
    assert len(raw) > 64 * 1024
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
    assert (await hook.post(batch(ei_event("ev-m")))).status == 200
    metrics = await hook.get("/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE air_exstream_webhook_received_total counter" in metrics.body
    assert metric(metrics.body, "received_total") == 1
    assert metric(metrics.body, "accepted_total") == 1
    assert metric(metrics.body, "kafka_errors_total") == 0
    assert metric(metrics.body, "request_duration_seconds_count") == 1


# --------------------------------------------------------------------------- with the emulator


async def test_the_emulators_events_land_on_the_topic_once_each(hook: Hook) -> None:
    """The Exstream emulator (every event sent twice, some bounces and failures) posting its
    batches to the receiver: each delivery event is on the topic exactly once, decodable."""
    from streams.domain.records import CompositionCommand, Recipient
    from streams.emulator.design import communication_id
    from streams.exstream.driver import batch_file, customer_record
    from streams.simulator.generator import template_catalogue
    from tests.exstream.emulated import emulated

    template = next(
        t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en"
    )
    data = {f: f"value-{i}" for i, f in enumerate(template.required_fields)}
    channels = ["PRINT", "EMAIL", "WEB", "SMS", "PUSH"]
    commands = [
        CompositionCommand(
            communication_id=f"com-{i}",
            source_event_id=f"e-{i}",
            source_topic="t",
            event_type="BILLING_CYCLE_CLOSED",
            rule_id="r",
            rule_version=1,
            customer_id=f"cust-{i % 4}",
            communication_type=template.communication_type,
            template_id=template.template_id,
            template_version=template.version,
            language="en",
            channel=channels[i % len(channels)],
            recipient=Recipient(email="a@example.com"),
            data=data,
            created_at=1,
        )
        for i in range(10)
    ]
    design = communication_id(template.template_id, "en")
    faults = FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0, duplicate_callback_rate=1.0)
    async for world in emulated(
        faults=faults, outcomes=Outcomes(bounce_rate=0.3, failure_rate=0.2, open_rate=0.5)
    ):
        world.emulator.events.url = f"{hook.url}{HOOK_PATH}"
        world.emulator.events.secret = SECRET
        async with world.client() as client:
            await client.orchestration.submit_batch(
                batch_file(customer_record(c, exstream_communication_id=design) for c in commands),
                external_id="webhook-e2e",
            )
        deadline = time.monotonic() + 20
        while world.emulator.stats["events_enqueued"] == 0:
            assert time.monotonic() < deadline, "the emulator's job did not run"
            await asyncio.sleep(0.05)
        await asyncio.wait_for(world.emulator.drain_events(), 30)
        sent = world.emulator.stats["events_enqueued"]
        assert world.emulator.stats["events_abandoned"] == 0

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
