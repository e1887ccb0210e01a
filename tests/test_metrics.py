"""The shared Prometheus helpers (streams/metrics.py): standalone port, parser, names."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import Counter, Histogram

from streams.metrics import (
    CallbackCounter,
    LabelledCounts,
    metric_names,
    new_registry,
    parse_samples,
    render,
    serve_metrics,
)

pytestmark = pytest.mark.unit


def test_a_standalone_port_serves_its_registry_until_stopped() -> None:
    registry = new_registry()
    Counter("demo_things", "Things.", registry=registry).inc(3)
    server = serve_metrics(registry, 0)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain")
    finally:
        server.stop()
    assert parse_samples(text) == {"demo_things_total": 3.0}
    with pytest.raises(OSError, match=r".+"):
        urllib.request.urlopen(url, timeout=2)


def test_names_include_labelled_metrics_without_samples_and_callback_counters() -> None:
    registry = new_registry()
    Counter("a", "A.", ["reason"], registry=registry)
    Histogram("b_seconds", "B.", registry=registry)
    evictions = [0]
    CallbackCounter("c_evictions_total", "C.", lambda: evictions[0], registry)
    assert metric_names(registry) == {
        "a_total",
        "b_seconds_bucket",
        "b_seconds_sum",
        "b_seconds_count",
        "c_evictions_total",
    }
    evictions[0] = 4
    assert parse_samples(render(registry).decode())["c_evictions_total"] == 4


def test_parsed_labels_are_sorted_by_name() -> None:
    text = 'x_total{topic="t",reason="r"} 2\n'
    assert parse_samples(text) == {'x_total{reason="r",topic="t"}': 2.0}


def test_labelled_counts_render_as_the_labelled_counter_they_replace() -> None:
    counted, kept = new_registry(), new_registry()
    counts = LabelledCounts("x_records_total", "Records.", ["topic", "kind"], counted)
    counter = Counter("x_records", "Records.", ["topic", "kind"], registry=kept)
    assert metric_names(counted) == metric_names(kept) == {"x_records_total"}
    for labels, amount in ((("a", "in"), 1), (("b", "out"), 2), (("a", "in"), 4)):
        counts.inc(labels, amount)
        counter.labels(*labels).inc(amount)
    assert (
        parse_samples(render(counted).decode())
        == parse_samples(render(kept).decode())
        == {
            'x_records_total{kind="in",topic="a"}': 5.0,
            'x_records_total{kind="out",topic="b"}': 2.0,
        }
    )
