"""Injected faults and latency, decided per request (pure: the caller passes time and randomness).

A :class:`FaultConfig` describes the weather; :class:`FaultInjector` turns it into one decision
per API call, in this order:

1. **outage** — inside an outage window (seconds since the emulator started) every call gets
   503 with ``Retry-After`` = the seconds left in the window;
2. **rate limit** — a token bucket of ``rate_limit_per_s`` requests per second (burst
   ``rate_limit_burst``); an empty bucket gives 429 with ``Retry-After`` = the seconds until a
   token is back (at least 1);
3. **error** — with probability ``error_rate`` a 500, 502 or 503;
4. **timeout** — with probability ``timeout_rate`` the call is held ``timeout_hold_s`` (longer
   than any sane client timeout) and then answered 504; work is *not* done;
5. otherwise the call succeeds after a latency drawn from a log-normal distribution with the
   configured median and 99th percentile.

Composition work is done only on success, so a client that retries after any fault never makes
a second document for one communication id unless it resubmits one that was accepted.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    OK = "ok"
    OUTAGE = "outage"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class FaultConfig:
    latency_median_ms: float = 5.0
    latency_p99_ms: float = 20.0
    rate_limit_per_s: float | None = None
    rate_limit_burst: int = 50
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold_s: float = 30.0
    outages: tuple[tuple[float, float], ...] = ()
    """(start, end) in seconds since the emulator started."""
    duplicate_callback_rate: float = 0.0
    out_of_order_callback_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "error_rate",
            "timeout_rate",
            "duplicate_callback_rate",
            "out_of_order_callback_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.latency_median_ms < 0 or self.latency_p99_ms < self.latency_median_ms:
            raise ValueError("latency needs 0 <= median <= p99")
        for start, end in self.outages:
            if end <= start:
                raise ValueError(f"outage window ({start}, {end}) ends before it starts")


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    delay_s: float = 0.0
    status: int = 200
    retry_after_s: int | None = None


@dataclass(slots=True)
class FaultInjector:
    config: FaultConfig
    rng: random.Random = field(default_factory=random.Random)
    _tokens: float = -1.0
    _refilled_at: float = 0.0

    def decide(self, elapsed_s: float) -> Decision:
        """The fate of one call made ``elapsed_s`` seconds after the emulator started."""
        c = self.config
        for start, end in c.outages:
            if start <= elapsed_s < end:
                return Decision(
                    Verdict.OUTAGE, status=503, retry_after_s=max(1, math.ceil(end - elapsed_s))
                )
        if c.rate_limit_per_s is not None and not self._take_token(elapsed_s):
            wait = (1.0 - self._tokens) / c.rate_limit_per_s
            return Decision(Verdict.RATE_LIMITED, status=429, retry_after_s=max(1, math.ceil(wait)))
        if self.rng.random() < c.error_rate:
            return Decision(Verdict.ERROR, status=self.rng.choice((500, 502, 503)))
        if self.rng.random() < c.timeout_rate:
            return Decision(Verdict.TIMEOUT, delay_s=c.timeout_hold_s, status=504)
        return Decision(Verdict.OK, delay_s=self.latency_s())

    def latency_s(self) -> float:
        """A log-normal draw with the configured median and p99 (z(0.99) = 2.326)."""
        c = self.config
        if c.latency_median_ms <= 0:
            return 0.0
        sigma = (
            math.log(c.latency_p99_ms / c.latency_median_ms) / 2.326
            if c.latency_p99_ms > c.latency_median_ms
            else 0.0
        )
        return c.latency_median_ms * math.exp(sigma * self.rng.gauss(0.0, 1.0)) / 1000.0

    def _take_token(self, now: float) -> bool:
        c = self.config
        assert c.rate_limit_per_s is not None
        if self._tokens < 0:
            self._tokens, self._refilled_at = float(c.rate_limit_burst), now
        self._tokens = min(
            float(c.rate_limit_burst), self._tokens + (now - self._refilled_at) * c.rate_limit_per_s
        )
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def callback_copies(self) -> int:
        """How many times one callback is sent (2 = an injected duplicate)."""
        return 2 if self.rng.random() < self.config.duplicate_callback_rate else 1

    def swap_next(self) -> bool:
        """Whether the next two callbacks of an item are sent out of order."""
        return self.rng.random() < self.config.out_of_order_callback_rate
