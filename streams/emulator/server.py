"""The emulator's HTTP surface (aiohttp): Exstream's public contract over
:mod:`streams.emulator.runtime` and :mod:`streams.emulator.design`.

Routes (``docs/exstream-emulator.md`` gives the public source of each):

- OTDS: ``POST /otdsws/otdstenant/{tenant}/oauth2/token`` (self-hosted) and
  ``POST /otdstenant/{tenant}/oauth2/token`` (cloud);
- Orchestration (``/orchestration/api/v1``): ``POST inputs/ondemand/{domain}/generate``,
  ``POST inputs/batch/{domain}/{service}``, ``GET runtime/{domain}/jobs[/{id}]``,
  ``POST runtime/{domain}/jobs/{id}/stop``, ``DELETE runtime/{domain}/jobs/{id}``,
  ``GET runtime/{domain}/flow-instances``, ``GET runtime/{domain}/flow-steps``,
  ``GET runtime/{domain}/flow-steps/{id}/delivery-file/outputs``,
  ``GET runtime/{domain}/flow-steps/{id}/customer-artifacts/{customerId}``;
- Design (``/design/api/v1``): ``GET resources/{domain}``, ``GET resources/{domain}/{id}``,
  ``GET resources/{domain}/{id}/content``, ``PUT resources/{domain}/{id}/state``,
  ``GET links/{domain}``, ``GET manifests/{domain}/communication-set/{id}``;
- emulator-only, not Exstream's: ``GET /_emulator/healthz``, ``GET /_emulator/ledger``,
  ``GET /_emulator/stats``, ``PUT /_emulator/faults``.

Every Orchestration and Design call needs ``Authorization: Bearer`` with an OTDS token. Errors
are Spring-style bodies ``{timestamp, status, error, message, details, errorCode, path}``, or
Orchestration's ``{status: "error", data: [...]}`` for an on-demand run that failed. Injected
faults (:mod:`streams.emulator.faults`) apply to Orchestration calls and are decided before any
work is done, so a refused or timed-out call changed nothing.

Delivery and engagement events (:mod:`streams.emulator.events`) are posted in batches (a JSON
array) to the events URL, authenticated as configured (HMAC signature or bearer secret).
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import secrets
import time
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from streams.emulator.design import DRIVER_DATA_SOURCE, DesignWorld, communication_set_id
from streams.emulator.design import content_of as design_content
from streams.emulator.dispatch import EventDispatcher
from streams.emulator.faults import FaultConfig, FaultInjector, Verdict
from streams.emulator.runtime import RequestError, Runtime
from streams.exstream.driver import parse_external_id_header

log = logging.getLogger(__name__)

CLIENT_CLOSED = 499
"""The status counted (never sent) for a call whose client hung up first (nginx's convention)."""
ORC = "/orchestration/api/v1"
DES = "/design/api/v1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class EmulatorConfig:
    client_id: str
    client_secret: str
    tenant: str = "air"
    domain: str = "air"
    events_url: str | None = None
    events_secret: bytes = b""
    events_auth: str = "hmac"
    """``hmac`` (``X-Exstream-Signature``) or ``bearer`` (``Authorization: Bearer <secret>``)."""
    events_batch_size: int = 100
    events_linger_s: float = 0.05
    token_ttl_s: float = 900.0
    stage_delay_s: float = 0.01
    """Pause before a waiting job starts, and before its events leave."""
    callback_max_attempts: int = 12
    callback_concurrency: int = 4
    faults: FaultConfig = field(default_factory=FaultConfig)
    max_body_bytes: int = 8 * 1024 * 1024


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status the standard library does not name
        return ""


def spring_error(
    status: int, message: str, path: str, *, retry_after: int | None = None, details: str = ""
) -> web.Response:
    """The Spring-style error body Exstream's services answer with."""
    body = {
        "timestamp": int(time.time() * 1000),
        "status": status,
        "error": _phrase(status),
        "message": message,
        "details": details,
        "errorCode": status,
        "path": path,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def orchestration_error(status: int, message: str) -> web.Response:
    """Orchestration's error envelope for an on-demand run."""
    body = {
        "status": "error",
        "data": [
            {
                "errorMessage": message,
                "statusCode": str(status),
                "engineOutputContext": {"queueName": "", "fileName": "", "customerNumber": ""},
            }
        ],
    }
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _page(items: list[Any], offset: int, count: int) -> dict[str, Any]:
    chunk = items[offset : offset + count]
    size = max(1, count)
    return {
        "status": "success",
        "data": chunk,
        "page": {
            "pageSize": count,
            "pageOffset": offset,
            "totalElements": len(items),
            "totalPages": (len(items) + size - 1) // size,
            "currentPageNumber": offset // size,
        },
    }


def _int(query: Any, name: str, default: int) -> int:
    try:
        value = int(query.get(name, default))
    except (TypeError, ValueError):
        raise RequestError(400, f"{name} must be an integer") from None
    if value < 0:
        raise RequestError(400, f"{name} must not be negative")
    return value


def parse_filter(value: str | None) -> dict[str, str]:
    """``key:value;key:value`` (the runtime API's filter syntax)."""
    out: dict[str, str] = {}
    for pair in (value or "").split(";"):
        if not pair.strip():
            continue
        key, sep, rest = pair.partition(":")
        if not sep:
            raise RequestError(400, f"filter pair {pair!r} is not key:value")
        out[key.strip()] = rest.strip()
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


class Emulator:
    """One emulator instance: its Design and Orchestration worlds, faults, event dispatcher."""

    def __init__(self, config: EmulatorConfig, runtime: Runtime, *, seed: int = 0) -> None:
        self.config = config
        self.runtime = runtime
        self.faults = FaultInjector(config.faults, random.Random(seed))
        self.started = time.monotonic()
        self.tokens: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self.events = EventDispatcher(
            url=config.events_url,
            secret=config.events_secret,
            auth=config.events_auth,
            batch_size=config.events_batch_size,
            linger_s=config.events_linger_s,
            max_attempts=config.callback_max_attempts,
            workers=config.callback_concurrency,
            faults=self.faults,
            stats=self.stats,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def design(self) -> DesignWorld:
        return self.runtime.design

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._auth_and_faults],
            client_max_size=self.config.max_body_bytes,
        )
        r = app.router
        r.add_post("/otdsws/otdstenant/{tenant}/oauth2/token", self.token)
        r.add_post("/otdstenant/{tenant}/oauth2/token", self.token)
        r.add_post(ORC + "/inputs/ondemand/{domain}/generate", self.generate)
        r.add_post(ORC + "/inputs/batch/{domain}/{service}", self.submit_batch)
        r.add_get(ORC + "/runtime/{domain}/jobs", self.find_jobs)
        r.add_get(ORC + "/runtime/{domain}/jobs/{job_id}", self.get_job)
        r.add_delete(ORC + "/runtime/{domain}/jobs/{job_id}", self.delete_job)
        r.add_post(ORC + "/runtime/{domain}/jobs/{job_id}/stop", self.stop_job)
        r.add_get(ORC + "/runtime/{domain}/flow-instances", self.flow_instances)
        r.add_get(ORC + "/runtime/{domain}/flow-steps", self.flow_steps)
        r.add_get(
            ORC + "/runtime/{domain}/flow-steps/{step_id}/delivery-file/outputs", self.outputs
        )
        r.add_get(
            ORC + "/runtime/{domain}/flow-steps/{step_id}/customer-artifacts/{customer_id}",
            self.customer_artifacts,
        )
        r.add_get(DES + "/resources/{domain}", self.resources)
        r.add_get(DES + "/resources/{domain}/{resource_id}", self.resource)
        r.add_get(DES + "/resources/{domain}/{resource_id}/content", self.content)
        r.add_put(DES + "/resources/{domain}/{resource_id}/state", self.set_state)
        r.add_get(DES + "/links/{domain}", self.links)
        r.add_get(DES + "/manifests/{domain}/communication-set/{set_id}", self.manifest)
        r.add_get("/_emulator/healthz", self.health)
        r.add_get("/_emulator/ledger", self.ledger)
        r.add_get("/_emulator/stats", self.get_stats)
        r.add_put("/_emulator/faults", self.set_faults)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self.started = time.monotonic()
        await self.events.start()

    async def _stop(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.events.stop()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ middlewares

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            if request.transport is not None:  # the client is still there: a real error
                raise
            # the client hung up (often during injected latency): nobody reads the answer
            self.stats["client_disconnected"] += 1
            log.debug("client went away before the answer to %s %s", request.method, request.path)
            return spring_error(CLIENT_CLOSED, "the client disconnected", request.path)
        except RequestError as exc:
            if exc.envelope == "orchestration":
                return orchestration_error(exc.status, exc.message)
            return spring_error(exc.status, exc.message, request.path)
        except web.HTTPRequestEntityTooLarge:
            return spring_error(413, "the request body is too large", request.path)
        except web.HTTPException as exc:
            if exc.status >= 400:
                return spring_error(exc.status, exc.reason, request.path)
            raise

    @web.middleware
    async def _auth_and_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not (path.startswith("/orchestration/") or path.startswith("/design/")):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None:
            self.stats["unauthorized"] += 1
            return spring_error(401, "a valid bearer token is required", path)
        if expires < time.monotonic():
            self.tokens.pop(token, None)
            self.stats["token_expired"] += 1
            return spring_error(401, "the bearer token has expired", path)
        if request.match_info.get("domain", self.config.domain) != self.config.domain:
            return spring_error(404, f"no domain {request.match_info['domain']!r}", path)
        if not path.startswith("/orchestration/"):
            return await handler(request)
        decision = self.faults.decide(time.monotonic() - self.started)
        self.stats[f"verdict_{decision.verdict.value}"] += 1
        if decision.verdict is Verdict.OUTAGE:
            return spring_error(503, "planned outage", path, retry_after=decision.retry_after_s)
        if decision.verdict is Verdict.RATE_LIMITED:
            return spring_error(
                429, "rate limit exceeded", path, retry_after=decision.retry_after_s
            )
        if decision.verdict is Verdict.ERROR:
            return spring_error(decision.status, "injected server error", path)
        await asyncio.sleep(decision.delay_s)
        if decision.verdict is Verdict.TIMEOUT:
            return spring_error(504, "the composition engine did not answer in time", path)
        return await handler(request)

    # ------------------------------------------------------------------ OTDS

    async def token(self, request: web.Request) -> web.Response:
        """Client-credentials grant, form-encoded; errors as OAuth2 (RFC 6749) bodies."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if request.match_info["tenant"] != self.config.tenant:
            return _oauth_error(404, "invalid_request", "unknown tenant")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(
                400, "unsupported_grant_type", "grant_type must be client_credentials"
            )
        secret = form.get("client_secret")
        if not (
            form.get("client_id") == self.config.client_id
            and secret is not None
            and secrets.compare_digest(secret, self.config.client_secret)
        ):
            self.stats["bad_credentials"] += 1
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + self.config.token_ttl_s
        self.stats["tokens_issued"] += 1
        return _json(
            {
                "access_token": token,
                "refresh_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": int(self.config.token_ttl_s),
            }
        )

    # ------------------------------------------------------------------ orchestration

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.read()
        document = self.runtime.ondemand(
            communication_id=request.headers.get("communicationId"),
            dsn=request.headers.get("driverDataSource"),
            body=body,
            now_ms=_now_ms(),
        )
        self.stats["ondemand_documents"] += 1
        if "application/pdf" in request.headers.get("Accept", ""):
            return web.Response(body=document.pdf, content_type="application/pdf")
        import base64

        return _json(
            {
                "status": "success",
                "data": [
                    {
                        "content": base64.b64encode(document.pdf).decode(),
                        "mimeType": "application/pdf",
                        "engineOutputContext": {
                            "queueName": "OnDemand",
                            "fileName": document.file_name,
                            "customerNumber": "1",
                        },
                    }
                ],
            }
        )

    async def submit_batch(self, request: web.Request) -> web.Response:
        body = await request.read()
        job = self.runtime.submit_batch(
            body,
            external_id=parse_external_id_header(request.headers.get("exstream-variable")),
            service=request.match_info["service"],
            now_ms=_now_ms(),
        )
        self.stats["jobs_accepted"] += 1
        self._spawn(self._run_job(job.id))
        return _json({"status": "success", "data": [{"jobId": job.id}]})

    async def find_jobs(self, request: web.Request) -> web.Response:
        filters = parse_filter(request.query.get("filter"))
        fetch_deleted = request.query.get("fetchDeleted", "false").lower() == "true"
        jobs = [j.as_json() for j in self.runtime.find(filters, fetch_deleted=fetch_deleted)]
        for j in jobs:
            j["domainId"] = self.config.domain
        q = request.query
        return _json(_page(jobs, _int(q, "offset", 0), _int(q, "count", 100)))

    async def get_job(self, request: web.Request) -> web.Response:
        job = self.runtime.job(request.match_info["job_id"]).as_json()
        job["domainId"] = self.config.domain
        return _json({"status": "success", "data": job})

    async def stop_job(self, request: web.Request) -> web.Response:
        self.runtime.stop(request.match_info["job_id"], now_ms=_now_ms())
        return web.Response(text="success", content_type="text/plain")

    async def delete_job(self, request: web.Request) -> web.Response:
        self.runtime.delete(request.match_info["job_id"])
        return _json({"status": "success", "message": "200", "details": "job deleted"})

    async def flow_instances(self, request: web.Request) -> web.Response:
        filters = parse_filter(request.query.get("filter"))
        jobs = self.runtime.find({k: v for k, v in filters.items() if k == "externalId"})
        if "jobId" in filters:
            jobs = [j for j in jobs if j.id == filters["jobId"]]
        q = request.query
        items = [j.instance_json() for j in jobs]
        return _json(_page(items, _int(q, "offset", 0), _int(q, "count", 100)))

    async def flow_steps(self, request: web.Request) -> web.Response:
        filters = parse_filter(request.query.get("filter"))
        jobs = self.runtime.find({})
        if "flowInstanceId" in filters:
            jobs = [j for j in jobs if j.instance_id == filters["flowInstanceId"]]
        if "externalId" in filters:
            jobs = [j for j in jobs if j.external_id == filters["externalId"]]
        types = filters.get("stepTypes")
        steps = [j.step_json() for j in jobs]
        if types is not None:
            steps = [s for s in steps if s["stepType"] in types.split(",")]
        q = request.query
        return _json(_page(steps, _int(q, "offset", 0), _int(q, "count", 100)))

    def _step_job(self, request: web.Request) -> Any:
        job = self.runtime.job_of_step(request.match_info["step_id"])
        if job is None or job.status == "deleted":
            raise RequestError(404, "no such flow step")
        if job.status not in ("complete", "error"):
            raise RequestError(409, f"the flow step is {job.status}: no delivery file yet")
        return job

    async def outputs(self, request: web.Request) -> web.Response:
        job = self._step_job(request)
        return _json(
            {"status": "success", "data": {"customers": [c.as_json() for c in job.customers]}}
        )

    async def customer_artifacts(self, request: web.Request) -> web.Response:
        job = self._step_job(request)
        wanted = request.match_info["customer_id"]
        runs = [c for c in job.customers if c.communication_id == wanted and c.document]
        if not runs:
            raise RequestError(404, "no output for that customer in this step")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for run in runs:
                assert run.document is not None
                archive.writestr(run.document.file_name, run.document.pdf)
        return web.Response(body=buffer.getvalue(), content_type="application/zip")

    async def _run_job(self, job_id: str) -> None:
        await asyncio.sleep(self.config.stage_delay_s)
        job = self.runtime.jobs.get(job_id)
        if job is None:
            return
        events: list[dict[str, Any]] = []
        for composed in self.runtime.run_job_steps(job, now_ms=_now_ms()):
            events += composed
            await asyncio.sleep(0)  # other requests are answered between customers
        await asyncio.sleep(self.config.stage_delay_s)
        self.events.enqueue(events)

    # ------------------------------------------------------------------ design

    async def resources(self, request: web.Request) -> web.Response:
        q = request.query
        types = {t for v in q.getall("filter.types", []) for t in v.split(",") if t}
        states = [s for v in q.getall("filter.states", []) for s in v.split(",") if s]
        latest_only = q.get("filter.latestVersion", "false").lower() == "true"
        items: list[Any] = []
        if not types or "exstrapplication" in types:
            items = [
                v.as_json(latest=latest)
                for v, latest in self.design.listing(states=states or None, latest_only=latest_only)
            ]
        return _json(_page(items, _int(q, "offset", 0), _int(q, "count", 100)))

    def _version(self, request: web.Request) -> Any:
        raw = request.query.get("version")
        try:
            number = int(raw) if raw is not None else None
        except ValueError:
            raise RequestError(400, "version must be an integer") from None
        version = self.design.get(request.match_info["resource_id"], number)
        if version is None:
            raise RequestError(404, "no such resource version")
        return version

    async def resource(self, request: web.Request) -> web.Response:
        version = self._version(request)
        latest = version.version == max(self.design.versions[version.resource_id])
        return _json({"status": "success", "data": version.as_json(latest=latest)})

    async def content(self, request: web.Request) -> web.Response:
        return _json(design_content(self._version(request).template))

    async def set_state(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"the body is not JSON: {exc}") from exc
        state = body.get("state") if isinstance(body, dict) else None
        version = self._version(request)
        try:
            self.design.set_state(
                version.resource_id, version.version, str(state), now_ms=_now_ms()
            )
        except ValueError as exc:
            raise RequestError(400, str(exc)) from exc
        latest = version.version == max(self.design.versions[version.resource_id])
        return _json({"status": "success", "data": version.as_json(latest=latest)})

    async def links(self, request: web.Request) -> web.Response:
        q = request.query
        subject = q.get("linkSubjectId", "")
        if not subject:
            raise RequestError(400, "linkSubjectId is required")
        types = {t for v in q.getall("filter.types", []) for t in v.split(",") if t}
        versions = self.design.versions.get(subject)
        links: list[dict[str, Any]] = []
        if versions and (not types or "exstrcommunicationset" in types):
            number = _int(q, "linkSubjectVersion", max(versions))
            links.append(
                {
                    "linkSubjectId": subject,
                    "subjectVersion": number,
                    "linkObjectId": communication_set_id(subject),
                    "typeId": "exstrcommunicationset",
                }
            )
        return _json(_page(links, 0, 100))

    async def manifest(self, request: web.Request) -> web.Response:
        wanted = request.match_info["set_id"]
        owner = next(
            (rid for rid in self.design.versions if communication_set_id(rid) == wanted), None
        )
        if owner is None:
            raise RequestError(404, "no such communication set")
        return _json(
            {
                "applicationName": owner,
                "dsnlist": [
                    {
                        "id": f"{owner}-driver",
                        "name": "Customer",
                        "prodDsn": DRIVER_DATA_SOURCE,
                        "resourceId": owner,
                        "type": "driver",
                    }
                ],
                "queueList": [
                    {"name": "PDF", "driver": "Customer", "prodFile": "output.pdf", "use": "print"}
                ],
                "metadata": [
                    {"name": "AirCommunicationId", "type": "string", "text": "communicationId"},
                    {"name": "CustomerId", "type": "string", "text": "customerId"},
                ],
            }
        )

    # ------------------------------------------------------------------ emulator-only

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def ledger(self, request: web.Request) -> web.Response:
        summary = self.runtime.ledger.summary()
        if request.query.get("entries") == "1":
            summary["entries"] = [asdict(e) for e in self.runtime.ledger.entries]
        summary["twice"] = self.runtime.ledger.twice()[:100]
        summary["ondemand_documents"] = self.runtime.ondemand_documents
        return _json(summary)

    async def get_stats(self, request: web.Request) -> web.Response:
        return _json({**self.stats, "events_queued": self.events.queued()})

    async def set_faults(self, request: web.Request) -> web.Response:
        """Replace fault settings at run time; ``outages`` count from *now* when
        ``"relative": true``. Used by fault tests to start an outage mid-run."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError(400, "the body must be a JSON object")
        relative = bool(body.pop("relative", False))
        if "outages" in body:
            offset = time.monotonic() - self.started if relative else 0.0
            body["outages"] = tuple(
                (float(a) + offset, float(b) + offset) for a, b in body["outages"]
            )
        try:
            config = replace(self.config.faults, **body)
        except (TypeError, ValueError) as exc:
            raise RequestError(400, f"invalid faults: {exc}") from exc
        self.config.faults = config
        self.faults.config = config
        return _json(asdict(config))

    async def drain_events(self) -> None:
        """Wait until every queued event was delivered or abandoned (tests, demo)."""
        await self.events.drain()


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json({"error": error, "error_description": description}, status=status)
