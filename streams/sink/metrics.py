"""The sink's metrics (``prometheus_client``, one registry per sink).

Counters are ``air_exstream_sink_<name>_total``; the hand-rolled renderer before them wrote
``air_exstream_sink_<name>`` (README, Metrics: the renaming). Retries are one counter labelled by
reason (``retries_total{reason="HTTP_429"}``, was ``retries_HTTP_429``) and the submission time a
histogram (``submit_duration_seconds``, was the counter ``submit_seconds_total_ms``). The gauges
keep their names: ``inflight_batches``, ``concurrency_limit``, ``circuit_open``,
``circuit_opens``, ``token_refreshes`` (read from the sink at each scrape).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.metrics import new_registry, render

PREFIX = "air_exstream_sink"
SUBMIT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

COUNTERS = {
    "commands_read": "Commands read from the commands topic.",
    "commands_accepted": "Commands in batches Exstream holds (submitted or found).",
    "commands_already_at_exstream": "Commands of batches found at Exstream by external id.",
    "commands_without_exstream_communication": "Commands whose template has no Exstream "
    "communication (yet): Exstream reports the customer as failed.",
    "batches_recovered": "Batches intended before a restart or rebalance, cut again.",
    "batches_found_at_exstream": "Batches a lookup found already at Exstream.",
    "batches_accepted": "Batches Exstream holds.",
    "batches_split": "Refused batches split in halves.",
    "lookups": "Lookups of a batch by its external id.",
    "submissions": "Batch submissions sent to Exstream.",
    "pushbacks": "Answers that halved the concurrency limit (429, 503, timeouts).",
    "dead_letters": "Commands written to the dead-letter topic.",
    "commits": "Offset commits of accepted work.",
    "commits_lost_to_rebalance": "Offset commits refused because the group rebalanced without "
    "this sink (its batches are recovered by whoever gets the partitions).",
}

GAUGES = {
    "inflight_batches": "Batches submitted and not yet committed.",
    "concurrency_limit": "Batches allowed in flight (adaptive).",
    "circuit_open": "1 while the circuit breaker is open or half-open.",
    "circuit_opens": "Times the circuit breaker opened since the start.",
    "token_refreshes": "OTDS token refreshes since the start.",
}


class SinkMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r, p = self.registry, PREFIX
        self.counters = {
            name: Counter(f"{p}_{name}", doc, registry=r) for name, doc in COUNTERS.items()
        }
        self.retries = Counter(
            f"{p}_retries", "Retried submissions and lookups, by reason.", ["reason"], registry=r
        )
        self.submit_duration = Histogram(
            f"{p}_submit_duration_seconds",
            "Time of one batch submission to Exstream.",
            buckets=SUBMIT_BUCKETS_S,
            registry=r,
        )
        self.gauges = {name: Gauge(f"{p}_{name}", doc, registry=r) for name, doc in GAUGES.items()}

    def inc(self, name: str, amount: float = 1) -> None:
        self.counters[name].inc(amount)

    def watch(self, **read: Callable[[], float]) -> None:
        """Read each gauge (by name) from ``read[name]()`` at every scrape."""
        for name, fn in read.items():
            self.gauges[name].set_function(fn)

    def count(self, name: str) -> float:
        """A counter's value (``name`` as in :data:`COUNTERS`)."""
        value = self.registry.get_sample_value(f"{PREFIX}_{name}_total")
        return value if value is not None else 0.0

    def __getitem__(self, name: str) -> float:
        return self.count(name)

    def render(self) -> str:
        return render(self.registry).decode()
