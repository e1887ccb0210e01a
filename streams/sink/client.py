"""Exstream's batch API as the sink uses it: tokens, job submission, lookup by correlation id.

Every answer is classified once, here, into what the sink should do next:

- :class:`Accepted` — 202 (items new or already known are listed per item), or 409 when every
  item was already accepted earlier (a replay after a crash): the work is with Exstream.
- :class:`Retry` — 429, 5xx, timeouts, connection errors: nothing was done, try again later
  (``retry_after_s`` from the server when it said so; ``pushback`` when it asked us to slow down).
- :class:`Rejected` — 400, 413, 422 and other 4xx: retrying cannot help; the commands are
  dead-lettered with the server's problem detail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass(frozen=True, slots=True)
class Accepted:
    job_id: str
    items: Mapping[str, str]
    """communication id -> ``accepted`` | ``duplicate``."""
    duplicate_jobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    retry_after_s: float | None = None
    pushback: bool = False
    throttled: bool = False
    """429: Exstream is up and asks the client to slow down."""
    ambiguous: bool = False
    """The request may have reached Exstream (connection dropped, client timeout): look the
    correlation id up before submitting again."""


@dataclass(frozen=True, slots=True)
class Rejected:
    status: int
    detail: str


Outcome = Accepted | Retry | Rejected


class ExstreamClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self.token_refreshes = 0

    async def _bearer(self, *, force: bool = False) -> str:
        async with self._token_lock:
            if force or self._token is None or time.monotonic() > self._token_expires - 30:
                async with self._session.post(
                    f"{self._base}/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._secret,
                    },
                    timeout=self._timeout,
                ) as response:
                    if response.status != 200:
                        raise TokenError(response.status, await response.text())
                    body = await response.json()
                self._token = str(body["access_token"])
                self._token_expires = time.monotonic() + float(body.get("expires_in", 300))
                self.token_refreshes += 1
            return self._token

    async def _call(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any, Mapping[str, str]]:
        for attempt in (1, 2):
            token = await self._bearer(force=attempt == 2)
            async with self._session.request(
                method,
                f"{self._base}{path}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
                **kwargs,
            ) as response:
                raw = await response.read()
                if response.status == 401 and attempt == 1:
                    continue  # token expired or revoked: refresh once
                try:
                    body = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    body = None
                return response.status, body, response.headers
        raise AssertionError("unreachable")

    async def submit(self, correlation_id: str, items: Sequence[Mapping[str, Any]]) -> Outcome:
        body = orjson.dumps({"correlationId": correlation_id, "communications": list(items)})
        try:
            status, answer, headers = await self._call("POST", "/v1/jobs", data=body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Retry(type(exc).__name__, pushback=isinstance(exc, TimeoutError), ambiguous=True)
        except TokenError as exc:
            return Retry(f"token endpoint answered {exc.status}", pushback=exc.status >= 500)
        return classify(status, answer, headers)

    async def find(self, correlation_id: str) -> Accepted | None:
        """The job an earlier submission of ``correlation_id`` created, if Exstream has one."""
        status, answer, _ = await self._call(
            "GET", "/v1/jobs", params={"correlationId": correlation_id}
        )
        if status != 200 or not isinstance(answer, dict) or not answer.get("jobs"):
            return None
        job = answer["jobs"][-1]
        return Accepted(
            job_id=str(job["jobId"]),
            items={str(i["communicationId"]): str(i["status"]) for i in job.get("items", [])},
        )


class TokenError(RuntimeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"token endpoint answered {status}")
        self.status = status


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(status: int, body: Any, headers: Mapping[str, str]) -> Outcome:
    """What one answer to ``POST /v1/jobs`` means for the sink (pure)."""
    detail = body.get("detail", "") if isinstance(body, dict) else ""
    if status == 202 and isinstance(body, dict) and "jobId" in body:
        return Accepted(job_id=str(body["jobId"]), items={})
    if status == 409 and isinstance(body, dict) and body.get("jobs"):
        jobs = tuple(str(j) for j in body["jobs"])
        return Accepted(job_id=jobs[-1], items={}, duplicate_jobs=jobs)
    if status == 429:
        return Retry("HTTP 429", _retry_after(headers), pushback=True, throttled=True)
    if status == 503:
        return Retry("HTTP 503", _retry_after(headers), pushback=True)
    if status == 504 or status == 408:
        return Retry(f"HTTP {status}", _retry_after(headers), pushback=True)
    if status >= 500:
        return Retry(f"HTTP {status}", _retry_after(headers))
    if status == 401 or status == 403:
        return Retry(f"HTTP {status}: {detail}")
    return Rejected(status, detail or f"HTTP {status}")
