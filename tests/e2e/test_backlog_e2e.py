"""The join under backlog: preferences and events ALL published before a cold worker starts.

Issue 14 measured the failure this guards against with 1,000,000 preferences then 20,000 events:
the events agent went through the event backlog while the preferences agent had loaded about 1 %
of the preferences, so almost every event was judged without its customer's preference. Here
the shape is the same, scaled to 100,000 preferences and 5,000 events so that the test runs in
about a minute on a shared 2-core machine: loading is per partition and linear, and 100,000
preferences take the worker many times longer to load than 5,000 events take to route, which is
the race the full-size run lost (so a worker without the alignment fails this test too).

The second test has preferences that change *after* some events (all still published before the
worker starts): those events must be joined with the preference in force when they were
published, not with the later one the preferences agent may already have applied.

Both compare every command with the independent reference (``tests/e2e/reference.py``). The
first keeps the preferences in rocksdb (``AIR_EXSTREAM_STORE=rocksdb://``), the second in memory:
the join must not depend on the store.

The issue's full size runs with the same assertions on request (not in CI: it takes the machine
for many minutes): ``BACKLOG_CUSTOMERS=1000000 BACKLOG_EVENTS=20000 .venv/bin/pytest
tests/e2e/test_backlog_e2e.py -k cold``.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.codec import codec_for
from streams.demo.processes import WorkerProcess, wait_consumed
from streams.domain.records import AccountEvent, BusinessEvent, CompositionCommand, Preference
from streams.simulator.generator import Dataset, Scenario, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import (
    assert_commands_match,
    changed_preference,
    publish_reference_and_templates,
)
from tests.e2e.reference import expected_outcome
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

BACKLOG = Scenario(
    seed=20261203,
    customers=int(os.environ.get("BACKLOG_CUSTOMERS", "100000")),
    events=int(os.environ.get("BACKLOG_EVENTS", "5000")),
    invalid_share=0.02,
)
BACKLOG_TIMEOUT_S = 900 * max(1, BACKLOG.customers // 100_000)
CHANGES = Scenario(seed=20261204, customers=400, events=3_000, invalid_share=0.0)


def _topology(kafka: KafkaCluster, name: str) -> tuple[Topology, dict[str, str]]:
    topology = load_topology("local", prefix=f"{name}{uuid.uuid4().hex[:6]}.")
    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    apply_topology(conf, topology)
    return topology, conf


def _run_cold_worker(
    kafka: KafkaCluster, topology: Topology, tmp_path: Path, name: str, store: str = "memory://"
) -> list[CompositionCommand]:
    """Start a worker on the published backlog, wait until it committed every event, stop it;
    the commands it wrote (read_committed). Asserts the join never gave up waiting."""
    bootstrap = kafka.bootstrap_servers
    app_id = f"{name}-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(
        bootstrap, topology.prefix, app_id, tmp_path, env={"AIR_EXSTREAM_STORE": store}
    )
    worker.start()
    try:
        wait_consumed(
            bootstrap,
            app_id,
            [topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)],
            worker=worker,
            timeout_s=BACKLOG_TIMEOUT_S - 300,
        )
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "join alignment: gave up" not in log, worker.tail()
    codec = codec_for(CompositionCommand)
    return [codec.decode(r.value) for r in read_topic(bootstrap, topology.name(names.COMMANDS))]


def _source(topology: Topology) -> Callable[[BusinessEvent], str]:
    account, case = topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)
    return lambda e: account if isinstance(e, AccountEvent) else case


@pytest.mark.timeout(BACKLOG_TIMEOUT_S)
def test_a_cold_worker_joins_a_backlog_with_the_preferences_published_before_each_event(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    topology, conf = _topology(kafka, "backlog")
    dataset = generate(BACKLOG)
    publish_reference_and_templates(dataset, topology, conf)
    time.sleep(0.05)  # every event's timestamp after every preference's
    publish_events(dataset.events, topology, conf, seed=BACKLOG.seed)

    produced = _run_cold_worker(kafka, topology, tmp_path, "backlog", "rocksdb://")

    expected = expected_outcome(dataset, source_topics=_source(topology))
    assert_commands_match(produced, expected.commands)
    # the join mattered: without the preferences nearly every decision is undeliverable
    assert len(expected.commands) > 2_000
    assert len(expected.commands) > 2 * len(expected.undeliverable)


@pytest.mark.timeout(900)
def test_a_preference_changed_after_an_event_does_not_affect_that_event(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    topology, conf = _topology(kafka, "changes")
    dataset = generate(CHANGES)
    half = len(dataset.events) // 2
    before, after = dataset.events[:half], dataset.events[half:]
    changed = [changed_preference(p, i) for i, p in enumerate(dataset.preferences)]

    # preferences, events, every preference changed, more events: all before the worker starts
    publish_reference_and_templates(dataset, topology, conf)
    time.sleep(0.05)  # strictly increasing timestamps from one phase to the next
    publish_events(before, topology, conf, seed=CHANGES.seed)
    time.sleep(0.05)
    publish_reference(Dataset(templates=[], rules=[], preferences=changed), topology, conf)
    time.sleep(0.05)
    publish_events(after, topology, conf, seed=CHANGES.seed + 1)

    produced = _run_cold_worker(kafka, topology, tmp_path, "changes")

    first = {p.customer_id: p for p in dataset.preferences}
    later = {p.customer_id: p for p in changed}
    after_ids = {sim.record.event_id for sim in after}
    before_ids = {sim.record.event_id for sim in before}
    assert not after_ids & before_ids

    def preference_at(event: BusinessEvent) -> Preference | None:
        return (later if event.event_id in after_ids else first).get(event.customer_id)

    source = _source(topology)
    expected = expected_outcome(
        dataset,
        source_topics=source,
        preference_at=preference_at,
    )
    assert_commands_match(produced, expected.commands)

    # the test can tell: joining the early events with the later preferences differs
    joined_late = expected_outcome(
        dataclasses.replace(dataset, preferences=changed),
        source_topics=source,
    )
    early = {c for c, cmd in expected.commands.items() if cmd.source_event_id in before_ids}
    assert len(early) > 200
    differing = [c for c in early if joined_late.commands.get(c) != expected.commands[c]]
    assert len(differing) > 100, "the changed preferences must change the early events' commands"
