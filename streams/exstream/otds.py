"""OTDS OAuth2 tokens for the client-credentials grant.

``POST {otds}/otdsws/otdstenant/{tenant}/oauth2/token`` (self-hosted) or
``POST {otds}/otdstenant/{tenant}/oauth2/token`` (OpenText cloud), form-encoded ``grant_type``,
``client_id``, ``client_secret``, ``scope``; the answer carries ``access_token``, ``token_type``,
``expires_in`` (seconds) and possibly ``refresh_token`` (unused: a client-credentials client asks
again).

Guarantees: one token request at a time (concurrent callers share it); a token is reused until
``margin_s`` before it expires; :meth:`TokenProvider.token` with ``force=True`` replaces it (the
transport does that once after a 401). The secret and the tokens are never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import orjson

from streams.exstream import paths
from streams.exstream.errors import (
    ExstreamAuthError,
    ExstreamError,
    ExstreamTimeout,
    ExstreamUnavailable,
    error_for,
)
from streams.exstream.settings import ExstreamSettings


class TokenProvider:
    def __init__(
        self,
        settings: ExstreamSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0
        """Tokens obtained so far (a metric)."""

    @property
    def url(self) -> str:
        s = self._settings
        return s.otds_base + paths.otds_token(s.otds_style, s.tenant)

    async def token(self, *, force: bool = False, stale: str | None = None) -> str:
        """A valid access token. ``force`` asks for a new one unless another caller already
        replaced ``stale`` (the token that was refused) meanwhile."""
        async with self._lock:
            fresh = self._token is not None and self._clock() < self._expires
            if fresh and not (force and self._token == stale):
                assert self._token is not None
                return self._token
            self._token, lifetime = await self._request()
            # never cache for less than zero, even when the server's lifetime is shorter than
            # the margin: such a token is used once and then asked again
            margin = min(self._settings.token_margin_s, lifetime / 2)
            self._expires = self._clock() + lifetime - margin
            self.refreshes += 1
            return self._token

    async def _request(self) -> tuple[str, float]:
        s = self._settings
        form = {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": s.secret,
            "scope": s.scope,
        }
        try:
            async with self._session.post(
                self.url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=s.timeout_s),
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    error = error_for(response.status, raw, response.headers, what="OTDS token")
                    if response.status in (400, 401, 403):
                        raise ExstreamAuthError(
                            f"OTDS refused the client credentials ({response.status}); check "
                            "EXSTREAM_CLIENT_ID, EXSTREAM_CLIENT_SECRET, EXSTREAM_TENANT and "
                            "EXSTREAM_SCOPE",
                            status=response.status,
                        )
                    raise error
        except TimeoutError as exc:
            raise ExstreamTimeout("OTDS did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise ExstreamUnavailable(f"cannot reach OTDS: {type(exc).__name__}") from exc
        try:
            body = orjson.loads(raw)
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 900))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ExstreamError("OTDS answered a token response without access_token") from exc
        return token, max(0.0, lifetime)
