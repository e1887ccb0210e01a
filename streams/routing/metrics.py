"""The routing worker's metrics (``prometheus_client``), served on ``--metrics-port``.

Series (prefix ``air_exstream_routing_``):

- ``records_in_total{topic}``: input records handled (counted when the handler returns; one
  whose handler raised is not counted,
  :func:`~streams.routing.engine_adapters.counted`);
- ``records_out_total{topic}``: records the handlers sent (outputs, dead letters), counted when
  sent (:class:`~streams.routing.engine_adapters.CountedOutputs`): a transaction aborted by a
  crash counts its records although ``read_committed`` readers never see them;
- ``decisions_total{flow,outcome}``: what the decisions produced. ``flow="event"``: ``command``,
  ``suppressed``, ``undeliverable``, ``alert``, ``rejected`` (one event can produce several: one
  per matching rule); ``flow="document_request"``: ``command``, ``retry``, ``rejected``;
  ``flow="delivery"``: ``fallback`` (a fallback command after a bounce), ``sla_breach``;
- ``dead_letters_total{topic,reason}``: records dead-lettered, by source topic and reason code;
- ``consumer_lag{topic,partition}``: the partition's end (last stable offset under
  exactly-once) minus the offset after the last record handled (not the consumer's read
  offset: the engine fetches records ahead into its buffers), refreshed every
  ``metrics_interval_s``. On a
  topic written in transactions (the audit intake) a caught-up partition can show 1: the commit
  marker after its last record;
- ``commit_duration_seconds``: one transaction's commit (its records produced, its offsets
  sent, the commit), each transactional call guarded by the commit deadline;
  ``commit_deadline_seconds`` is that deadline (``AIR_EXSTREAM_COMMIT_TIMEOUT_S``);
- ``table_entries{table}``: entries in each state table's partitions held by this worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.metrics import LabelledCounts, new_registry, render

PREFIX = "air_exstream_routing"
COMMIT_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0,
    120.0,
)  # fmt: skip
"""Up to and past the default commit deadline (90 s): the alert compares the tail with it."""


@dataclass(frozen=True, slots=True)
class PartitionPosition:
    topic: str
    partition: int
    end: int | None
    """The partition's end as the consumer knows it (None or negative: not known yet)."""
    next_offset: int | None
    """The next offset the worker will process (None: nothing read nor committed yet)."""


def lag(position: PartitionPosition) -> int | None:
    """Records between the next offset to process and the end; None when either is unknown."""
    if position.end is None or position.end < 0 or position.next_offset is None:
        return None
    return max(0, position.end - position.next_offset)


class RoutingMetrics:
    def __init__(
        self, *, commit_deadline_s: float = 90.0, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else new_registry()
        r, p = self.registry, PREFIX
        # counted per record: plain counts read at each scrape (no lock per increment)
        self.records_in = LabelledCounts(
            f"{p}_records_in", "Input records processed, by topic.", ["topic"], registry=r
        )
        self.records_out = LabelledCounts(
            f"{p}_records_out", "Records sent, by topic.", ["topic"], registry=r
        )
        self.decisions = LabelledCounts(
            f"{p}_decisions",
            "Decision outcomes, by flow (event, document_request, delivery) and outcome.",
            ["flow", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{p}_dead_letters",
            "Records dead-lettered, by source topic and reason.",
            ["topic", "reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            f"{p}_consumer_lag",
            "Records of an assigned input partition not processed yet.",
            ["topic", "partition"],
            registry=r,
        )
        self.commit_duration = Histogram(
            f"{p}_commit_duration_seconds",
            "Time of one commit of the worker (lock wait, pending changelogs, transactions).",
            buckets=COMMIT_BUCKETS_S,
            registry=r,
        )
        Gauge(
            f"{p}_commit_deadline_seconds",
            "How long one commit may take before the worker exits (commit_timeout_s).",
            registry=r,
        ).set(commit_deadline_s)
        self.table_entries = Gauge(
            f"{p}_table_entries",
            "Entries in the active partitions of each state table on this worker.",
            ["table"],
            registry=r,
        )
        self._lag_labels: set[tuple[str, str]] = set()

    def record_in(self, topic: str) -> None:
        self.records_in.inc((topic,))

    def record_out(self, topic: str) -> None:
        self.records_out.inc((topic,))

    def decided(self, flow: str, outcome: str, count: int = 1) -> None:
        if count:
            self.decisions.inc((flow, outcome), count)

    def observe_positions(self, positions: Iterable[PartitionPosition]) -> None:
        """Set the lag of each known partition; partitions no longer assigned are dropped."""
        seen: set[tuple[str, str]] = set()
        for position in positions:
            value = lag(position)
            if value is None:
                continue
            labels = (position.topic, str(position.partition))
            self.consumer_lag.labels(*labels).set(value)
            seen.add(labels)
        for gone in self._lag_labels - seen:
            self.consumer_lag.remove(*gone)
        self._lag_labels = seen

    def observe_tables(self, sizes: Mapping[str, int]) -> None:
        for name, size in sizes.items():
            self.table_entries.labels(name).set(size)

    def render(self) -> str:
        return render(self.registry).decode()
