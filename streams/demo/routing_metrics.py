"""The routing worker's own metrics in the demo summary, scraped from its endpoint."""

from __future__ import annotations

import socket
from typing import Any

from streams.demo.processes import free_port, scrape_counters
from streams.routing.settings import WorkerSettings
from topology import names

PREFIX = "air_exstream_routing_"


def worker_metrics_port() -> int:
    """The worker's default metrics port when it is free (``curl`` it during the demo), else
    any free port."""
    port = WorkerSettings.model_fields["metrics_port"].default
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return int(port)


def _label(key: str, name: str) -> str:
    return key.split(f'{name}="', 1)[1].split('"', 1)[0]


def summarise_routing_metrics(url: str, topology: Any) -> dict[str, Any]:
    """A few routing metrics as the worker exports them (``{}`` when it cannot be read)."""
    samples = scrape_counters(url, PREFIX)
    if not samples:
        return {}
    events = {topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)}

    def series(name: str) -> dict[str, float]:
        return {k: v for k, v in samples.items() if k.split("{")[0] == name}

    events_in = sum(
        v for k, v in series("records_in_total").items() if _label(k, "topic") in events
    )
    commands = topology.name(names.COMMANDS)
    out = series("records_out_total")
    commands_out = sum(v for k, v in out.items() if _label(k, "topic") == commands)
    by_reason: dict[str, int] = {}
    for key, value in series("dead_letters_total").items():
        if _label(key, "topic") in events:
            reason = _label(key, "reason")
            by_reason[reason] = by_reason.get(reason, 0) + int(value)
    decisions = {
        f"{_label(k, 'flow')}.{_label(k, 'outcome')}": int(v)
        for k, v in sorted(series("decisions_total").items(), key=lambda kv: -kv[1])
    }
    commits = samples.get("commit_duration_seconds_count", 0.0)
    commit_sum = samples.get("commit_duration_seconds_sum", 0.0)
    lags = series("consumer_lag").values()
    return {
        "routing_metrics": {
            "events_in": int(events_in),
            "commands_out": int(commands_out),
            "dead_letters": sum(by_reason.values()),
            "commits": int(commits),
            "commit_mean_ms": round(1000 * commit_sum / commits, 1) if commits else None,
            "max_consumer_lag": int(max(lags, default=0)),
            "source": url,
        },
        "routing_decisions": decisions,
        "routing_dead_letters_by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
    }
