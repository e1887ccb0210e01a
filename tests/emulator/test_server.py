"""The emulator over real loopback HTTP: auth, on-demand, jobs, documents, callbacks, faults."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.server import Emulator, EmulatorConfig
from streams.emulator.state import World
from streams.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from streams.simulator.generator import template_catalogue

pytestmark = pytest.mark.component

SECRET = "test-client-secret"
HOOK_SECRET = b"test-webhook-secret"
TEMPLATE = next(t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en")
DATA = {f: f"value-{i}" for i, f in enumerate(TEMPLATE.required_fields)}


@dataclass
class Receiver:
    """A subscriber webhook that verifies every signature and records the payloads."""

    events: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_first: int = 0
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.events) >= count)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(
                [HOOK_SECRET],
                request.headers.get(SIGNATURE_HEADER),
                body,
                now=int(time.time()),
            )
        except ValueError:
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        payload = orjson.loads(body)
        assert payload["eventId"] == request.headers[EVENT_ID_HEADER]
        async with self.arrived:
            self.events.append(payload)
            self.arrived.notify_all()
        return web.Response(status=204)


@dataclass
class Harness:
    base: str
    emulator: Emulator
    receiver: Receiver
    session: aiohttp.ClientSession

    async def token(self) -> str:
        async with self.session.post(
            f"{self.base}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "air",
                "client_secret": SECRET,
            },
        ) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["token_type"] == "Bearer"
            return str(body["access_token"])

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, dict[str, str]]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, f"{self.base}{path}", headers=headers, **kwargs
        ) as r:
            raw = await r.read()
            ctype = r.headers.get("Content-Type", "")
            body: Any = orjson.loads(raw) if "json" in ctype else raw
            return r.status, body, dict(r.headers)

    async def wait_job(self, token: str, job_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, job, _ = await self.call("GET", f"/v1/jobs/{job_id}", token)
            assert status == 200
            if job["status"] in ("completed", "failed"):
                return dict(job)
            await asyncio.sleep(0.02)
        raise AssertionError(f"job {job_id} did not finish")

    async def wait_callbacks(self, count: int, timeout_s: float = 10.0) -> None:
        await asyncio.wait_for(self.receiver.until(count), timeout_s)
        await asyncio.wait_for(self.emulator.drain_callbacks(), timeout_s)


Factory = Callable[..., Any]


@pytest.fixture
async def harness_factory() -> AsyncIterator[Factory]:
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def make(
        faults: FaultConfig | None = None,
        outcomes: Outcomes | None = None,
        token_ttl_s: float = 3600.0,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> Harness:
        receiver = Receiver()
        hook_app = web.Application()
        hook_app.router.add_post("/hooks/exstream", receiver.handle)
        hook = TestServer(hook_app, host="127.0.0.1")
        await hook.start_server()
        servers.append(hook)
        config = EmulatorConfig(
            client_id="air",
            client_secret=SECRET,
            webhook_url=str(hook.make_url("/hooks/exstream")),
            webhook_secret=HOOK_SECRET,
            token_ttl_s=token_ttl_s,
            stage_delay_s=0.0,
            faults=faults or FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0),
            max_body_bytes=max_body_bytes,
        )
        world = World.with_templates(
            template_catalogue(),
            outcomes=outcomes or Outcomes(bounce_rate=0.0, open_rate=0.0),
            rng=random.Random(1),
        )
        emulator = Emulator(config, world, seed=1)
        server = TestServer(emulator.app(), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Harness(str(server.make_url("")).rstrip("/"), emulator, receiver, session)

    yield make
    for s in sessions:
        await s.close()
    for srv in servers:
        await srv.close()


def item(cid: str, channel: str = "PRINT", **over: Any) -> dict[str, Any]:
    return {
        "communicationId": cid,
        "customerId": "cust-1",
        "templateId": TEMPLATE.template_id,
        "templateVersion": TEMPLATE.version,
        "language": TEMPLATE.language,
        "channel": channel,
        "data": DATA,
        **over,
    }


# --------------------------------------------------------------------------- auth


async def test_calls_without_a_valid_token_are_refused(harness_factory: Factory) -> None:
    h = await harness_factory()
    status, body, headers = await h.call("GET", "/v1/jobs/x")
    assert status == 401
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 401
    status, _, _ = await h.call("GET", "/v1/jobs/x", "not-a-token")
    assert status == 401
    async with h.session.post(
        f"{h.base}/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "air", "client_secret": "wrong"},
    ) as r:
        assert r.status == 401
    async with h.session.post(
        f"{h.base}/oauth2/token", data={"grant_type": "password", "client_id": "air"}
    ) as r:
        assert r.status == 400


async def test_an_expired_token_is_refused(harness_factory: Factory) -> None:
    h = await harness_factory(token_ttl_s=0.05)
    token = await h.token()
    status, _, _ = await h.call("GET", "/v1/jobs?correlationId=c", token)
    assert status == 200
    await asyncio.sleep(0.1)
    status, body, _ = await h.call("GET", "/v1/jobs?correlationId=c", token)
    assert status == 401
    assert "expired" in body["detail"]


async def test_basic_auth_client_credentials(harness_factory: Factory) -> None:
    h = await harness_factory()
    basic = base64.b64encode(f"air:{SECRET}".encode()).decode()
    async with h.session.post(
        f"{h.base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    ) as r:
        assert r.status == 200


# --------------------------------------------------------------------------- on demand


async def test_ondemand_returns_a_pdf_or_base64_json(harness_factory: Factory) -> None:
    h = await harness_factory()
    token = await h.token()
    req = {k: v for k, v in item("x").items() if k != "communicationId"}
    req["correlationId"] = "portal-1"
    status, pdf, headers = await h.call("POST", "/v1/communications/ondemand", token, json=req)
    assert status == 200, pdf
    assert headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-")
    assert headers["X-Template-Id"] == TEMPLATE.template_id
    assert headers["X-Template-Version"] == str(TEMPLATE.version)
    status, body, _ = await h.call(
        "POST",
        "/v1/communications/ondemand",
        token,
        json=req,
        headers={"Accept": "application/json"},
    )
    assert status == 200
    assert body["contentType"] == "application/pdf"
    assert base64.b64decode(body["content"]).startswith(b"%PDF-")
    ledger = (await h.call("GET", "/_emulator/ledger"))[1]
    assert ledger["ondemand_documents"] == 2
    assert ledger["documents"] == 0


async def test_ondemand_errors_are_problems(harness_factory: Factory) -> None:
    h = await harness_factory()
    token = await h.token()
    base = {**item("x"), "correlationId": "c"}
    cases = [
        ({**base, "templateVersion": 99}, 422),
        ({**base, "data": {}}, 422),
        ({**base, "channel": "FAX"}, 400),
        ({**base, "templateVersion": "2"}, 400),
    ]
    for body, expected in cases:
        status, problem, headers = await h.call(
            "POST", "/v1/communications/ondemand", token, json=body
        )
        assert status == expected, (body, problem)
        assert headers["Content-Type"].startswith("application/problem+json")
        assert problem["detail"]
    status, problem, _ = await h.call(
        "POST", "/v1/communications/ondemand", token, data=b"{not json"
    )
    assert status == 400
    assert "not JSON" in problem["detail"]


# --------------------------------------------------------------------------- batch jobs


async def test_a_job_composes_every_item_and_reports_each_lifecycle(
    harness_factory: Factory,
) -> None:
    h = await harness_factory()
    token = await h.token()
    items = [item("com-1", "PRINT"), item("com-2", "EMAIL"), item("com-3", "WEB")]
    items.append(item("com-4", "SMS", templateVersion=99))  # unknown version: that item fails
    status, accepted, _ = await h.call(
        "POST", "/v1/jobs", token, json={"correlationId": "batch-1", "communications": items}
    )
    assert status == 202
    assert accepted["status"] == "accepted"
    job = await h.wait_job(token, accepted["jobId"])
    by_id = {i["communicationId"]: i for i in job["items"]}
    assert by_id["com-4"]["status"] == "failed"
    assert by_id["com-4"]["errorCode"] == "UNKNOWN_TEMPLATE"
    assert job["status"] == "completed"
    for cid in ("com-1", "com-2", "com-3"):
        doc = by_id[cid]["documentId"]
        status, pdf, headers = await h.call("GET", f"/v1/documents/{doc}", token)
        assert status == 200
        assert pdf.startswith(b"%PDF-")
        assert headers["X-Template-Id"] == TEMPLATE.template_id
    await h.wait_callbacks(4 + 4 + 3 + 2)
    statuses: dict[str, list[str]] = {}
    for e in h.receiver.events:
        statuses.setdefault(e["communicationId"], []).append(e["status"])
    assert statuses == {
        "com-1": ["ACCEPTED", "COMPOSED", "PRINTED", "MAILED"],
        "com-2": ["ACCEPTED", "COMPOSED", "EMAIL_SENT", "EMAIL_DELIVERED"],
        "com-3": ["ACCEPTED", "COMPOSED", "WEB_POSTED"],
        "com-4": ["ACCEPTED", "FAILED"],
    }
    assert h.receiver.bad_signatures == 0
    failed = next(e for e in h.receiver.events if e["status"] == "FAILED")
    assert failed["exceptionCode"] == "UNKNOWN_TEMPLATE"
    assert failed["exceptionText"]
    ledger = (await h.call("GET", "/_emulator/ledger"))[1]
    assert ledger["documents"] == 3
    assert ledger["communications_with_more_than_one_document"] == 0


async def test_resubmission_never_makes_a_second_document(harness_factory: Factory) -> None:
    h = await harness_factory()
    token = await h.token()
    job = {"correlationId": "batch-7", "communications": [item("a"), item("b")]}
    status, first, _ = await h.call("POST", "/v1/jobs", token, json=job)
    assert status == 202
    await h.wait_job(token, first["jobId"])
    status, problem, _ = await h.call("POST", "/v1/jobs", token, json=job)
    assert status == 409
    assert problem["jobs"] == [first["jobId"]]
    mixed = {"correlationId": "batch-8", "communications": [item("b"), item("c")]}
    status, second, _ = await h.call("POST", "/v1/jobs", token, json=mixed)
    assert status == 202
    done = await h.wait_job(token, second["jobId"])
    by_id = {i["communicationId"]: i for i in done["items"]}
    assert by_id["b"]["status"] == "duplicate"
    assert by_id["b"]["duplicateOfJob"] == first["jobId"]
    assert by_id["c"]["status"] == "dispatched"
    ledger = (await h.call("GET", "/_emulator/ledger"))[1]
    assert ledger["documents"] == 3
    assert ledger["communications_with_more_than_one_document"] == 0
    assert ledger["duplicate_submissions"] == 3
    status, found, _ = await h.call("GET", "/v1/jobs?correlationId=batch-7", token)
    assert [j["jobId"] for j in found["jobs"]] == [first["jobId"]]


async def test_invalid_jobs_are_refused_whole(harness_factory: Factory) -> None:
    h = await harness_factory(max_body_bytes=64 * 1024)
    token = await h.token()
    cases: list[tuple[Any, int]] = [
        ({"communications": []}, 400),
        ({"communications": [item("a"), item("a")]}, 400),
        ({"communications": [{"communicationId": "a"}]}, 400),
        ({"communications": [item(f"i{n}") for n in range(1001)]}, 413),
        ([1, 2], 400),
    ]
    for body, expected in cases:
        status, problem, _ = await h.call("POST", "/v1/jobs", token, json=body)
        assert status == expected, problem
    ledger = (await h.call("GET", "/_emulator/ledger"))[1]
    assert ledger["documents"] == 0


async def test_cancel_before_composition(harness_factory: Factory) -> None:
    h = await harness_factory()
    h.emulator.config.stage_delay_s = 0.5
    token = await h.token()
    status, accepted, _ = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("z")]}
    )
    assert status == 202
    status, job, _ = await h.call("DELETE", f"/v1/jobs/{accepted['jobId']}", token)
    assert status == 200
    assert job["status"] == "cancelled"
    await asyncio.sleep(0.6)
    ledger = (await h.call("GET", "/_emulator/ledger"))[1]
    assert ledger["documents"] == 0
    status, _, _ = await h.call("GET", "/v1/jobs/nope", token)
    assert status == 404


# --------------------------------------------------------------------------- faults


async def test_rate_limit_answers_429_with_retry_after(harness_factory: Factory) -> None:
    h = await harness_factory(
        FaultConfig(latency_median_ms=0, latency_p99_ms=0, rate_limit_per_s=1, rate_limit_burst=3)
    )
    token = await h.token()
    results = [await h.call("GET", "/v1/jobs?correlationId=x", token) for _ in range(6)]
    codes = [r[0] for r in results]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    limited = next(r for r in results if r[0] == 429)
    assert int(limited[2]["Retry-After"]) >= 1


async def test_outage_window_answers_503_and_does_no_work(harness_factory: Factory) -> None:
    h = await harness_factory()
    token = await h.token()
    status, _, _ = await h.call(
        "PUT", "/_emulator/faults", json={"outages": [[0, 30]], "relative": True}
    )
    assert status == 200
    status, problem, headers = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("o")]}
    )
    assert status == 503
    assert 25 <= int(headers["Retry-After"]) <= 30
    assert problem["title"] == "Service unavailable"
    assert (await h.call("GET", "/_emulator/ledger"))[1]["documents"] == 0


async def test_injected_errors_and_timeouts_do_no_work(harness_factory: Factory) -> None:
    h = await harness_factory(FaultConfig(latency_median_ms=0, latency_p99_ms=0, error_rate=1.0))
    token = await h.token()
    status, _, _ = await h.call("POST", "/v1/jobs", token, json={"communications": [item("e")]})
    assert status in (500, 502, 503)
    await h.call(
        "PUT",
        "/_emulator/faults",
        json={"error_rate": 0.0, "timeout_rate": 1.0, "timeout_hold_s": 0.05},
    )
    status, problem, _ = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("e")]}
    )
    assert status == 504
    assert problem["status"] == 504
    assert (await h.call("GET", "/_emulator/ledger"))[1]["documents"] == 0
    status, body, _ = await h.call("PUT", "/_emulator/faults", json={"error_rate": 2.0})
    assert status == 400
    assert "error_rate" in body["detail"]


async def test_duplicate_and_reordered_callbacks(harness_factory: Factory) -> None:
    h = await harness_factory(
        FaultConfig(
            latency_median_ms=0,
            latency_p99_ms=0,
            duplicate_callback_rate=1.0,
            out_of_order_callback_rate=1.0,
        )
    )
    token = await h.token()
    status, accepted, _ = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("d")]}
    )
    assert status == 202
    await h.wait_job(token, accepted["jobId"])
    await h.wait_callbacks(8)
    ids = [e["eventId"] for e in h.receiver.events]
    assert len(ids) == 8
    assert len(set(ids)) == 4
    order = list(dict.fromkeys(e["status"] for e in h.receiver.events))
    assert sorted(order) == sorted(["ACCEPTED", "COMPOSED", "PRINTED", "MAILED"])
    assert order != ["ACCEPTED", "COMPOSED", "PRINTED", "MAILED"]  # one adjacent pair swapped
    assert (await h.call("GET", "/_emulator/stats"))[1]["callbacks_reordered"] == 1


async def test_callbacks_are_retried_until_accepted(harness_factory: Factory) -> None:
    h = await harness_factory()
    h.receiver.fail_first = 3
    token = await h.token()
    status, accepted, _ = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("r", "WEB")]}
    )
    assert status == 202
    await h.wait_job(token, accepted["jobId"])
    await h.wait_callbacks(3)
    assert [e["status"] for e in h.receiver.events] == ["ACCEPTED", "COMPOSED", "WEB_POSTED"]
    stats = (await h.call("GET", "/_emulator/stats"))[1]
    assert stats["callback_status_503"] == 3
    assert stats["callbacks_delivered"] == 3


async def test_bounces_are_reported_with_their_type(harness_factory: Factory) -> None:
    h = await harness_factory(outcomes=Outcomes(bounce_rate=1.0, open_rate=0.0))
    token = await h.token()
    status, accepted, _ = await h.call(
        "POST", "/v1/jobs", token, json={"communications": [item("b", "EMAIL")]}
    )
    assert status == 202
    await h.wait_job(token, accepted["jobId"])
    await h.wait_callbacks(4)
    last = h.receiver.events[-1]
    assert last["status"] == "EMAIL_BOUNCED"
    assert last["bounceType"] in ("HARD", "SOFT")


# --------------------------------------------------------------------------- client disconnects


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_client_gone_during_injected_latency_is_quiet_and_the_emulator_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served the way ``web.run_app`` serves it (handlers are not cancelled when the client
    leaves, unlike aiohttp's TestServer), a client that hangs up while its call is held by the
    injected latency costs a debug line and a counter, never an ERROR record or a traceback."""
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(
        client_id="air",
        client_secret=SECRET,
        faults=FaultConfig(latency_median_ms=200.0, latency_p99_ms=200.0),
    )
    world = World.with_templates(template_catalogue(), rng=random.Random(1))
    emulator = Emulator(config, world, seed=1)
    runner = web.AppRunner(emulator.app())  # handler_cancellation=False, as in web.run_app
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    try:
        h = Harness(f"http://127.0.0.1:{port}", emulator, Receiver(), session)
        token = await h.token()
        body = orjson.dumps({**item("gone"), "correlationId": "portal-gone"})
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/communications/ondemand HTTP/1.1\r\nHost: emulator\r\n"
            b"Content-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await _until(lambda: emulator.stats["verdict_ok"] == 1)  # held by the latency now
        writer.transport.abort()  # the client hangs up (a reset, not a polite close)
        await _until(lambda: emulator.stats["client_disconnected"] == 1)

        status, pdf, _ = await h.call(
            "POST",
            "/v1/communications/ondemand",
            token,
            json={**item("stays"), "correlationId": "portal-stays"},
        )
        assert status == 200
        assert pdf.startswith(b"%PDF-")
        assert emulator.stats["ondemand_documents"] == 1  # the abandoned call did no work
    finally:
        await session.close()
        await runner.cleanup()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r for r in caplog.records if r.exc_info] == []
    assert any("client went away" in r.getMessage() for r in caplog.records)


async def test_a_connection_reset_while_the_client_is_still_there_is_a_real_error(
    harness_factory: Factory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await harness_factory()
    token = await h.token()

    def reset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("not the client's doing")

    monkeypatch.setattr(World, "compose_ondemand", reset)
    req = {**item("x"), "correlationId": "portal-1"}
    status, _, _ = await h.call("POST", "/v1/communications/ondemand", token, json=req)
    assert status == 500
    assert h.emulator.stats["client_disconnected"] == 0
    assert any(r.levelno >= logging.ERROR and r.exc_info for r in caplog.records)
