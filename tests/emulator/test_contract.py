"""The emulator's answers against docs/exstream-openapi.yaml, validated by openapi-core (a
maintained OpenAPI validator, not hand-written checks): every call the project's client makes,
its success and its error answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict
from yarl import URL

from streams.emulator.design import DRIVER_DATA_SOURCE, communication_id
from streams.simulator.generator import template_catalogue
from tests.exstream.emulated import SECRET, Emulated, emulated

pytestmark = pytest.mark.component

SPEC = OpenAPI.from_file_path(
    str(Path(__file__).resolve().parents[2] / "docs" / "exstream-openapi.yaml")
)
TEMPLATE = next(t for t in template_catalogue() if t.status == "APPROVED" and t.language == "en")
DESIGN = communication_id(TEMPLATE.template_id, "en")
DATA = {f: f"v{i}" for i, f in enumerate(TEMPLATE.required_fields)}
ORC = "/orchestration/api/v1"
DES = "/design/api/v1"


class Req:
    """openapi-core's Request protocol over what the test sent."""

    def __init__(self, method: str, url: URL, headers: dict[str, str], body: bytes | None) -> None:
        self.host_url = f"{url.scheme}://{url.host}:{url.port}"
        self.path = url.path
        self.method = method.lower()
        self.body = body
        self.content_type = headers.get("Content-Type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(url.query.items())),
            header=Headers(headers),
            cookie=ImmutableMultiDict(),
        )


class Resp:
    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status_code = status
        self.headers = Headers(headers)
        self.content_type = headers.get("Content-Type", "").split(";")[0].lower()
        self.data = data


class Checked:
    def __init__(self, world: Emulated, session: aiohttp.ClientSession) -> None:
        self.world = world
        self.session = session
        self.token = ""
        self.seen: set[tuple[str, str, int]] = set()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if auth and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        url = URL(self.world.base + path).with_query(params or {})
        async with self.session.request(method, url, data=body, headers=all_headers) as r:
            raw = await r.read()
            reply_headers = dict(r.headers)
            status = r.status
        request = Req(method, url, all_headers, body)
        SPEC.validate_response(request, Resp(status, reply_headers, raw))
        if 200 <= status < 300:
            SPEC.validate_request(request)
        self.seen.add((method, path.split("?")[0], status))
        ctype = reply_headers.get("Content-Type", "")
        return status, orjson.loads(raw) if "json" in ctype else raw


@pytest.fixture
async def exstream() -> AsyncIterator[Emulated]:
    async for world in emulated():
        yield world


async def test_every_call_the_client_makes_answers_as_the_document_says(
    exstream: Emulated,
) -> None:
    async with aiohttp.ClientSession() as session:
        c = Checked(exstream, session)
        form = f"grant_type=client_credentials&client_id=air&client_secret={SECRET}&scope=s"
        form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for path in ("/otdsws/otdstenant/air/oauth2/token", "/otdstenant/air/oauth2/token"):
            status, token = await c.call("POST", path, body=form.encode(), headers=form_headers)
            assert status == 200
            c.token = token["access_token"]
        bad = b"grant_type=client_credentials&client_id=air&client_secret=no"
        assert (
            await c.call("POST", "/otdstenant/air/oauth2/token", body=bad, headers=form_headers)
        )[0] == 401
        assert (
            await c.call(
                "POST", "/otdstenant/x/oauth2/token", body=form.encode(), headers=form_headers
            )
        )[0] == 404

        # on demand: PDF, JSON outputs, the orchestration error envelope, an unknown design
        gen = f"{ORC}/inputs/ondemand/air/generate"
        run = {"communicationId": DESIGN, "driverDataSource": DRIVER_DATA_SOURCE}
        driver = orjson.dumps({"data": DATA})
        status, pdf = await c.call(
            "POST", gen, body=driver, headers={**run, "Accept": "application/pdf"}
        )
        assert (status, pdf[:5]) == (200, b"%PDF-")
        assert (
            await c.call("POST", gen, body=driver, headers={**run, "Accept": "application/json"})
        )[0] == 200
        assert (await c.call("POST", gen, body=b"{}", headers=run))[0] == 400
        unknown = {**run, "communicationId": "00000000-0000-0000-0000-000000000000"}
        assert (await c.call("POST", gen, body=driver, headers=unknown))[0] == 404
        assert (await c.call("POST", gen, body=driver, headers=run, auth=False))[0] == 401

        # batch, jobs, flow instances and steps, outputs, artifacts, stop, delete
        record = {
            "communicationId": "com-1",
            "customerId": "cust-1",
            "exstreamCommunicationId": DESIGN,
            "templateVersion": 2,
            "language": "en",
            "channel": "PRINT",
            "data": DATA,
        }
        batch = f"{ORC}/inputs/batch/air/air-batch"
        ext = {"exstream-variable": "externalId=b-1"}
        status, accepted = await c.call(
            "POST", batch, body=orjson.dumps({"customers": [record]}), headers=ext
        )
        assert status == 200
        job_id = accepted["data"][0]["jobId"]
        assert (await c.call("POST", batch, body=b'{"customers": []}'))[0] == 400
        await exstream.emulator.events.drain()
        import asyncio

        for _ in range(100):
            _, job = await c.call("GET", f"{ORC}/runtime/air/jobs/{job_id}")
            if job["data"]["status"] == "complete":
                break
            await asyncio.sleep(0.01)
        status, page = await c.call(
            "GET",
            f"{ORC}/runtime/air/jobs",
            params={"filter": "externalId:b-1", "offset": "0", "count": "10"},
        )
        assert [j["id"] for j in page["data"]] == [job_id]
        status, instances = await c.call(
            "GET", f"{ORC}/runtime/air/flow-instances", params={"filter": f"jobId:{job_id}"}
        )
        instance = instances["data"][0]["id"]
        status, steps = await c.call(
            "GET",
            f"{ORC}/runtime/air/flow-steps",
            params={"filter": f"flowInstanceId:{instance};stepTypes:output"},
        )
        step = steps["data"][0]["id"]
        assert (await c.call("GET", f"{ORC}/runtime/air/flow-steps/{step}/delivery-file/outputs"))[
            0
        ] == 200
        assert (
            await c.call("GET", f"{ORC}/runtime/air/flow-steps/{step}/customer-artifacts/com-1")
        )[0] == 200
        assert (
            await c.call("GET", f"{ORC}/runtime/air/flow-steps/{step}/customer-artifacts/nobody")
        )[0] == 404
        assert (await c.call("POST", f"{ORC}/runtime/air/jobs/{job_id}/stop"))[0] == 200
        assert (await c.call("DELETE", f"{ORC}/runtime/air/jobs/{job_id}"))[0] == 200
        assert (await c.call("GET", f"{ORC}/runtime/air/jobs/{job_id}"))[0] == 404
        assert (await c.call("GET", f"{ORC}/runtime/elsewhere/jobs"))[0] == 404

        # design: communications, one version, content, state change, links, manifest
        status, listing = await c.call(
            "GET",
            f"{DES}/resources/air",
            params={
                "filter.types": "exstrapplication",
                "filter.latestVersion": "false",
                "offset": "0",
                "count": "5",
            },
        )
        assert status == 200
        assert listing["page"]["totalElements"] == len(template_catalogue())
        assert (await c.call("GET", f"{DES}/resources/air/{DESIGN}", params={"version": "2"}))[
            0
        ] == 200
        assert (
            await c.call("GET", f"{DES}/resources/air/{DESIGN}/content", params={"version": "2"})
        )[0] == 200
        state = orjson.dumps({"state": "REVIEW"})
        assert (
            await c.call(
                "PUT", f"{DES}/resources/air/{DESIGN}/state", body=state, params={"version": "3"}
            )
        )[0] == 200
        assert (
            await c.call(
                "PUT",
                f"{DES}/resources/air/{DESIGN}/state",
                body=b'{"state": "GONE"}',
                params={"version": "3"},
            )
        )[0] == 400
        status, links = await c.call(
            "GET",
            f"{DES}/links/air",
            params={
                "linkSubjectId": DESIGN,
                "linkDepth": "2",
                "filter.types": "exstrcommunicationset",
            },
        )
        set_id = links["data"][0]["linkObjectId"]
        assert (await c.call("GET", f"{DES}/manifests/air/communication-set/{set_id}"))[0] == 200
        assert (await c.call("GET", f"{DES}/resources/air/00000000-0000-0000-0000-000000000000"))[
            0
        ] == 404

        # throttling and outage answers carry Retry-After
        await c.call(
            "PUT",
            "/_emulator/faults",
            body=orjson.dumps({"outages": [[0, 30]], "relative": True}),
            auth=False,
        )
        assert (await c.call("GET", f"{ORC}/runtime/air/jobs"))[0] == 503
        await c.call(
            "PUT",
            "/_emulator/faults",
            body=orjson.dumps({"outages": [], "rate_limit_per_s": 0.01, "rate_limit_burst": 1}),
            auth=False,
        )
        codes = [(await c.call("GET", f"{ORC}/runtime/air/jobs"))[0] for _ in range(2)]
        assert 429 in codes

        for path in ("/_emulator/healthz", "/_emulator/ledger", "/_emulator/stats"):
            assert (await c.call("GET", path, auth=False))[0] == 200
    assert len(c.seen) >= 35
