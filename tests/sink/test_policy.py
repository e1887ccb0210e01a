"""Adaptive concurrency, circuit breaker and backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sink.policy import AdaptiveLimit, BreakerState, CircuitBreaker, backoff_s

pytestmark = pytest.mark.unit


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """Read afresh (keeps the type checker from narrowing across calls that change it)."""
    return breaker.state


def test_limit_grows_additively_and_halves_on_pushback() -> None:
    limit = AdaptiveLimit(limit=4, maximum=6)
    for _ in range(4):
        limit.on_success()
    assert limit.limit == 5
    for _ in range(100):
        limit.on_success()
    assert limit.limit == 6
    limit.on_pushback()
    assert limit.limit == 3
    for _ in range(5):
        limit.on_pushback()
    assert limit.limit == 1


def test_breaker_opens_after_threshold_and_probes_once() -> None:
    b = CircuitBreaker(threshold=3, open_s=5.0)
    for t in range(2):
        b.on_failure(float(t))
    assert state_of(b) == BreakerState.CLOSED
    assert b.allow(2.0)
    b.on_failure(2.0)
    assert state_of(b) == BreakerState.OPEN
    assert not b.allow(6.9)
    assert b.wait_s(6.0) == pytest.approx(1.0)
    assert b.allow(7.0)  # half-open: one probe
    assert not b.allow(7.0)
    b.on_failure(7.1)  # probe failed: open again
    assert state_of(b) == BreakerState.OPEN
    assert b.opens == 2
    assert b.allow(12.2)
    b.on_success()
    assert state_of(b) == BreakerState.CLOSED
    assert b.allow(12.3)
    assert b.allow(12.3)


def test_retry_after_extends_the_open_period() -> None:
    b = CircuitBreaker(threshold=1, open_s=1.0)
    b.on_failure(0.0, retry_after_s=30.0)
    assert not b.allow(29.0)
    assert b.allow(30.0)


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=100))
def test_backoff_is_bounded_and_honours_retry_after(attempt: int, retry_after: float) -> None:
    rng = random.Random(attempt)
    plain = backoff_s(attempt, rng, base_s=0.2, cap_s=30.0)
    assert 0.0 <= plain <= min(30.0, 0.2 * 2 ** (attempt - 1))
    assert backoff_s(attempt, rng, retry_after_s=retry_after) >= retry_after


def test_a_probe_released_without_a_verdict_lets_the_next_call_probe() -> None:
    # the half-open probe ended in a lookup that found nothing yet, a throttle or a cancellation:
    # without release every caller would wait for a verdict that never comes
    b = CircuitBreaker(threshold=1, open_s=1.0)
    b.on_failure(now=0.0)
    assert b.allow(2.0)
    assert not b.allow(2.0)
    b.release()
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow(2.1)
    assert not b.allow(2.1)
    b.on_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow(2.2)
    assert b.allow(2.2)
