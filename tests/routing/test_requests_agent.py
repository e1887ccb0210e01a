"""The document-request agent waits for the templates published before each request, and leaves
a request unprocessed when the wait says so (a rebalance came meanwhile)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from streams.codec import Codecs
from streams.routing.requests import RequestCounters, RequestsContext, install_requests
from topology import names
from topology.model import load_topology

pytestmark = pytest.mark.unit


class _App:
    def __init__(self) -> None:
        self.agents: list[Callable[[Any], Awaitable[None]]] = []

    def agent(self, topic: Any) -> Callable[[Any], Any]:
        def install(fn: Callable[[Any], Awaitable[None]]) -> Any:
            self.agents.append(fn)
            return fn

        return install


class _Guard:
    def __init__(self) -> None:
        self.processed: list[int] = []

    async def process(self, event: Any, handle: Callable[[Any], Awaitable[None]]) -> None:
        self.processed.append(event.message.offset)


class _Stream:
    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets

    async def events(self) -> AsyncIterator[SimpleNamespace]:
        for offset in self.offsets:
            yield SimpleNamespace(message=SimpleNamespace(offset=offset))


async def _unused(*args: Any) -> None:
    raise AssertionError("not called: the guard fake does not run the handler")


def _agent(
    admitted: Callable[[Any], Awaitable[bool]] | None,
) -> tuple[Callable[[Any], Awaitable[None]], _Guard, list[str]]:
    app, guard, order = _App(), _Guard(), []
    topology = load_topology("local")

    async def ready() -> None:
        order.append("reference ready")

    install_requests(
        RequestsContext(
            app=app,
            guard=guard,
            requests_topic=object(),
            source_topic=topology.name(names.DOCUMENT_REQUESTS),
            commands_topic=object(),
            communications={},
            register=_unused,
            send_audit=_unused,
            dead_letter=_unused,
            key_mismatch=lambda key, customer: "",
            reference_ready=ready,
            templates_by_id=dict,
            counters=RequestCounters(),
            codecs=Codecs(),
            topology=topology,
            registry_wait_s=1.0,
            admitted=admitted,
        )
    )
    (agent,) = app.agents
    return agent, guard, order


async def test_each_request_waits_for_the_templates_before_it_is_processed() -> None:
    waited: list[int] = []

    async def admitted(msg: Any) -> bool:
        waited.append(msg.offset)
        return msg.offset != 2  # a rebalance came while request 2 waited

    agent, guard, order = _agent(admitted)
    await agent(_Stream([1, 2, 3]))
    assert order == ["reference ready"]
    assert waited == [1, 2, 3]
    assert guard.processed == [1, 3]


async def test_without_a_wait_every_request_is_processed() -> None:
    agent, guard, _ = _agent(None)
    await agent(_Stream([1, 2]))
    assert guard.processed == [1, 2]
