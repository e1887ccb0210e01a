"""``air-exstream demo``: the whole system end to end on local defaults.

1. start a real Kafka broker (or use ``KAFKA_BOOTSTRAP_SERVERS``) and apply the topology;
2. round-trip one sample record of every schema through Kafka;
3. publish a seeded Air Inc. workload (templates, rules, preferences, then account and case
   events with a share of invalid records);
4. run the routing worker as a separate process until it has consumed everything;
5. read back what came out (commands by channel, suppressions, alignment alerts, dead letters),
   verify the audit chain, print a summary and write it as JSON;
6. stop everything it started.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from streams.audit.reader import verify_topic
from streams.codec import codec_for
from streams.demo.processes import WorkerProcess, wait_consumed, wait_stable_count
from streams.demo.samples import sample_records
from streams.domain.records import (
    AlignmentAlert,
    AuditKind,
    AuditRecord,
    CompositionCommand,
    DeadLetter,
)
from streams.localkafka import LocalKafka
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

Echo = Callable[[str], None]


@dataclasses.dataclass(frozen=True, slots=True)
class DemoOptions:
    events: int = 10_000
    customers: int = 1_000
    seed: int = 7
    invalid_share: float = 0.03
    state_dir: Path = Path("build/demo-kafka")
    summary_path: Path = Path("build/demo-summary.json")


ProgressFactory = Callable[[int], AbstractContextManager[Any]]
"""Given a total, a context manager yielding an object with ``update(n)`` (e.g. click's bar)."""


def run_demo(options: DemoOptions, echo: Echo, progress: ProgressFactory) -> dict[str, Any]:
    started = time.monotonic()
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    local: LocalKafka | None = None
    if configured:
        bootstrap = configured
        prefix = f"demo-{uuid.uuid4().hex[:6]}."
        echo(f"Kafka: using the configured cluster {bootstrap} (topics prefixed {prefix!r})")
    else:
        local = LocalKafka(options.state_dir)
        t0 = time.monotonic()
        bootstrap = local.start().bootstrap_servers
        prefix = ""
        echo(f"Kafka: started a local broker at {bootstrap} in {time.monotonic() - t0:.1f} s")
    worker: WorkerProcess | None = None
    try:
        conf = {"bootstrap.servers": bootstrap}
        topology = load_topology("local", prefix=prefix)
        plan = apply_topology(conf, topology)
        echo(f"Topology: {len(plan.create)} topics created, {len(plan.in_sync)} already in place")

        roundtrip = _schema_roundtrip(bootstrap, prefix)
        echo(f"Schemas: {len(roundtrip)} record types round-tripped through Kafka: all equal")

        dataset = generate(
            Scenario(
                seed=options.seed,
                customers=options.customers,
                events=options.events,
                invalid_share=options.invalid_share,
            )
        )
        ref = publish_reference(dataset, topology, conf)
        echo(
            f"Air Inc. simulator: {ref.templates} template versions, {ref.rules} rules, "
            f"{ref.preferences} customer preferences published"
        )
        workdir = options.state_dir.parent / "demo-worker"
        workdir.mkdir(parents=True, exist_ok=True)
        app_id = f"air-exstream-demo-{uuid.uuid4().hex[:6]}"
        worker = WorkerProcess(bootstrap, prefix, app_id, workdir)
        worker.start()
        echo(f"Routing worker: started (log: {worker.log})")
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)

        t0 = time.monotonic()
        with progress(len(dataset.events)) as bar:
            report = publish_events(
                dataset.events, topology, conf, seed=options.seed, progress=bar.update
            )
        inputs = [topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)]
        wait_consumed(bootstrap, app_id, inputs, worker=worker)
        routed_s = time.monotonic() - t0
        intake = sum(1 for _ in read_topic(bootstrap, topology.name(names.AUDIT_INTAKE)))
        wait_stable_count(bootstrap, topology.name(names.AUDIT), intake)
        summary = _summarise(bootstrap, topology, report.events, report.invalid, report.json)
        summary["routing_seconds"] = round(routed_s, 2)
        summary["events_per_second"] = round(report.events / routed_s, 1) if routed_s else None
        summary["schemas_round_tripped"] = roundtrip
        summary["seed"] = options.seed
        summary["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        summary["total_seconds"] = round(time.monotonic() - started, 1)
        options.summary_path.parent.mkdir(parents=True, exist_ok=True)
        options.summary_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return summary
    finally:
        if worker is not None:
            worker.stop()
            echo("Routing worker: stopped")
        if local is not None:
            local.stop()
            echo("Kafka: stopped")


def _schema_roundtrip(bootstrap: str, prefix: str) -> list[str]:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{prefix}demo.schema-roundtrip.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    samples = sample_records()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for record in samples:
        producer.produce(topic, value=codec_for(type(record)).encode(record))
    producer.flush(30)
    got = [r.value for r in read_topic(bootstrap, topic)]
    names_ = []
    for record, raw in zip(samples, got, strict=True):
        decoded = codec_for(type(record)).decode(raw)
        if decoded != record:
            raise AssertionError(f"{type(record).__name__} changed on its way through Kafka")
        names_.append(type(record).__name__)
    admin.delete_topics([topic])
    return names_


def _summarise(
    bootstrap: str, topology: Any, events: int, invalid: int, json_events: int
) -> dict[str, Any]:
    commands = [
        codec_for(CompositionCommand).decode(r.value)
        for r in read_topic(bootstrap, topology.name(names.COMMANDS))
    ]
    alerts = [
        codec_for(AlignmentAlert).decode(r.value)
        for r in read_topic(bootstrap, topology.name(names.ALIGNMENT_ALERTS))
    ]
    dead: Counter[str] = Counter()
    for source in (names.ACCOUNT_EVENTS, names.CASE_EVENTS):
        for r in read_topic(bootstrap, topology.name(names.dlq(source))):
            dead[codec_for(DeadLetter).decode(r.value).error_type] += 1
    audit_kinds: Counter[str] = Counter()
    audit_codec = codec_for(AuditRecord)
    for r in read_topic(bootstrap, topology.name(names.AUDIT)):
        audit_kinds[audit_codec.decode(r.value).kind] += 1
    reports = verify_topic(bootstrap, topology.name(names.AUDIT))
    return {
        "events_in": events,
        "events_json": json_events,
        "events_invalid": invalid,
        "commands": len(commands),
        "commands_by_channel": dict(Counter(c.channel for c in commands).most_common()),
        "commands_by_type": dict(Counter(c.communication_type for c in commands).most_common()),
        "distinct_communication_ids": len({c.communication_id for c in commands}),
        "suppressed_or_undeliverable": audit_kinds.get(AuditKind.SUPPRESSED, 0),
        "alignment_alerts": len(alerts),
        "distinct_alignment_problems": len({a.alert_id for a in alerts}),
        "dead_letters": sum(dead.values()),
        "dead_letters_by_reason": dict(dead.most_common()),
        "audit_records": sum(r.records for r in reports),
        "audit_records_by_kind": dict(audit_kinds.most_common()),
        "audit_chain_verified": all(r.ok for r in reports) and bool(reports),
    }
