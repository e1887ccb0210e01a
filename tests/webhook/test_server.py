"""The receiver in process, without a broker: Kafka unreachable -> 503, routing, config."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from streams.signing import SIGNATURE_HEADER, sign
from streams.webhook.server import HOOK_PATH, PROBLEM, WebhookConfig, build_receiver

pytestmark = pytest.mark.component

SECRET = b"component-secret"
BODY = orjson.dumps(
    {
        "eventId": "dev-1",
        "communicationId": "com-1",
        "customerId": "cust-1",
        "channel": "SMS",
        "status": "SMS_DELIVERED",
        "occurredAt": 1,
    }
)


def dead_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
async def unreachable() -> AsyncIterator[str]:
    """Base URL of a receiver whose Kafka cluster cannot be reached (a real producer)."""
    receiver = build_receiver(
        secrets=[SECRET],
        client_config={"bootstrap.servers": f"127.0.0.1:{dead_port()}", "log_level": "0"},
        topic="delivery",
        dlq_topic="delivery.dlq",
        kafka_timeout_s=1.0,
        retry_after_s=7,
    )
    server = TestServer(receiver.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> aiohttp.ClientResponse:
    headers = {SIGNATURE_HEADER: sign(SECRET, body, int(time.time()))}
    async with session.post(f"{url}{HOOK_PATH}", data=body, headers=headers) as r:
        await r.read()
        return r


async def test_unconfirmed_writes_get_503_with_retry_after(unreachable: str) -> None:
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        first = await post(session, unreachable, BODY)
        assert first.status == 503
        assert first.headers["Retry-After"] == "7"
        assert first.headers["Content-Type"].startswith(PROBLEM)
        assert time.monotonic() - started < 5
        # the failed write was forgotten: the retry is tried again, not taken for a duplicate
        assert (await post(session, unreachable, BODY)).status == 503
        # an invalid body cannot be dead-lettered either: 503 too, so Exstream retries
        assert (await post(session, unreachable, b"not json")).status == 503
        async with session.get(f"{unreachable}/metrics") as r:
            text = await r.text()
        assert "air_exstream_webhook_kafka_errors_total 3" in text
        assert "air_exstream_webhook_accepted_total 0" in text
        assert "air_exstream_webhook_duplicates_total 0" in text


async def test_unknown_routes_and_methods_are_problems(unreachable: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{unreachable}{HOOK_PATH}") as r:
            assert r.status == 405
            assert r.headers["Content-Type"].startswith(PROBLEM)
            assert (await r.json(content_type=None))["status"] == 405
        async with session.get(f"{unreachable}/nope") as r:
            assert r.status == 404
            assert r.headers["Content-Type"].startswith(PROBLEM)


@pytest.mark.parametrize("secrets", [(), (b"",)])
def test_a_secret_is_required(secrets: tuple[bytes, ...]) -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookConfig(secrets=secrets, topic="t", dlq_topic="t.dlq")


class _RegistryDown:
    """A schema registry client whose registry refuses every connection."""

    def register_schema(self, subject: str, schema: object) -> int:
        raise ConnectionRefusedError()

    def get_schema(self, schema_id: int) -> object:
        raise ConnectionRefusedError()


async def test_a_registry_that_does_not_answer_stops_the_receiver_at_start() -> None:
    from streams.codec import Codecs, RegistryUnavailable

    receiver = build_receiver(
        secrets=[SECRET],
        client_config={"bootstrap.servers": f"127.0.0.1:{dead_port()}", "log_level": "0"},
        topic="delivery",
        dlq_topic="delivery.dlq",
        codecs=Codecs(registry=_RegistryDown()),
    )
    server = TestServer(receiver.app(), host="127.0.0.1")
    try:
        with pytest.raises(RegistryUnavailable, match="delivery-value"):
            await server.start_server()
    finally:
        await server.close()
