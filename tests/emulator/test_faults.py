"""Fault decisions: outages, token bucket, error/timeout shares, latency distribution."""

from __future__ import annotations

import random
import statistics

import pytest

from streams.emulator.faults import FaultConfig, FaultInjector, Verdict

pytestmark = pytest.mark.unit


def injector(**kwargs: object) -> FaultInjector:
    base: dict[str, object] = {"latency_median_ms": 0.0, "latency_p99_ms": 0.0}
    return FaultInjector(FaultConfig(**{**base, **kwargs}), random.Random(3))  # type: ignore[arg-type]


def test_outage_window_with_retry_after_until_its_end() -> None:
    f = injector(outages=((10.0, 40.0),))
    assert f.decide(9.9).verdict is Verdict.OK
    d = f.decide(10.0)
    assert (d.verdict, d.status, d.retry_after_s) == (Verdict.OUTAGE, 503, 30)
    assert f.decide(39.5).retry_after_s == 1
    assert f.decide(40.0).verdict is Verdict.OK


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    f = injector(rate_limit_per_s=10.0, rate_limit_burst=5)
    verdicts = [f.decide(0.0).verdict for _ in range(8)]
    assert verdicts.count(Verdict.OK) == 5
    assert verdicts[5:] == [Verdict.RATE_LIMITED] * 3
    assert f.decide(0.0).retry_after_s == 1
    assert f.decide(0.1).verdict is Verdict.OK  # one token back after 1/rate s
    assert f.decide(0.1).verdict is Verdict.RATE_LIMITED


def test_error_and_timeout_shares() -> None:
    f = injector(error_rate=0.2, timeout_rate=0.1, timeout_hold_s=7.0)
    decisions = [f.decide(0.0) for _ in range(5000)]
    errors = [d for d in decisions if d.verdict is Verdict.ERROR]
    timeouts = [d for d in decisions if d.verdict is Verdict.TIMEOUT]
    assert 0.17 < len(errors) / 5000 < 0.23
    assert 0.06 < len(timeouts) / 5000 < 0.10  # 10 % of the 80 % that were not errors
    assert {d.status for d in errors} <= {500, 502, 503}
    assert all(d.status == 504 and d.delay_s == 7.0 for d in timeouts)


def test_latency_has_the_configured_median_and_p99() -> None:
    f = FaultInjector(FaultConfig(latency_median_ms=20.0, latency_p99_ms=80.0), random.Random(5))
    draws = sorted(f.latency_s() * 1000 for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(20.0, rel=0.05)
    assert draws[int(0.99 * len(draws))] == pytest.approx(80.0, rel=0.1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"timeout_rate": -0.1},
        {"latency_median_ms": 10.0, "latency_p99_ms": 5.0},
        {"outages": ((5.0, 5.0),)},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must be|latency needs|ends before"):
        FaultConfig(**kwargs)  # type: ignore[arg-type]
