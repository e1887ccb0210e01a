"""How the sink paces itself against Exstream (pure: callers pass the time and randomness).

- :class:`AdaptiveLimit` — additive-increase / multiplicative-decrease of the number of batch
  submissions in flight: +1 after ``limit`` successes in a row, halved on push-back (429, 503,
  timeouts), never below ``minimum`` nor above ``maximum``.
- :class:`CircuitBreaker` — after ``threshold`` consecutive failures the circuit opens and no call
  is made for ``open_s`` seconds; then one probe call is let through (half-open): success closes
  it, failure opens it again; a probe that ends without either verdict is released so the next
  call probes. Retry-After from the server extends the open period.
- :func:`backoff_s` — exponential backoff with full jitter, at least the server's Retry-After.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


@dataclass(slots=True)
class AdaptiveLimit:
    limit: int = 4
    minimum: int = 1
    maximum: int = 64
    _streak: int = 0

    def on_success(self) -> None:
        self._streak += 1
        if self._streak >= self.limit:
            self._streak = 0
            self.limit = min(self.maximum, self.limit + 1)

    def on_pushback(self) -> None:
        self._streak = 0
        self.limit = max(self.minimum, self.limit // 2)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    threshold: int = 5
    open_s: float = 5.0
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_until: float = 0.0
    opens: int = 0
    """How many times the circuit opened (a metric)."""
    _probing: bool = False

    def allow(self, now: float) -> bool:
        """Whether a call may be made now (in half-open state: one probe at a time)."""
        if self.state is BreakerState.OPEN:
            if now < self.opened_until:
                return False
            self.state = BreakerState.HALF_OPEN
            self._probing = False
        if self.state is BreakerState.HALF_OPEN:
            if self._probing:
                return False
            self._probing = True
        return True

    def wait_s(self, now: float) -> float:
        return max(0.0, self.opened_until - now) if self.state is BreakerState.OPEN else 0.0

    def release(self) -> None:
        """The caller let through as the half-open probe learnt nothing about Exstream's health
        (a lookup found nothing yet, a throttle, a cancellation): the next caller may probe."""
        self._probing = False

    def on_success(self) -> None:
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probing = False

    def on_failure(self, now: float, retry_after_s: float | None = None) -> None:
        self.failures += 1
        self._probing = False
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.state = BreakerState.OPEN
            self.opens += 1
            self.opened_until = now + max(self.open_s, retry_after_s or 0.0)


def backoff_s(
    attempt: int,
    rng: random.Random,
    *,
    base_s: float = 0.2,
    cap_s: float = 30.0,
    retry_after_s: float | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over ``base * 2^(attempt-1)``
    capped at ``cap_s``, and never less than the server's Retry-After."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return max(rng.uniform(0.0, ceiling), retry_after_s or 0.0)
