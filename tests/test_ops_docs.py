"""docs/ops/: every PromQL expression of the alert rules and of the Grafana dashboard parses,
and references only metrics the code exports (collected from the prometheus_client registries
of each service's metrics objects); README lists every metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from streams.metrics import metric_names
from streams.ondemand.metrics import OnDemandMetrics
from streams.routing.metrics import RoutingMetrics
from streams.sink.metrics import SinkMetrics
from streams.webhook.metrics import WebhookMetrics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
OPS = ROOT / "docs" / "ops"


def exported() -> set[str]:
    names: set[str] = set()
    for metrics in (WebhookMetrics(), OnDemandMetrics(), SinkMetrics(), RoutingMetrics()):
        names |= metric_names(metrics.registry)
    return names


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dash["panels"]
        for target in panel.get("targets", [])
    ]


def selectors(node: Any) -> Iterator[str]:
    """The metric names of every vector selector in a parsed expression."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
        return
    for attr in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attr, None)
        if child is not None:
            yield from selectors(child)
    for arg in getattr(node, "args", None) or ():
        yield from selectors(arg)


def referenced(expr: str) -> set[str]:
    return set(selectors(promql_parser.parse(expr)))


def test_the_selector_walk_finds_every_metric_of_an_expression() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) "
        "> on (instance) 0.5 * max by (instance) (b) and -(c{x='y'}) or d offset 5m"
    )
    assert referenced(expr) == {"a_bucket", "b", "c", "d"}
    with pytest.raises(ValueError, match=r".+"):
        promql_parser.parse("sum(rate(x[5m])")


def test_every_alert_expression_parses_and_uses_exported_metrics() -> None:
    names = exported()
    rules = alert_rules()
    assert rules
    for rule in rules:
        used = referenced(rule["expr"])
        assert used, rule["alert"]
        assert used <= names, f"{rule['alert']}: not exported: {sorted(used - names)}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["for"]


def test_the_alerts_cover_lag_dead_letters_circuit_and_commit_deadline() -> None:
    used = {name for rule in alert_rules() for name in referenced(rule["expr"])}
    assert {
        "air_exstream_routing_consumer_lag",
        "air_exstream_routing_dead_letters_total",
        "air_exstream_sink_circuit_open",
        "air_exstream_routing_commit_duration_seconds_bucket",
        "air_exstream_routing_commit_deadline_seconds",
    } <= used


def test_every_dashboard_expression_parses_and_uses_exported_metrics() -> None:
    names = exported()
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    for title, expr in exprs:
        used = referenced(expr)
        assert used, title
        assert used <= names, f"{title}: not exported: {sorted(used - names)}"


def test_a_metric_missing_from_the_code_is_caught() -> None:
    assert not referenced("rate(air_exstream_routing_no_such_thing_total[5m])") <= exported()


def test_readme_lists_every_metric() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    families = set()
    for metrics in (WebhookMetrics(), OnDemandMetrics(), SinkMetrics(), RoutingMetrics()):
        for family in metrics.registry.collect():
            families.add(family.name + ("_total" if family.type == "counter" else ""))
    missing = sorted(f for f in families if f not in section)
    assert missing == []
    assert "docs/ops/grafana-dashboard.json" in section
    assert "docs/ops/alerts.yml" in section
