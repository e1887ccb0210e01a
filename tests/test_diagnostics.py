"""The services' SIGUSR1 task dump: where each task waits, and never a local variable."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Generator
from typing import Any

import pytest

from streams.diagnostics import dump_tasks, format_tasks, install_task_dump

pytestmark = pytest.mark.unit

ADDRESS = "alice.martin@example.com"


async def wait_for_commit(gate: asyncio.Event) -> None:
    customer_email = ADDRESS  # a local the dump must not print
    await gate.wait()
    assert customer_email


async def test_the_dump_names_each_task_and_where_it_waits() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(wait_for_commit(gate), name="stuck-commit")
    await asyncio.sleep(0)
    try:
        text = format_tasks()
    finally:
        gate.set()
        await task
    block = text[text.index("task stuck-commit") :]
    assert "wait_for_commit" in block.splitlines()[0]
    assert "pending" in block.splitlines()[0]
    assert "await gate.wait()" in block  # the line it waits on
    assert text.startswith("asyncio tasks: ")


async def commit_transaction(gate: asyncio.Event) -> None:
    await wait_for_commit(gate)


async def test_the_dump_follows_what_each_task_awaits_down_to_where_it_waits() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(commit_transaction(gate), name="nested")
    await asyncio.sleep(0)
    try:
        text = format_tasks({task})
    finally:
        gate.set()
        await task
    outer, inner = text.index("in commit_transaction"), text.index("in wait_for_commit")
    assert outer < inner  # outermost first
    assert "await gate.wait()" in text[inner:]
    assert "in wait\n" in text[inner:]  # asyncio.Event.wait, the innermost frame


async def test_the_dump_never_prints_local_variables() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(wait_for_commit(gate))
    await asyncio.sleep(0)
    out = io.StringIO()
    try:
        dump_tasks(out)
    finally:
        gate.set()
        await task
    assert "wait_for_commit" in out.getvalue()
    assert ADDRESS not in out.getvalue()


async def test_sigusr1_writes_the_dump_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    loop = asyncio.get_running_loop()
    install_task_dump(loop)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(200):  # the handler runs on the loop once the signal is seen
            await asyncio.sleep(0.01)
            if "asyncio tasks: " in (err := capsys.readouterr().err):
                break
        else:
            err = ""
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert err.startswith("asyncio tasks: ")
    assert "test_sigusr1_writes_the_dump_to_stderr" in err


class Actor:
    """An awaitable that is not a coroutine (a supervisor's actor, say)."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    def __await__(self) -> Generator[Any, None, None]:
        return commit_transaction(self.gate).__await__()


async def supervise(inner: asyncio.Task[None]) -> None:
    await inner


async def run_actor(gate: asyncio.Event) -> None:
    await Actor(gate)


async def test_the_dump_follows_awaited_tasks_and_awaitable_wrappers() -> None:
    gate = asyncio.Event()
    inner = asyncio.create_task(run_actor(gate), name="actor")
    outer = asyncio.create_task(supervise(inner), name="supervisor")
    await asyncio.sleep(0)
    try:
        text = format_tasks({outer})
    finally:
        gate.set()
        await outer
    order = [text.index(f"in {name}") for name in ("supervise", "run_actor", "wait_for_commit")]
    assert order == sorted(order)  # supervisor -> the task it awaits -> through the wrapper
    assert "await gate.wait()" in text
