"""The receiver's counters and latency histogram (``prometheus_client``, one registry each).

Series (names unchanged from the hand-rolled renderer they replace):
``air_exstream_webhook_{received,accepted,duplicates,dead_letters,kafka_errors}_total``,
``air_exstream_webhook_rejected_total{reason}`` (every :class:`Reason` present from the start,
at 0) and the histogram ``air_exstream_webhook_request_duration_seconds``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from streams.metrics import new_registry, render

PREFIX = "air_exstream_webhook"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Reason:
    """Label values of ``rejected_total`` (stable: dashboards and alerts use them)."""

    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_MALFORMED = "signature_malformed"
    SIGNATURE_STALE = "signature_stale"
    SIGNATURE_MISMATCH = "signature_mismatch"
    INVALID_PAYLOAD = "invalid_payload"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"

    ALL = (
        SIGNATURE_MISSING,
        SIGNATURE_MALFORMED,
        SIGNATURE_STALE,
        SIGNATURE_MISMATCH,
        INVALID_PAYLOAD,
        CONFLICT,
        TOO_LARGE,
    )

    @staticmethod
    def signature(code: str) -> str:
        return f"signature_{code.lower()}"


class WebhookMetrics:
    """Updated from the event loop's thread; read by scrapes (prometheus_client locks)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        r, p = self.registry, PREFIX
        self.received = Counter(f"{p}_received", "Delivery callbacks received.", registry=r)
        self.accepted = Counter(f"{p}_accepted", "Delivery events written to Kafka.", registry=r)
        self.duplicates = Counter(
            f"{p}_duplicates", "Identical re-sent callbacks not written again.", registry=r
        )
        self.rejected = Counter(
            f"{p}_rejected", "Callbacks refused, by reason.", ["reason"], registry=r
        )
        for reason in Reason.ALL:
            self.rejected.labels(reason)
        self.dead_letters = Counter(
            f"{p}_dead_letters", "Invalid callbacks written to the DLQ.", registry=r
        )
        self.kafka_errors = Counter(
            f"{p}_kafka_errors", "Writes Kafka did not confirm in time.", registry=r
        )
        self.latency = Histogram(
            f"{p}_request_duration_seconds",
            "Time to handle one callback.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )

    def render(self) -> str:
        return render(self.registry).decode()
