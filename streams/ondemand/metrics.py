"""The service's counters, gauges and latency histogram (``prometheus_client``).

Updated from the event loop's thread. Labels are bounded: route templates (never raw paths),
statuses, document types, outcomes. Series (names unchanged from the hand-rolled renderer they
replace): ``air_exstream_ondemand_requests_total{route,status}``,
``..._request_duration_seconds{route}``, ``..._documents_total{type}``,
``..._exstream_calls_total{outcome}``, ``..._link_cache_total{result}``,
``..._busy_rejections_total``, ``..._kafka_failures_total``, ``..._in_flight``,
``..._cache_entries``, ``..._cache_bytes``, ``..._cache_evictions_total``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.metrics import CallbackCounter, new_registry, render

PREFIX = "air_exstream_ondemand"
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class OnDemandMetrics:
    def __init__(
        self,
        *,
        cache_entries: Callable[[], float] = lambda: 0,
        cache_bytes: Callable[[], float] = lambda: 0,
        cache_evictions: Callable[[], float] = lambda: 0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else new_registry()
        r, p = self.registry, PREFIX
        self.requests = Counter(
            f"{p}_requests", "HTTP answers by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            f"{p}_request_duration_seconds",
            "Time to answer.",
            ["route"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.documents = Counter(
            f"{p}_documents", "Documents produced and recorded, by type.", ["type"], registry=r
        )
        self.exstream = Counter(
            f"{p}_exstream_calls",
            "Exstream calls by outcome (ok, unavailable, timeout, error, rejected).",
            ["outcome"],
            registry=r,
        )
        self.link_cache = Counter(
            f"{p}_link_cache",
            "Signed-link fetches served from the cache (hit) or Exstream (miss).",
            ["result"],
            registry=r,
        )
        self.busy_rejections = Counter(
            f"{p}_busy_rejections", "Requests refused at the concurrency bound.", registry=r
        )
        self.kafka_failures = Counter(
            f"{p}_kafka_failures", "Documents whose records Kafka did not confirm.", registry=r
        )
        self.in_flight = Gauge(f"{p}_in_flight", "Requests being served.", registry=r)
        Gauge(f"{p}_cache_entries", "Documents in the link cache.", registry=r).set_function(
            cache_entries
        )
        Gauge(f"{p}_cache_bytes", "Bytes in the link cache.", registry=r).set_function(cache_bytes)
        CallbackCounter(
            f"{p}_cache_evictions_total",
            "Documents evicted from the link cache.",
            cache_evictions,
            r,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one series (``name`` without the prefix), 0 when absent."""
        found = self.registry.get_sample_value(f"{PREFIX}_{name}", labels)
        return found if found is not None else 0.0

    def render(self) -> str:
        return render(self.registry).decode()
