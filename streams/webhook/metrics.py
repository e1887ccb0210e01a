"""The receiver's counters and latency histogram, rendered in the Prometheus text format.

Hand-rolled (the project has no prometheus_client dependency): a handful of counters and one
histogram, all updated from the event loop's thread only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        lines += [
            f'{name}_bucket{{le="{bound:g}"}} {n}'
            for bound, n in zip(self.buckets, self.counts, strict=True)
        ]
        lines += [
            f'{name}_bucket{{le="+Inf"}} {self.count}',
            f"{name}_sum {self.total:.6f}",
            f"{name}_count {self.count}",
        ]
        return lines


@dataclass
class WebhookMetrics:
    received: int = 0
    """Callbacks that reached the handler (every POST to the hook path)."""
    accepted: int = 0
    """Written to the delivery-events topic and confirmed by Kafka."""
    duplicates: int = 0
    """Byte-identical copies of an accepted callback, answered 200 without writing."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Per :class:`Reason`."""
    dead_letters: int = 0
    """Invalid bodies written to the dead-letter topic."""
    kafka_errors: int = 0
    """Writes Kafka did not confirm (answered 503 so that Exstream retries)."""
    latency: Histogram = field(default_factory=Histogram)

    def render(self) -> str:
        p = PREFIX
        lines: list[str] = []

        def counter(name: str, help_text: str, value: int) -> None:
            lines.extend(
                [
                    f"# HELP {p}_{name} {help_text}",
                    f"# TYPE {p}_{name} counter",
                    f"{p}_{name} {value}",
                ]
            )

        counter("received_total", "Delivery callbacks received.", self.received)
        counter("accepted_total", "Delivery events written to Kafka.", self.accepted)
        counter(
            "duplicates_total", "Identical re-sent callbacks not written again.", self.duplicates
        )
        lines += [
            f"# HELP {p}_rejected_total Callbacks refused, by reason.",
            f"# TYPE {p}_rejected_total counter",
        ]
        lines += [
            f'{p}_rejected_total{{reason="{reason}"}} {n}'
            for reason, n in sorted({**dict.fromkeys(Reason.ALL, 0), **self.rejected}.items())
        ]
        counter("dead_letters_total", "Invalid callbacks written to the DLQ.", self.dead_letters)
        counter("kafka_errors_total", "Writes Kafka did not confirm in time.", self.kafka_errors)
        lines += self.latency.render(
            f"{p}_request_duration_seconds", "Time to handle one callback."
        )
        return "\n".join(lines) + "\n"
