"""The emulator's HTTP surface (aiohttp): a thin layer over :mod:`streams.emulator.state`.

Routes (all under ``/v1`` need ``Authorization: Bearer <token>`` from ``POST /oauth2/token``):

- ``POST /oauth2/token``: client-credentials grant (form or JSON body, or HTTP Basic);
- ``POST /v1/communications/ondemand``: render now; PDF bytes, or JSON with base64 when the
  client sends ``Accept: application/json``;
- ``POST /v1/jobs``: accept a batch (202), composed and dispatched in the background;
- ``GET /v1/jobs/{id}``, ``GET /v1/jobs?correlationId=...``, ``DELETE /v1/jobs/{id}``;
- ``GET /v1/documents/{id}``: the PDF, template id/version and production time in headers;
- ``GET /healthz``; ``GET /_emulator/ledger``, ``GET /_emulator/stats``, ``PUT /_emulator/faults``
  (test and operator introspection, not part of Exstream's API).

Every error is ``application/problem+json``. Faults (:mod:`streams.emulator.faults`) are decided
before any work is done, so a refused or timed-out call changed nothing.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from streams.emulator.faults import FaultConfig, FaultInjector, Verdict
from streams.emulator.state import Callback, Job, JobStatus, RequestError, World
from streams.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
CLIENT_CLOSED = 499
"""The status logged (never sent) for a call whose client hung up first (nginx's convention)."""


@dataclass(slots=True)
class EmulatorConfig:
    client_id: str
    client_secret: str
    webhook_url: str | None = None
    webhook_secret: bytes = b""
    token_ttl_s: float = 3600.0
    stage_delay_s: float = 0.01
    """Pause between a job's stages (accepted -> composing -> composed -> dispatched)."""
    callback_max_attempts: int = 12
    callback_concurrency: int = 8
    faults: FaultConfig = field(default_factory=FaultConfig)
    max_body_bytes: int = 8 * 1024 * 1024


def problem(
    status: int, title: str, detail: str, *, retry_after: int | None = None, **extra: Any
) -> web.Response:
    """An RFC 9457 problem response (with ``Retry-After`` when the client should come back)."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type=PROBLEM, headers=headers
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


class Emulator:
    """One emulator instance: its world, its faults, its callback dispatcher."""

    def __init__(self, config: EmulatorConfig, world: World, *, seed: int = 0) -> None:
        self.config = config
        self.world = world
        self.faults = FaultInjector(config.faults, random.Random(seed))
        self.started = time.monotonic()
        self.tokens: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        # one queue per dispatcher, chosen by communication id: each communication's callbacks
        # leave in order (reordering happens only when injected)
        self._callbacks: list[asyncio.Queue[Callback]] = [
            asyncio.Queue() for _ in range(max(1, config.callback_concurrency))
        ]
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors, self._auth_and_faults],
            client_max_size=self.config.max_body_bytes,
        )
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_post("/v1/communications/ondemand", self.ondemand)
        app.router.add_post("/v1/jobs", self.submit)
        app.router.add_get("/v1/jobs", self.find_jobs)
        app.router.add_get("/v1/jobs/{job_id}", self.get_job)
        app.router.add_delete("/v1/jobs/{job_id}", self.cancel_job)
        app.router.add_get("/v1/documents/{document_id}", self.document)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/_emulator/ledger", self.ledger)
        app.router.add_get("/_emulator/stats", self.get_stats)
        app.router.add_put("/_emulator/faults", self.set_faults)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self.started = time.monotonic()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        for queue in self._callbacks:
            self._spawn(self._dispatch_callbacks(queue))

    async def _stop(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ middlewares

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionResetError:
            if request.transport is not None:  # the client is still there: a real error
                raise
            # The client hung up (often during injected latency) and the handler then read the
            # body of a closed connection: expected, not an error. Nobody will read the answer.
            self.stats["client_disconnected"] += 1
            log.debug("client went away before the answer to %s %s", request.method, request.path)
            return problem(CLIENT_CLOSED, "Client closed request", "the client disconnected")
        except RequestError as exc:
            return problem(exc.status, exc.title, exc.detail, **exc.extra)
        except web.HTTPRequestEntityTooLarge:
            return problem(413, "Payload too large", "the request body is too large")
        except web.HTTPException as exc:
            if exc.status >= 400:
                return problem(exc.status, exc.reason, exc.text or exc.reason)
            raise

    @web.middleware
    async def _auth_and_faults(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        expires = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if expires is None:
            self.stats["unauthorized"] += 1
            return problem(401, "Unauthorized", "a valid bearer token is required")
        if expires < time.monotonic():
            self.tokens.pop(token, None)
            self.stats["token_expired"] += 1
            return problem(401, "Unauthorized", "the bearer token has expired")
        decision = self.faults.decide(time.monotonic() - self.started)
        self.stats[f"verdict_{decision.verdict.value}"] += 1
        if decision.verdict is Verdict.OUTAGE:
            return problem(
                503, "Service unavailable", "planned outage", retry_after=decision.retry_after_s
            )
        if decision.verdict is Verdict.RATE_LIMITED:
            return problem(
                429, "Too many requests", "rate limit exceeded", retry_after=decision.retry_after_s
            )
        if decision.verdict is Verdict.ERROR:
            return problem(decision.status, "Server error", "injected server error")
        await asyncio.sleep(decision.delay_s)
        if decision.verdict is Verdict.TIMEOUT:
            return problem(504, "Gateway timeout", "composition engine did not answer in time")
        return await handler(request)

    # ------------------------------------------------------------------ handlers

    async def token(self, request: web.Request) -> web.Response:
        form: dict[str, str] = {}
        if request.content_type == "application/json":
            body = await _read_json(request)
            if isinstance(body, dict):
                form = {k: v for k, v in body.items() if isinstance(v, str)}
        else:
            form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:], validate=True).decode()
            except ValueError:
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            return problem(400, "Unsupported grant", "grant_type must be client_credentials")
        if not (
            client_id == self.config.client_id
            and client_secret is not None
            and secrets.compare_digest(client_secret, self.config.client_secret)
        ):
            self.stats["bad_credentials"] += 1
            return problem(401, "Invalid client", "unknown client or wrong secret")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.monotonic() + self.config.token_ttl_s
        self.stats["tokens_issued"] += 1
        return _json(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(self.config.token_ttl_s),
            }
        )

    async def ondemand(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        document = self.world.compose_ondemand(body, now_ms=_now_ms())
        self.stats["ondemand_documents"] += 1
        headers = _document_headers(
            document.document_id,
            document.template_id,
            document.template_version,
            document.produced_at,
        )
        if "application/json" in request.headers.get("Accept", ""):
            return web.Response(
                body=orjson.dumps(
                    {
                        "documentId": document.document_id,
                        "templateId": document.template_id,
                        "templateVersion": document.template_version,
                        "language": document.language,
                        "producedAt": document.produced_at,
                        "contentType": "application/pdf",
                        "content": base64.b64encode(document.pdf).decode(),
                    }
                ),
                content_type="application/json",
                headers=headers,
            )
        return web.Response(body=document.pdf, content_type="application/pdf", headers=headers)

    async def submit(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        job = self.world.submit(body, now_ms=_now_ms())
        self.stats["jobs_accepted"] += 1
        self._spawn(self._run_job(job))
        return _json(
            {"jobId": job.job_id, "status": job.status.value, "links": job.as_json()["links"]},
            status=202,
        )

    async def find_jobs(self, request: web.Request) -> web.Response:
        correlation = request.query.get("correlationId")
        if not correlation:
            return problem(400, "Invalid query", "correlationId is required")
        jobs = [
            self.world.jobs[j].as_json() for j in self.world.by_correlation.get(correlation, [])
        ]
        return _json({"jobs": jobs})

    async def get_job(self, request: web.Request) -> web.Response:
        return _json(self.world.job(request.match_info["job_id"]).as_json())

    async def cancel_job(self, request: web.Request) -> web.Response:
        return _json(self.world.cancel(request.match_info["job_id"]).as_json())

    async def document(self, request: web.Request) -> web.Response:
        document = self.world.documents.get(request.match_info["document_id"])
        if document is None:
            return problem(404, "Not found", "no such document")
        headers = _document_headers(
            document.document_id,
            document.template_id,
            document.template_version,
            document.produced_at,
        )
        return web.Response(body=document.pdf, content_type="application/pdf", headers=headers)

    async def health(self, request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def ledger(self, request: web.Request) -> web.Response:
        summary = self.world.ledger.summary()
        if request.query.get("entries") == "1":
            summary["entries"] = [asdict(e) for e in self.world.ledger.entries]
        summary["ondemand_documents"] = self.world.ondemand_documents
        return _json(summary)

    async def get_stats(self, request: web.Request) -> web.Response:
        queued = sum(q.qsize() for q in self._callbacks)
        return _json({**self.stats, "callbacks_queued": queued})

    async def set_faults(self, request: web.Request) -> web.Response:
        """Replace fault settings at run time; ``outages`` count from *now* when
        ``"relative": true``. Used by fault tests to start an outage mid-run."""
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise RequestError(400, "Invalid payload", "the body must be a JSON object")
        relative = bool(body.pop("relative", False))
        if "outages" in body:
            offset = time.monotonic() - self.started if relative else 0.0
            body["outages"] = tuple(
                (float(a) + offset, float(b) + offset) for a, b in body["outages"]
            )
        try:
            config = replace(self.config.faults, **body)
        except (TypeError, ValueError) as exc:
            raise RequestError(400, "Invalid faults", str(exc)) from exc
        self.config.faults = config
        self.faults.config = config
        return _json(asdict(config))

    # ------------------------------------------------------------------ background work

    async def _run_job(self, job: Job) -> None:
        delay = self.config.stage_delay_s
        await asyncio.sleep(delay)
        if job.status is JobStatus.CANCELLED:
            return
        job.status = JobStatus.COMPOSING
        callbacks: list[list[Callback]] = []
        for item in job.items:
            if item.status == "accepted":
                callbacks.append(self.world.compose(job, item, now_ms=_now_ms()))
            await asyncio.sleep(0)
        job.status = JobStatus.COMPOSED
        await asyncio.sleep(delay)
        job.status = JobStatus.DISPATCHED
        for events in callbacks:
            self._enqueue(events)
        await asyncio.sleep(delay)
        composed = [i for i in job.items if i.status not in ("duplicate", "cancelled")]
        failed = all(i.status == "failed" for i in composed) and composed
        job.status = JobStatus.FAILED if failed else JobStatus.COMPLETED

    def _enqueue(self, events: list[Callback]) -> None:
        ordered = list(events)
        if len(ordered) > 2 and self.faults.swap_next():
            i = self.faults.rng.randrange(1, len(ordered) - 1)
            ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
            self.stats["callbacks_reordered"] += 1
        for event in ordered:
            queue = self._callbacks[hash(event.payload["communicationId"]) % len(self._callbacks)]
            for _ in range(self.faults.callback_copies()):
                queue.put_nowait(event)
            self.stats["callbacks_enqueued"] += 1

    async def _dispatch_callbacks(self, queue: asyncio.Queue[Callback]) -> None:
        while True:
            event = await queue.get()
            try:
                await self._deliver(event)
            finally:
                queue.task_done()

    async def _deliver(self, event: Callback) -> None:
        url = self.config.webhook_url
        if url is None or self._session is None:
            self.stats["callbacks_unsubscribed"] += 1
            return
        body = orjson.dumps(event.payload)
        backoff = 0.05
        for attempt in range(1, self.config.callback_max_attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self.config.webhook_secret, body, int(time.time())),
                EVENT_ID_HEADER: event.event_id,
            }
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.stats["callbacks_delivered"] += 1
                        return
                    self.stats[f"callback_status_{response.status}"] += 1
            except (TimeoutError, aiohttp.ClientError):
                self.stats["callback_errors"] += 1
            if attempt < self.config.callback_max_attempts:
                await asyncio.sleep(backoff * (0.5 + self.faults.rng.random()))
                backoff = min(backoff * 2, 5.0)
        self.stats["callbacks_abandoned"] += 1
        log.warning(
            "callback %s abandoned after %d attempts",
            event.event_id,
            self.config.callback_max_attempts,
        )

    async def drain_callbacks(self) -> None:
        """Wait until every queued callback was delivered or abandoned (tests, demo)."""
        for queue in self._callbacks:
            await queue.join()


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, "Invalid payload", f"the body is not JSON: {exc}") from exc


def _document_headers(
    document_id: str, template_id: str, version: int, produced_at: int
) -> dict[str, str]:
    return {
        "Content-Disposition": f'inline; filename="{document_id}.pdf"',
        "X-Document-Id": document_id,
        "X-Template-Id": template_id,
        "X-Template-Version": str(version),
        "X-Produced-At": str(produced_at),
    }


def _now_ms() -> int:
    return int(time.time() * 1000)
