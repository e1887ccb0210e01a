""":class:`ExstreamClient`: settings, one HTTP session, OTDS tokens, Orchestration and Design."""

from __future__ import annotations

from types import TracebackType

import aiohttp

from streams.exstream.design import Design
from streams.exstream.orchestration import Orchestration
from streams.exstream.otds import TokenProvider
from streams.exstream.settings import ExstreamSettings
from streams.exstream.transport import Transport


class ExstreamClient:
    """The project's one client of Exstream. Use ``async with ExstreamClient(settings)``, or pass
    a session the caller closes."""

    def __init__(
        self,
        settings: ExstreamSettings,
        session: aiohttp.ClientSession | None = None,
        *,
        max_connections: int = 64,
    ) -> None:
        self.settings = settings
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections)
        )
        self.tokens = TokenProvider(settings, self.session)
        self.transport = Transport(self.session, self.tokens, timeout_s=settings.timeout_s)
        self.orchestration = Orchestration(settings, self.transport)
        self.design = Design(settings, self.transport)

    async def close(self) -> None:
        if self._own_session:
            await self.session.close()

    async def __aenter__(self) -> ExstreamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
