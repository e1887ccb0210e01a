"""The routing worker's Prometheus endpoint on the real broker: a worker process routes a
seeded workload (valid and invalid events), and its metrics, scraped over HTTP, agree with
what is on the topics."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.codec import codec_for
from streams.demo.processes import WorkerProcess, free_port, scrape_counters, wait_consumed
from streams.domain.records import DeadLetter
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(seed=1515, customers=60, events=400, invalid_share=0.08)
PREFIX = "air_exstream_routing_"


def _scrape_until(
    url: str, pending: Callable[[dict[str, float]], list[str]], timeout_s: float = 60.0
) -> dict[str, float]:
    """Scrape ``url`` until ``pending(samples)`` names nothing still unsettled (the timers refresh
    lag and tables every 1 s); on the deadline, fail with what was still pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape_counters(url, PREFIX)
        unsettled = pending(samples) if samples else ["no samples"]
        if not unsettled:
            return samples
        assert time.monotonic() < deadline, f"metrics never settled: {unsettled}"
        time.sleep(0.5)


def _sum(samples: dict[str, float], name: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.split("{")[0] == name and all(w in key for w in want)
    )


@pytest.mark.timeout(600)
def test_the_worker_metrics_reflect_what_was_routed(kafka: KafkaCluster, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"met{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    t = topology.name
    dataset = generate(SCENARIO)
    reference = publish_reference(dataset, topology, conf)
    publish_synced_templates(dataset.templates, topology, conf)

    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    app_id = f"router-met-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(
        bootstrap,
        prefix,
        app_id,
        tmp_path,
        env={"AIR_EXSTREAM_METRICS_PORT": str(port), "AIR_EXSTREAM_METRICS_INTERVAL_S": "1"},
    )
    worker.start()
    inputs = [t(names.ACCOUNT_EVENTS), t(names.CASE_EVENTS)]
    try:
        wait_consumed(bootstrap, app_id, [t(names.PREFERENCES)], worker=worker)
        report = publish_events(dataset.events, topology, conf, seed=SCENARIO.seed)
        wait_consumed(bootstrap, app_id, inputs, worker=worker)
        commands = sum(1 for _ in read_topic(bootstrap, t(names.COMMANDS)))
        partitions = sum(
            topology.topic(n).partitions for n in (names.ACCOUNT_EVENTS, names.CASE_EVENTS)
        )

        # counters move at once; lag and tables at the next refresh (every second here)
        def pending(s: dict[str, float]) -> list[str]:
            unsettled = []
            routed = sum(_sum(s, "records_in_total", topic=topic) for topic in inputs)
            if routed != report.events:
                unsettled.append(f"{routed} of {report.events} events counted in")
            lags = {
                k: v
                for k, v in s.items()
                if k.startswith("consumer_lag{") and any(f'"{i}"' in k for i in inputs)
            }
            if len(lags) != partitions or any(lags.values()):
                unsettled.append(f"lag gauges of {partitions} partitions: {lags}")
            communications = s.get('table_entries{table="communications"}')
            if communications != commands:
                unsettled.append(f"{communications} communications for {commands} commands")
            return unsettled

        samples = _scrape_until(url, pending)
        assert worker.alive(), worker.tail()
    finally:
        worker.stop()

    letters: Counter[tuple[str, str]] = Counter()
    for topic in inputs:
        for r in read_topic(bootstrap, t(names.dlq(topic.removeprefix(prefix)))):
            letter = codec_for(DeadLetter).decode(r.value or b"")
            letters[(letter.source_topic, letter.error_type)] += 1

    print(f"\nrouting metrics: {samples}")  # figures for the run's report
    # ---- records in: every published event, per topic
    for topic in inputs:
        assert _sum(samples, "records_in_total", topic=topic) == report.by_topic.get(topic, 0) > 0
    assert _sum(samples, "records_in_total", topic=t(names.PREFERENCES)) == reference.preferences
    # ---- records out and decisions: what is on the commands topic
    assert commands > 100
    assert _sum(samples, "records_out_total", topic=t(names.COMMANDS)) == commands
    assert samples['decisions_total{flow="event",outcome="command"}'] == commands
    assert _sum(samples, "decisions_total", flow="event", outcome="suppressed") > 0
    # ---- dead letters by topic and reason: exactly the dead-letter topics' records
    assert sum(letters.values()) >= report.invalid > 0
    for (topic, reason), n in letters.items():
        assert samples[f'dead_letters_total{{reason="{reason}",topic="{topic}"}}'] == n
    assert sum(_sum(samples, "dead_letters_total", topic=topic) for topic in inputs) == sum(
        letters.values()
    )
    assert _sum(samples, "records_out_total", topic=t(names.dlq(names.ACCOUNT_EVENTS))) == sum(
        n for (topic, _), n in letters.items() if topic == t(names.ACCOUNT_EVENTS)
    )
    # ---- lag: one gauge per assigned input partition, 0 once everything was routed
    lags = {k: v for k, v in samples.items() if k.startswith("consumer_lag{")}
    account_partitions = topology.topic(names.ACCOUNT_EVENTS).partitions
    assert sum(f'topic="{t(names.ACCOUNT_EVENTS)}"' in k for k in lags) == account_partitions
    # ---- commits were timed, against the (default) deadline
    assert samples["commit_duration_seconds_count"] > 0
    assert (
        samples['commit_duration_seconds_bucket{le="+Inf"}']
        == (samples["commit_duration_seconds_count"])
    )
    assert samples["commit_deadline_seconds"] == 90.0
    # ---- state tables: one communication per command (the wait above), preferences, suppression
    assert 0 < samples['table_entries{table="preferences"}'] <= reference.preferences
    assert samples['table_entries{table="suppression"}'] > 0
