"""The emulator over real loopback HTTP: public paths, error shapes, faults, event batches."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from streams.emulator.design import DRIVER_DATA_SOURCE, communication_id, seed
from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
from streams.simulator.generator import template_catalogue
from tests.exstream.emulated import SECRET, Emulated, emulated

pytestmark = pytest.mark.component

TEMPLATE = next(t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en")
DESIGN = communication_id(TEMPLATE.template_id, "en")
DATA = {f: f"value-{i}" for i, f in enumerate(TEMPLATE.required_fields)}
ORC = "/orchestration/api/v1"


def record(cid: str, channel: str = "PRINT", **over: Any) -> dict[str, Any]:
    return {
        "communicationId": cid,
        "customerId": "cust-1",
        "exstreamCommunicationId": DESIGN,
        "templateId": TEMPLATE.template_id,
        "templateVersion": TEMPLATE.version,
        "language": "en",
        "channel": channel,
        "recipient": {"email": "a@example.com"},
        "data": DATA,
        **over,
    }


class Http:
    def __init__(self, world: Emulated, session: aiohttp.ClientSession) -> None:
        self.world = world
        self.session = session

    async def token(self) -> str:
        async with self.session.post(
            f"{self.world.base}/otdsws/otdstenant/air/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": "air", "client_secret": SECRET},
        ) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["token_type"] == "Bearer"
            assert {"access_token", "refresh_token", "expires_in"} <= set(body)
            return str(body["access_token"])

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any, dict[str, str]]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, f"{self.world.base}{path}", headers=headers, **kwargs
        ) as r:
            raw = await r.read()
            body: Any = orjson.loads(raw) if "json" in r.headers.get("Content-Type", "") else raw
            return r.status, body, dict(r.headers)

    async def submit(self, token: str, *records: dict[str, Any], external_id: str = "b") -> str:
        status, body, _ = await self.call(
            "POST",
            f"{ORC}/inputs/batch/air/air-batch",
            token,
            data=orjson.dumps({"customers": list(records)}),
            headers={
                "Content-Type": "application/json",
                "exstream-variable": f"externalId={external_id}",
            },
        )
        assert status == 200, body
        return str(body["data"][0]["jobId"])


Make = Callable[..., Any]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    gens: list[Any] = []
    sessions: list[aiohttp.ClientSession] = []

    async def build(**kwargs: Any) -> Http:
        gen = emulated(**kwargs)
        gens.append(gen)
        world = await gen.__anext__()
        session = aiohttp.ClientSession()
        sessions.append(session)
        return Http(world, session)

    yield build
    for s in sessions:
        await s.close()
    for g in gens:
        await g.aclose()


async def test_old_routes_are_gone_and_calls_need_a_token(make: Make) -> None:
    h = await make()
    for path in ("/oauth2/token", "/v1/jobs", "/v1/communications/ondemand"):
        status, _, _ = await h.call("POST", path)
        assert status in (404, 405), path
    status, body, _ = await h.call("GET", f"{ORC}/runtime/air/jobs")
    assert status == 401
    assert set(body) == {"timestamp", "status", "error", "message", "details", "errorCode", "path"}
    assert body["path"] == f"{ORC}/runtime/air/jobs"


async def test_token_errors_follow_oauth2(make: Make) -> None:
    h = await make()
    async with h.session.post(
        f"{h.world.base}/otdstenant/air/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "air", "client_secret": "no"},
    ) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "invalid_client"
    async with h.session.post(
        f"{h.world.base}/otdstenant/other/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "air", "client_secret": SECRET},
    ) as r:
        assert r.status == 404
    async with h.session.post(
        f"{h.world.base}/otdstenant/air/oauth2/token", data={"grant_type": "password"}
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "unsupported_grant_type"


async def test_an_unknown_domain_is_404(make: Make) -> None:
    h = await make()
    token = await h.token()
    status, body, _ = await h.call("GET", f"{ORC}/runtime/elsewhere/jobs", token)
    assert status == 404
    assert "elsewhere" in body["message"]


async def test_ondemand_needs_both_headers_and_reports_errors_in_the_envelope(make: Make) -> None:
    h = await make()
    token = await h.token()
    url = f"{ORC}/inputs/ondemand/air/generate"
    status, body, _ = await h.call("POST", url, token, data=b"{}")
    assert status == 400
    assert "driverDataSource" in body["message"]
    status, body, _ = await h.call(
        "POST",
        url,
        token,
        data=b"{}",
        headers={"communicationId": DESIGN, "driverDataSource": DRIVER_DATA_SOURCE},
    )
    assert status == 400
    assert body["status"] == "error"
    assert "required fields missing" in body["data"][0]["errorMessage"]
    status, pdf, headers = await h.call(
        "POST",
        url,
        token,
        data=orjson.dumps({"data": DATA}),
        headers={
            "communicationId": DESIGN,
            "driverDataSource": DRIVER_DATA_SOURCE,
            "Accept": "application/pdf",
        },
    )
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    assert pdf.startswith(b"%PDF-")


async def test_a_job_sends_its_events_in_batches(make: Make) -> None:
    h = await make(outcomes=Outcomes(open_rate=0.0))
    token = await h.token()
    await h.submit(token, record("p1"), record("e1", "EMAIL"), record("w1", "WEB"))
    await h.world.sink.until(3 + 2 + 2 + 1)
    types = [
        (e["user"]["AirCommunicationId"], e["expctr"]["schemaType"]) for e in h.world.sink.events
    ]
    assert [t for c, t in types if c == "p1"] == [
        "Exstream-Generated",
        "Exstream-PrintFile",
        "Exstream-PrintMail",
    ]
    assert [t for c, t in types if c == "e1"] == [
        "Exstream-Generated",
        "Exstream-Email-Submit",
        "Exstream-Email-POST",
    ]
    assert [t for c, t in types if c == "w1"] == ["Exstream-Generated", "Exstream-Portal"]
    assert h.world.sink.batches < 8  # batched, not one request per event
    email = next(
        e for e in h.world.sink.events if e["expctr"]["schemaType"] == "Exstream-Email-POST"
    )
    assert email["exstreamEmailStatistics"]["eventType"] == "POST"
    generated = h.world.sink.events[0]
    assert generated["exstreamJob"]["status"] == "success"
    assert generated["user"]["CustomerId"] == "cust-1"
    assert generated["user"]["DocumentId"].startswith("doc-")


async def test_the_api_answers_while_a_big_job_composes(make: Make) -> None:
    """A job is composed one customer at a time with the event loop free in between: the API
    answers while a driver file of 200 customers is being composed (composed in one go, the
    ledger went from 0 to 200 with nothing answered in between, and a loaded machine's fault
    test once waited more than 10 s for it)."""
    h = await make()
    token = await h.token()
    total = 200
    await h.submit(token, *(record(f"big-{i}") for i in range(total)))
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while (not seen or seen[-1] < total) and time.monotonic() < deadline:
        seen.append((await h.call("GET", "/_emulator/ledger"))[1]["documents"])
    assert seen[-1] == total
    assert [n for n in seen if 0 < n < total], f"no answer while composing: {sorted(set(seen))}"
    await h.world.emulator.drain_events()


async def test_a_customer_that_cannot_be_composed_reports_a_failed_event(make: Make) -> None:
    h = await make()
    token = await h.token()
    job_id = await h.submit(token, record("f1", data={}))
    await h.world.sink.until(1)
    (event,) = h.world.sink.events
    assert event["expctr"]["schemaType"] == "Exstream-PrintFile-Failed"
    assert event["exstreamJob"]["status"] == "error"
    assert event["exstreamJob"]["msg"].startswith("MISSING_DATA")
    status, body, _ = await h.call("GET", f"{ORC}/runtime/air/jobs/{job_id}", token)
    assert status == 200
    assert body["data"]["status"] == "error"


async def test_events_are_retried_until_accepted(make: Make) -> None:
    h = await make()
    h.world.sink.fail_first = 3
    token = await h.token()
    await h.submit(token, record("r1", "WEB"))
    await h.world.sink.until(2)
    await h.world.emulator.drain_events()
    stats = (await h.call("GET", "/_emulator/stats"))[1]
    assert stats["event_batch_status_503"] == 3
    assert stats["events_delivered"] == 2


async def test_duplicate_and_reordered_events(make: Make) -> None:
    faults = FaultConfig(
        latency_median_ms=0,
        latency_p99_ms=0,
        duplicate_callback_rate=1.0,
        out_of_order_callback_rate=1.0,
    )
    h = await make(faults=faults)
    token = await h.token()
    await h.submit(token, record("d1"))
    await h.world.sink.until(6)
    ids = [e["expctr"]["eventId"] for e in h.world.sink.events]
    assert len(ids) == 6
    assert len(set(ids)) == 3
    order = list(dict.fromkeys(e["expctr"]["schemaType"] for e in h.world.sink.events))
    assert order != ["Exstream-Generated", "Exstream-PrintFile", "Exstream-PrintMail"]


async def test_rate_limit_outage_errors_and_timeouts_do_no_work(make: Make) -> None:
    h = await make(
        faults=FaultConfig(
            latency_median_ms=0, latency_p99_ms=0, rate_limit_per_s=1, rate_limit_burst=2
        )
    )
    token = await h.token()
    codes = [(await h.call("GET", f"{ORC}/runtime/air/jobs", token))[0] for _ in range(5)]
    assert codes[:2] == [200, 200]
    assert 429 in codes[2:]
    await h.call("PUT", "/_emulator/faults", json={"rate_limit_per_s": None})
    await h.call("PUT", "/_emulator/faults", json={"outages": [[0, 30]], "relative": True})
    batch = f"{ORC}/inputs/batch/air/air-batch"
    status, body, headers = await h.call(
        "POST", batch, token, data=orjson.dumps({"customers": [record("o")]})
    )
    assert status == 503
    assert 25 <= int(headers["Retry-After"]) <= 30
    assert body["status"] == 503
    await h.call(
        "PUT",
        "/_emulator/faults",
        json={"outages": [], "timeout_rate": 1.0, "timeout_hold_s": 0.05},
    )
    status, _, _ = await h.call(
        "POST", batch, token, data=orjson.dumps({"customers": [record("t")]})
    )
    assert status == 504
    assert (await h.call("GET", "/_emulator/ledger"))[1]["documents"] == 0
    assert h.world.runtime.jobs == {}
    status, body, _ = await h.call("PUT", "/_emulator/faults", json={"error_rate": 2.0})
    assert status == 400
    assert "error_rate" in body["message"]


async def test_design_state_change_moves_what_runs(make: Make) -> None:
    h = await make()
    token = await h.token()
    des = "/design/api/v1"
    status, body, _ = await h.call(
        "GET",
        f"{des}/resources/air?filter.types=exstrapplication&filter.states=APPROVED&filter.latestVersion=false",
        token,
    )
    assert status == 200
    assert all(v["state"] == "APPROVED" for v in body["data"])
    status, body, _ = await h.call(
        "PUT", f"{des}/resources/air/{DESIGN}/state?version=3", token, json={"state": "APPROVED"}
    )
    assert status == 200
    assert body["data"]["state"] == "APPROVED"
    assert h.world.runtime.design.latest_approved(DESIGN).version == 3  # type: ignore[union-attr]
    status, body, _ = await h.call(
        "PUT", f"{des}/resources/air/{DESIGN}/state?version=3", token, json={"state": "LIVE"}
    )
    assert status == 400


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
    emulator = Emulator(
        config, Runtime(design=seed(template_catalogue()), rng=random.Random(1)), seed=1
    )
    runner = web.AppRunner(emulator.app())  # handler_cancellation=False, as in web.run_app
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = aiohttp.ClientSession()
    try:
        world = Emulated(emulator, f"http://127.0.0.1:{port}", None)  # type: ignore[arg-type]
        h = Http(world, session)
        token = await h.token()
        body = orjson.dumps({"data": DATA})
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {ORC}/inputs/ondemand/air/generate HTTP/1.1\r\nHost: emulator\r\n".encode()
            + f"communicationId: {DESIGN}\r\ndriverDataSource: {DRIVER_DATA_SOURCE}\r\n".encode()
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await _until(lambda: emulator.stats["verdict_ok"] == 1)  # held by the latency now
        writer.transport.abort()  # the client hangs up (a reset, not a polite close)
        await _until(lambda: emulator.stats["client_disconnected"] == 1)
        status, pdf, _ = await h.call(
            "POST",
            f"{ORC}/inputs/ondemand/air/generate",
            token,
            data=body,
            headers={
                "communicationId": DESIGN,
                "driverDataSource": DRIVER_DATA_SOURCE,
                "Accept": "application/pdf",
            },
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
    make: Make, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await make()
    token = await h.token()

    def reset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("not the client's doing")

    monkeypatch.setattr(Runtime, "ondemand", reset)
    status, _, _ = await h.call(
        "POST",
        f"{ORC}/inputs/ondemand/air/generate",
        token,
        data=b"{}",
        headers={"communicationId": DESIGN, "driverDataSource": DRIVER_DATA_SOURCE},
    )
    assert status == 500
    assert h.world.emulator.stats["client_disconnected"] == 0
    assert any(r.levelno >= logging.ERROR and r.exc_info for r in caplog.records)
