"""The gate the events agents wait in: woken by progress, bounded, counted."""

from __future__ import annotations

import asyncio

import pytest

from streams.routing.alignment import Verdict
from streams.routing.join_gate import JoinGate, ProgressSignal

pytestmark = pytest.mark.unit


async def test_an_aligned_event_goes_at_once() -> None:
    gate = JoinGate(signal=ProgressSignal(), max_wait_s=30)
    admission = await gate.admit(lambda: Verdict.CAUGHT_UP, what="p0")
    assert admission.verdict is Verdict.CAUGHT_UP
    assert not admission.gave_up
    assert gate.counters.waited == 0
    assert gate.counters.by_verdict == {"caught_up": 1}


async def test_a_waiting_event_goes_when_progress_makes_it_aligned() -> None:
    signal = ProgressSignal()
    # recheck far beyond the test's deadline: only the notification can wake it in time
    gate = JoinGate(signal=signal, max_wait_s=300, recheck_s=300)
    state = {"verdict": Verdict.WAIT}
    checks: list[Verdict] = []

    def check() -> Verdict:
        checks.append(state["verdict"])
        return state["verdict"]

    task = asyncio.create_task(gate.admit(check, what="p0"))
    await asyncio.sleep(0)
    assert not task.done()
    signal.notify()  # progress, still not aligned
    await asyncio.sleep(0)
    assert not task.done()
    state["verdict"] = Verdict.CAUGHT_UP
    signal.notify()
    admission = await asyncio.wait_for(task, timeout=30)
    assert admission.verdict is Verdict.CAUGHT_UP
    assert not admission.gave_up
    assert checks[0] is Verdict.WAIT
    assert checks[-1] is Verdict.CAUGHT_UP
    assert gate.counters.waited == 1
    assert gate.counters.gave_up == 0


async def test_a_wait_that_runs_out_gives_up_logs_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = JoinGate(signal=ProgressSignal(), max_wait_s=0.05, recheck_s=0.01)
    admission = await asyncio.wait_for(gate.admit(lambda: Verdict.WAIT, what="p3"), timeout=30)
    assert admission.gave_up
    assert admission.verdict is Verdict.WAIT
    assert gate.counters.gave_up == 1
    assert gate.counters.by_verdict == {Verdict.WAIT.value: 1}
    assert "gave up" in caplog.text
    assert "p3" in caplog.text


async def test_the_signal_wakes_every_waiter_once() -> None:
    signal = ProgressSignal()
    waiters = [asyncio.create_task(signal.wait(300)) for _ in range(3)]
    await asyncio.sleep(0)
    signal.notify()
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
    late = asyncio.create_task(signal.wait(300))
    await asyncio.sleep(0.01)
    assert not late.done(), "a notification before the wait began must not wake it"
    signal.notify()
    await asyncio.wait_for(late, timeout=30)
