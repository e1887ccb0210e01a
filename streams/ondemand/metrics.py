"""The service's counters and latency histogram in the Prometheus text format (pure).

Hand-rolled like the webhook receiver's (no prometheus_client dependency); updated from the
event loop's thread only. Labels are bounded: route templates (never raw paths) and statuses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PREFIX = "air_exstream_ondemand"
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: dict[str, list[int]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)

    def observe(self, label: str, value: float) -> None:
        counts = self.counts.setdefault(label, [0] * len(self.buckets))
        self.sums[label] = self.sums.get(label, 0.0) + value
        self.totals[label] += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for label in sorted(self.counts):
            counts = self.counts[label]
            lines += [
                f'{name}_bucket{{route="{label}",le="{bound:g}"}} {n}'
                for bound, n in zip(self.buckets, counts, strict=True)
            ]
            lines += [
                f'{name}_bucket{{route="{label}",le="+Inf"}} {self.totals[label]}',
                f'{name}_sum{{route="{label}"}} {self.sums[label]:.6f}',
                f'{name}_count{{route="{label}"}} {self.totals[label]}',
            ]
        return lines


@dataclass
class OnDemandMetrics:
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(route, status) -> answers."""
    latency: Histogram = field(default_factory=Histogram)
    documents: Counter[str] = field(default_factory=Counter)
    """document type -> documents produced and recorded."""
    exstream: Counter[str] = field(default_factory=Counter)
    """Outcome of Exstream calls: ok, unavailable, timeout, error, rejected."""
    busy_rejections: int = 0
    kafka_failures: int = 0
    link_cache: Counter[str] = field(default_factory=Counter)
    """hit, miss (re-fetched from Exstream)."""
    in_flight: int = 0

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.latency.observe(route, seconds)

    def render(self, *, cache_entries: int, cache_bytes: int, cache_evictions: int) -> str:
        p = PREFIX
        lines = [
            f"# HELP {p}_requests_total HTTP answers by route and status.",
            f"# TYPE {p}_requests_total counter",
        ]
        lines += [
            f'{p}_requests_total{{route="{route}",status="{status}"}} {n}'
            for (route, status), n in sorted(self.requests.items())
        ]
        lines += self.latency.render(f"{p}_request_duration_seconds", "Time to answer.")
        lines += [
            f"# HELP {p}_documents_total Documents produced and recorded, by type.",
            f"# TYPE {p}_documents_total counter",
        ]
        lines += [
            f'{p}_documents_total{{type="{t}"}} {n}' for t, n in sorted(self.documents.items())
        ]
        lines += [
            f"# HELP {p}_exstream_calls_total Exstream calls by outcome.",
            f"# TYPE {p}_exstream_calls_total counter",
        ]
        lines += [
            f'{p}_exstream_calls_total{{outcome="{o}"}} {n}'
            for o, n in sorted(self.exstream.items())
        ]
        lines += [
            f"# HELP {p}_link_cache_total Signed-link fetches served from the cache or Exstream.",
            f"# TYPE {p}_link_cache_total counter",
        ]
        lines += [
            f'{p}_link_cache_total{{result="{r}"}} {n}' for r, n in sorted(self.link_cache.items())
        ]
        for name, kind, help_text, value in (
            ("busy_rejections_total", "counter", "Requests refused at the concurrency bound.",
             self.busy_rejections),
            ("kafka_failures_total", "counter", "Documents whose records Kafka did not confirm.",
             self.kafka_failures),
            ("in_flight", "gauge", "Requests being served.", self.in_flight),
            ("cache_entries", "gauge", "Documents in the link cache.", cache_entries),
            ("cache_bytes", "gauge", "Bytes in the link cache.", cache_bytes),
            ("cache_evictions_total", "counter", "Documents evicted from the link cache.",
             cache_evictions),
        ):  # fmt: skip
            lines += [
                f"# HELP {p}_{name} {help_text}",
                f"# TYPE {p}_{name} {kind}",
                f"{p}_{name} {value}",
            ]
        return "\n".join(lines) + "\n"
