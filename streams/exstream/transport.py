"""One authenticated request to an Exstream service, and its answer or a typed error.

Every call sends ``Authorization: Bearer <OTDS token>``. A 401 is answered once by a new token
and the same request again (a token revoked or expired early); a second 401 is an
:class:`~streams.exstream.errors.ExstreamAuthError`. Non-2xx answers become the typed errors of
:mod:`streams.exstream.errors`; a client timeout or a connection dropped after the request was
sent is an ambiguous :class:`~streams.exstream.errors.ExstreamTimeout`; a refused connection an
:class:`~streams.exstream.errors.ExstreamUnavailable` (nothing was sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from streams.exstream.errors import (
    ExstreamError,
    ExstreamTimeout,
    ExstreamUnavailable,
    error_for,
)
from streams.exstream.otds import TokenProvider


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self, *, what: str) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ExstreamError(f"Exstream answered {what} with a body that is not JSON") from exc


class Transport:
    def __init__(
        self, session: aiohttp.ClientSession, tokens: TokenProvider, *, timeout_s: float
    ) -> None:
        self.session = session
        self.tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        time_limit: aiohttp.ClientTimeout | None = None,
    ) -> Answer:
        """The 2xx answer of one call, or the typed error (see the module docstring)."""
        refused: str | None = None
        for attempt in (1, 2):
            token = await self.tokens.token(force=attempt == 2, stale=refused)
            all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
            try:
                async with self.session.request(
                    method,
                    url,
                    headers=all_headers,
                    params=params,
                    data=data,
                    timeout=time_limit or self._timeout,
                ) as response:
                    raw = await response.read()
                    if response.status == 401 and attempt == 1:
                        refused = token
                        continue
                    if not 200 <= response.status < 300:
                        raise error_for(response.status, raw, response.headers, what=what)
                    return Answer(response.status, raw, dict(response.headers))
            except TimeoutError as exc:
                raise ExstreamTimeout(f"Exstream did not answer {what} in time") from exc
            except aiohttp.ClientConnectorError as exc:
                raise ExstreamUnavailable(
                    f"cannot reach Exstream for {what}: {type(exc).__name__}"
                ) from exc
            except aiohttp.ClientError as exc:
                # the request may have been sent: the connection broke before the answer
                raise ExstreamTimeout(
                    f"connection lost during {what}: {type(exc).__name__}"
                ) from exc
        raise AssertionError("unreachable")
