"""The commit deadline: a commit still running after it ends the worker; one that finishes (or
fails) in time leaves no trace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from streams.routing.watchdog import EXIT_STUCK, Deadline

pytestmark = pytest.mark.unit

TIMEOUT_S = 0.05


class Expiries:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.fired = asyncio.Event()

    def __call__(self, what: str, waited_s: float) -> None:
        self.calls.append((what, waited_s))
        self.fired.set()


async def test_a_block_still_running_at_the_deadline_triggers_the_expiry() -> None:
    expiries = Expiries()
    release = asyncio.Event()

    async def stuck_commit() -> str:
        async with Deadline(TIMEOUT_S, expiries).guard("a commit"):
            await release.wait()
            return "committed"

    commit = asyncio.create_task(stuck_commit())
    await asyncio.wait_for(expiries.fired.wait(), timeout=30)
    assert not commit.done()  # the block is left alone: only the worker's exit ends it
    release.set()
    assert await commit == "committed"
    [(what, waited_s)] = expiries.calls
    assert what == "a commit"
    assert waited_s >= TIMEOUT_S


async def test_a_block_that_finishes_in_time_never_triggers_it() -> None:
    expiries = Expiries()
    async with Deadline(TIMEOUT_S, expiries).guard("a commit"):
        await asyncio.sleep(0)
    await asyncio.sleep(TIMEOUT_S * 4)
    assert expiries.calls == []


async def test_a_block_that_fails_in_time_never_triggers_it() -> None:
    expiries = Expiries()
    with pytest.raises(RuntimeError, match="fenced"):
        async with Deadline(TIMEOUT_S, expiries).guard("a commit"):
            raise RuntimeError("fenced")
    await asyncio.sleep(TIMEOUT_S * 4)
    assert expiries.calls == []


@pytest.mark.parametrize("timeout_s", [0.0, -1.0])
def test_the_deadline_must_be_positive(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadline(timeout_s)


def test_a_missed_deadline_exits_with_its_status_after_saying_why_and_where() -> None:
    program = textwrap.dedent(
        """
        import asyncio, logging
        from streams.routing.watchdog import Deadline

        async def main():
            async with Deadline(0.05).guard("A commit of the routing worker"):
                await asyncio.Event().wait()  # never set: a commit that cannot finish

        logging.basicConfig(level=logging.INFO)
        asyncio.run(main())
        print("not reached")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == EXIT_STUCK
    assert "not reached" not in done.stdout
    assert "A commit of the routing worker has not completed in" in done.stderr
    assert "CRITICAL" in done.stderr
    assert "asyncio tasks: " in done.stderr  # where each task waits
    assert "in main" in done.stderr
