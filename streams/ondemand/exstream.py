"""Exstream's synchronous composition as the on-demand service uses it.

``compose`` posts to ``/v1/communications/ondemand`` and returns the PDF with its headers;
``fetch`` reads an existing document (``GET /v1/documents/{id}``, for signed links whose bytes
left the cache). OAuth2 client-credentials tokens are cached and refreshed (once, on a 401).
Every failure is raised as one :class:`ExstreamFailure` whose ``kind`` says what the portal is
told: ``unavailable`` (429, 503, connection refused: 503 with ``Retry-After``), ``timeout``
(504 from Exstream; the caller's own deadline is enforced by the server), ``error`` (other 5xx,
token failures: 502), ``not_found`` (404) and ``rejected`` (other 4xx: 502, the local template
view and Exstream disagree).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

DEFAULT_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class Rendered:
    document_id: str
    template_id: str
    template_version: int
    produced_at: int
    pdf: bytes


class ExstreamFailure(Exception):
    def __init__(
        self, kind: str, detail: str, *, status: int | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.retry_after_s = retry_after_s


def _retry_after(value: str | None) -> int:
    try:
        return max(1, int(float(value))) if value else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


class OnDemandClient:
    def __init__(
        self, base_url: str, client_id: str, client_secret: str, session: aiohttp.ClientSession
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._session = session
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    async def _bearer(self, *, force: bool = False) -> str:
        async with self._token_lock:
            if force or self._token is None or time.monotonic() > self._token_expires - 30:
                try:
                    async with self._session.post(
                        f"{self._base}/oauth2/token",
                        data={
                            "grant_type": "client_credentials",
                            "client_id": self._client_id,
                            "client_secret": self._secret,
                        },
                    ) as response:
                        if response.status in (429, 503):
                            raise ExstreamFailure(
                                "unavailable",
                                f"token endpoint answered {response.status}",
                                status=response.status,
                                retry_after_s=_retry_after(response.headers.get("Retry-After")),
                            )
                        if response.status != 200:
                            raise ExstreamFailure(
                                "error",
                                f"token endpoint answered {response.status}",
                                status=response.status,
                            )
                        body = await response.json()
                except aiohttp.ClientError as exc:
                    raise ExstreamFailure(
                        "unavailable",
                        f"cannot reach Exstream: {type(exc).__name__}",
                        retry_after_s=DEFAULT_RETRY_AFTER_S,
                    ) from exc
                self._token = str(body["access_token"])
                self._token_expires = time.monotonic() + float(body.get("expires_in", 300))
            return self._token

    async def _call(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, bytes, dict[str, str]]:
        for attempt in (1, 2):
            token = await self._bearer(force=attempt == 2)
            headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
            try:
                async with self._session.request(
                    method, f"{self._base}{path}", headers=headers, **kwargs
                ) as response:
                    raw = await response.read()
                    if response.status == 401 and attempt == 1:
                        continue
                    return response.status, raw, dict(response.headers)
            except aiohttp.ClientError as exc:
                raise ExstreamFailure(
                    "unavailable",
                    f"cannot reach Exstream: {type(exc).__name__}",
                    retry_after_s=DEFAULT_RETRY_AFTER_S,
                ) from exc
        raise AssertionError("unreachable")

    async def compose(self, body: dict[str, object]) -> Rendered:
        status, raw, headers = await self._call(
            "POST",
            "/v1/communications/ondemand",
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json", "Accept": "application/pdf"},
        )
        return _rendered(status, raw, headers)

    async def fetch(self, document_id: str) -> Rendered:
        status, raw, headers = await self._call("GET", f"/v1/documents/{document_id}")
        return _rendered(status, raw, headers)


def _detail(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    return str(body.get("detail", "")) if isinstance(body, dict) else ""


def _rendered(status: int, raw: bytes, headers: dict[str, str]) -> Rendered:
    if status == 200:
        try:
            return Rendered(
                document_id=headers["X-Document-Id"],
                template_id=headers["X-Template-Id"],
                template_version=int(headers["X-Template-Version"]),
                produced_at=int(headers["X-Produced-At"]),
                pdf=raw,
            )
        except (KeyError, ValueError) as exc:
            raise ExstreamFailure("error", "Exstream's answer lacks document headers") from exc
    if status in (429, 503):
        raise ExstreamFailure(
            "unavailable",
            f"Exstream answered {status}",
            status=status,
            retry_after_s=_retry_after(headers.get("Retry-After")),
        )
    if status == 504:
        raise ExstreamFailure("timeout", "Exstream did not compose in time", status=status)
    if status == 404:
        raise ExstreamFailure("not_found", "Exstream has no such document", status=status)
    if status >= 500:
        raise ExstreamFailure("error", f"Exstream answered {status}", status=status)
    raise ExstreamFailure(
        "rejected", f"Exstream refused the composition ({status}): {_detail(raw)}", status=status
    )
