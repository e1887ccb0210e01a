"""The receiver's metrics as Prometheus renders them (prometheus_client)."""

from __future__ import annotations

import pytest

from streams.metrics import parse_samples
from streams.webhook.metrics import Reason, WebhookMetrics

pytestmark = pytest.mark.unit


def test_every_reason_is_rendered_even_at_zero() -> None:
    metrics = WebhookMetrics()
    metrics.rejected.labels(Reason.signature("STALE")).inc(2)
    text = metrics.render()
    samples = parse_samples(text)
    for reason in Reason.ALL:
        assert f'air_exstream_webhook_rejected_total{{reason="{reason}"}}' in samples
    assert samples['air_exstream_webhook_rejected_total{reason="signature_stale"}'] == 2
    assert samples['air_exstream_webhook_rejected_total{reason="conflict"}'] == 0
    assert text.endswith("\n")


def test_counters_and_the_latency_histogram_keep_their_names() -> None:
    metrics = WebhookMetrics()
    metrics.received.inc(3)
    metrics.accepted.inc(2)
    metrics.duplicates.inc()
    metrics.kafka_errors.inc(4)
    for seconds in (0.001, 0.02, 60.0):
        metrics.latency.observe(seconds)
    text = metrics.render()
    assert "# TYPE air_exstream_webhook_received_total counter" in text
    assert "# TYPE air_exstream_webhook_request_duration_seconds histogram" in text
    assert "_created" not in text
    s = parse_samples(text)
    assert s["air_exstream_webhook_received_total"] == 3
    assert s["air_exstream_webhook_accepted_total"] == 2
    assert s["air_exstream_webhook_duplicates_total"] == 1
    assert s["air_exstream_webhook_kafka_errors_total"] == 4
    assert s["air_exstream_webhook_dead_letters_total"] == 0
    assert s['air_exstream_webhook_request_duration_seconds_bucket{le="0.005"}'] == 1
    assert s['air_exstream_webhook_request_duration_seconds_bucket{le="0.025"}'] == 2
    assert s['air_exstream_webhook_request_duration_seconds_bucket{le="30.0"}'] == 2
    assert s['air_exstream_webhook_request_duration_seconds_bucket{le="+Inf"}'] == 3
    assert s["air_exstream_webhook_request_duration_seconds_count"] == 3
    assert s["air_exstream_webhook_request_duration_seconds_sum"] == pytest.approx(60.021)


def test_two_receivers_in_one_process_keep_their_own_counts() -> None:
    a, b = WebhookMetrics(), WebhookMetrics()
    a.received.inc()
    assert parse_samples(a.render())["air_exstream_webhook_received_total"] == 1
    assert parse_samples(b.render())["air_exstream_webhook_received_total"] == 0
