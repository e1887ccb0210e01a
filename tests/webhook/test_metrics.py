"""The Prometheus text rendering of the receiver's metrics."""

from __future__ import annotations

import pytest

from streams.webhook.metrics import Reason, WebhookMetrics

pytestmark = pytest.mark.unit


def test_every_reason_is_rendered_even_at_zero() -> None:
    metrics = WebhookMetrics()
    metrics.rejected[Reason.signature("STALE")] += 2
    text = metrics.render()
    for reason in Reason.ALL:
        assert f'air_exstream_webhook_rejected_total{{reason="{reason}"}}' in text
    assert 'air_exstream_webhook_rejected_total{reason="signature_stale"} 2' in text
    assert text.endswith("\n")


def test_counters_and_the_latency_histogram() -> None:
    metrics = WebhookMetrics(received=3, accepted=2, duplicates=1, kafka_errors=4)
    for seconds in (0.001, 0.02, 60.0):
        metrics.latency.observe(seconds)
    lines = set(metrics.render().splitlines())
    assert "# TYPE air_exstream_webhook_received_total counter" in lines
    assert "air_exstream_webhook_received_total 3" in lines
    assert "air_exstream_webhook_accepted_total 2" in lines
    assert "air_exstream_webhook_duplicates_total 1" in lines
    assert "air_exstream_webhook_kafka_errors_total 4" in lines
    assert "# TYPE air_exstream_webhook_request_duration_seconds histogram" in lines
    assert 'air_exstream_webhook_request_duration_seconds_bucket{le="0.005"} 1' in lines
    assert 'air_exstream_webhook_request_duration_seconds_bucket{le="0.025"} 2' in lines
    assert 'air_exstream_webhook_request_duration_seconds_bucket{le="30"} 2' in lines
    assert 'air_exstream_webhook_request_duration_seconds_bucket{le="+Inf"} 3' in lines
    assert "air_exstream_webhook_request_duration_seconds_count 3" in lines
    assert "air_exstream_webhook_request_duration_seconds_sum 60.021000" in lines
