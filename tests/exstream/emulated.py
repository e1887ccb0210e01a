"""An in-process emulator on loopback and clients of it (shared by the Exstream-boundary tests)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.domain.records import TemplateVersion
from streams.emulator.design import seed
from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
from streams.exstream.client import ExstreamClient
from streams.exstream.settings import ExstreamSettings
from streams.signing import SIGNATURE_HEADER, verify
from streams.simulator.generator import template_catalogue

SECRET = "test-client-secret"
EVENTS_SECRET = b"test-events-secret"


@dataclass
class EventSink:
    """A subscriber of event batches that checks the sender and records every event."""

    events: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    refused: int = 0
    fail_first: int = 0
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def until(self, count: int, timeout_s: float = 10.0) -> None:
        async def wait() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.events) >= count)

        await asyncio.wait_for(wait(), timeout_s)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(
                [EVENTS_SECRET], request.headers.get(SIGNATURE_HEADER), body, now=int(time.time())
            )
        except ValueError:
            self.refused += 1
            return web.Response(status=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        batch = orjson.loads(body)
        assert isinstance(batch, list)
        async with self.arrived:
            self.batches += 1
            self.events.extend(batch)
            self.arrived.notify_all()
        return web.Response(status=200)


@dataclass
class Emulated:
    emulator: Emulator
    base: str
    sink: EventSink

    def settings(self, **overrides: Any) -> ExstreamSettings:
        values: dict[str, Any] = {
            "url": self.base,
            "client_secret": SECRET,
            "client_id": "air",
            "tenant": "air",
            "domain": "air",
            "timeout_s": 5.0,
        }
        values.update(overrides)
        return ExstreamSettings(**values)

    def client(self, **overrides: Any) -> ExstreamClient:
        return ExstreamClient(self.settings(**overrides))

    @property
    def runtime(self) -> Runtime:
        return self.emulator.runtime


Factory = Callable[..., Any]


async def emulated(
    *,
    templates: list[TemplateVersion] | None = None,
    faults: FaultConfig | None = None,
    outcomes: Outcomes | None = None,
    token_ttl_s: float = 900.0,
    with_events: bool = True,
) -> AsyncIterator[Emulated]:
    """Start an emulator (and an event subscriber) on loopback ports; stop both after."""
    sink = EventSink()
    sink_app = web.Application()
    sink_app.router.add_post("/events", sink.handle)
    sink_server = TestServer(sink_app, host="127.0.0.1")
    await sink_server.start_server()
    config = EmulatorConfig(
        client_id="air",
        client_secret=SECRET,
        events_url=str(sink_server.make_url("/events")) if with_events else None,
        events_secret=EVENTS_SECRET,
        events_linger_s=0.01,
        token_ttl_s=token_ttl_s,
        stage_delay_s=0.0,
        faults=faults or FaultConfig(latency_median_ms=0.0, latency_p99_ms=0.0),
    )
    runtime = Runtime(
        design=seed(template_catalogue() if templates is None else templates),
        outcomes=outcomes or Outcomes(),
        rng=random.Random(7),
    )
    emulator = Emulator(config, runtime, seed=7)
    server = TestServer(emulator.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield Emulated(emulator, str(server.make_url("")).rstrip("/"), sink)
    finally:
        await server.close()
        await sink_server.close()
