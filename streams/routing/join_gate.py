"""An event (or a document request) waits here until the rules and templates published before it
are in the worker's views (:mod:`streams.routing.alignment`).

Waiting is not polling: the reference views call :meth:`ProgressSignal.notify` whenever they
applied something or observed their topic's ends, and a waiting event re-checks then (and at the
latest every ``recheck_s``). The wait is bounded by ``max_wait_s``; when it runs out the event goes
anyway (deciding it late is worse than deciding it with what is there), and the give-up is logged
and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from streams.routing.alignment import Verdict

log = logging.getLogger(__name__)


class ProgressSignal:
    """Wakes every waiter once per :meth:`notify` (an edge, not a level)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout_s: float) -> None:
        """Return at the next :meth:`notify`, or after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)


@dataclass(slots=True)
class GateCounters:
    """What the gate did since the worker started (logged with the routing counters)."""

    waited: int = 0
    """Events that had to wait before they could be decided."""
    wait_s: float = 0.0
    """Seconds spent waiting, summed."""
    gave_up: int = 0
    """Waits that ran out (``alignment_max_wait_s``): those events were decided anyway."""
    by_verdict: dict[str, int] | None = None

    def line(self) -> str:
        verdicts = " ".join(f"{k}={v}" for k, v in sorted((self.by_verdict or {}).items()))
        return (
            f"waited={self.waited} wait_s={self.wait_s:.1f} gave_up={self.gave_up} "
            f"verdicts[{verdicts}]"
        )


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    waited_s: float
    gave_up: bool


class JoinGate:
    """Lets an event through once its join inputs are aligned, or the bounded wait ran out."""

    def __init__(
        self,
        *,
        signal: ProgressSignal,
        max_wait_s: float,
        recheck_s: float = 0.1,
        counters: GateCounters | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signal = signal
        self.max_wait_s = max_wait_s
        self.recheck_s = recheck_s
        self.counters = counters or GateCounters()
        self._clock = clock

    async def admit(
        self,
        check: Callable[[], Verdict],
        *,
        what: str,
    ) -> Admission:
        """Wait until ``check()`` lets the event go, or ``max_wait_s`` passed (the event then
        goes with the state there is, and a warning is logged). ``what`` names the event's
        partition in the log line (never its content)."""
        verdict = check()
        if verdict.may_go:
            self.passed(verdict)
            return Admission(verdict, 0.0, gave_up=False)
        started = self._clock()
        deadline = started + self.max_wait_s
        self.counters.waited += 1
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                waited = self._clock() - started
                self.counters.gave_up += 1
                self.counters.wait_s += waited
                log.warning(
                    "join alignment: gave up after %.1f s waiting for %s; deciding the event "
                    "with the state there is (is the rules or templates view able to read "
                    "its topic?)",
                    waited,
                    what,
                )
                self.passed(verdict)
                return Admission(verdict, waited, gave_up=True)
            await self.signal.wait(min(remaining, self.recheck_s))
            verdict = check()
            if verdict.may_go:
                waited = self._clock() - started
                self.counters.wait_s += waited
                self.passed(verdict)
                return Admission(verdict, waited, gave_up=False)

    def passed(self, verdict: Verdict) -> None:
        """Count an event let go with ``verdict`` (by :meth:`admit`, or by a caller that
        knew the verdict without asking: it went without waiting)."""
        if self.counters.by_verdict is None:
            self.counters.by_verdict = {}
        self.counters.by_verdict[verdict.value] = self.counters.by_verdict.get(verdict.value, 0) + 1
