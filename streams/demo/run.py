"""``air-exstream demo``: the whole system end to end on local defaults.

1. start a real Kafka broker (or use ``KAFKA_BOOTSTRAP_SERVERS``) and apply the topology;
2. round-trip one sample record of every schema through Kafka;
3. publish a seeded Air Inc. workload (rules, preferences, then account and case events and the
   portal's document requests, each with a share of invalid records);
4. start the Exstream emulator (with some throttling, errors, bounces and duplicate/out-of-order
   events) and the event receiver, and sync the templates from the emulator's Design API onto
   ``exstream.templates.v1`` (``air-exstream templates sync``);
5. run the routing worker, the on-demand service (a few invoices asked for by the portal) and
   the bulk sink as separate processes until every command became a document and every
   delivery event came back as a status;
6. read back what came out (commands by channel, suppressions, alignment alerts, dead letters,
   documents, deliveries by channel, fallbacks, exceptions), verify the audit chain, print a
   summary and write it as JSON;
7. stop everything it started.

Every child process inherits the environment: with ``KAFKA_SCHEMA_REGISTRY_URL`` set, the
simulator, the template sync, the worker, the receiver, the on-demand service and the sink all
write the Confluent wire format (``tests/demo/test_demo_registry_e2e.py``).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any, Protocol

import orjson
from confluent_kafka import Producer

from streams.audit.keys import generate as generate_keys
from streams.audit.keys import load_public_keys
from streams.audit.reader import verify_topic
from streams.audit.trail import verify_trail
from streams.codec import Codecs
from streams.demo.ondemand import request_documents, start_ondemand, summarise_ondemand
from streams.demo.processes import (
    ProcessFailed,
    ServiceProcess,
    WorkerProcess,
    free_port,
    scrape_counters,
    wait_chained,
    wait_consumed,
    wait_http,
)
from streams.demo.routing_metrics import summarise_routing_metrics, worker_metrics_port
from streams.demo.samples import sample_records
from streams.domain.document_requests import REQUEST_RULE_ID
from streams.domain.records import (
    AlignmentAlert,
    AuditKind,
    AuditRecord,
    CommunicationStatus,
    CompositionCommand,
    DeadLetter,
)
from streams.localkafka import LocalKafka
from streams.simulator.generator import Dataset, Scenario, generate
from streams.simulator.publish import (
    PublishReport,
    publish_events,
    publish_reference,
    publish_requests,
)
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
    document_requests: int = 300
    """Portal document requests on ``air.document-requests.v1`` (the asynchronous path)."""
    ondemand_documents: int = 5
    """Invoices the portal asks the on-demand service for (the synchronous path)."""
    state_dir: Path = Path("build/demo-kafka")
    summary_path: Path = Path("build/demo-summary.json")
    emulator_faults: tuple[str, ...] = (
        "--rate-limit",
        "60",
        "--error-rate",
        "0.02",
        "--bounce-rate",
        "0.1",
        "--duplicate-callback-rate",
        "0.05",
        "--out-of-order-callback-rate",
        "0.05",
    )
    """``air-exstream exstream-emulator`` options: the weather on the Exstream side."""


class ProgressFactory(Protocol):
    """Given a total (and a label), a context manager yielding an object with ``update(n)``."""

    def __call__(self, total: int, label: str = ...) -> AbstractContextManager[Any]: ...


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
    services: list[ServiceProcess] = []
    try:
        conf = {"bootstrap.servers": bootstrap}
        topology = load_topology("local", prefix=prefix)
        plan = apply_topology(conf, topology)
        echo(f"Topology: {len(plan.create)} topics created, {len(plan.in_sync)} already in place")

        roundtrip = _schema_roundtrip(bootstrap, prefix)
        echo(f"Schemas: {len(roundtrip)} record types round-tripped through Kafka: all equal")
        wire_format = (
            "Confluent wire format (KAFKA_SCHEMA_REGISTRY_URL)"
            if Codecs.from_environment().writes_confluent
            else "Avro single-object encoding"
        )
        echo(f"Framing: every component writes {wire_format}")

        dataset = generate(
            Scenario(
                seed=options.seed,
                customers=options.customers,
                events=options.events,
                invalid_share=options.invalid_share,
                document_requests=options.document_requests,
            )
        )
        ref = publish_reference(dataset, topology, conf)
        echo(
            f"Air Inc. simulator: {ref.rules} rules, {ref.preferences} customer preferences "
            "published"
        )
        workdir = options.state_dir.parent / "demo-worker"
        workdir.mkdir(parents=True, exist_ok=True)
        exstream = _start_exstream_side(
            bootstrap, prefix, workdir, services, echo, options.emulator_faults
        )
        synced = _sync_templates(bootstrap, prefix, exstream)
        echo(
            f"Template sync: {synced['versions']} communication versions read from Exstream's "
            f"Design API, {synced['usable']} usable (APPROVED), {synced['published']} published "
            f"on {topology.name(names.TEMPLATES)}"
        )
        app_id = f"air-exstream-demo-{uuid.uuid4().hex[:6]}"
        # a checkpoint signing key made for this run: the worker signs the audit chains with it
        audit_keys = generate_keys(workdir / f"{app_id}.audit.key", workdir / f"{app_id}.audit.pub")
        metrics_port = worker_metrics_port()
        worker_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        worker = WorkerProcess(
            bootstrap,
            prefix,
            app_id,
            workdir,
            env={
                "AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(audit_keys.private_file),
                # demo-sized cadence: the default (every 1,000 records or 10 s per partition)
                # would leave a few-seconds demo run mostly unconfirmed
                "AIR_EXSTREAM_AUDIT_CHECKPOINT_EVERY_RECORDS": "100",
                "AIR_EXSTREAM_METRICS_PORT": str(metrics_port),
            },
        )
        worker.start()
        echo(f"Routing worker: started (log: {worker.log}, metrics: {worker_metrics})")
        wait_consumed(bootstrap, app_id, [topology.name(names.PREFERENCES)], worker=worker)

        t0 = time.monotonic()
        with progress(len(dataset.events), "Air Inc. events") as bar:
            report = publish_events(
                dataset.events, topology, conf, seed=options.seed, progress=bar.update
            )
        inputs = [topology.name(names.ACCOUNT_EVENTS), topology.name(names.CASE_EVENTS)]
        wait_consumed(bootstrap, app_id, inputs, worker=worker)
        routed_s = time.monotonic() - t0
        echo(f"Routing: {report.events} events routed in {routed_s:.1f} s")
        requests = publish_requests(dataset.document_requests, topology, conf, seed=options.seed)
        wait_consumed(bootstrap, app_id, [topology.name(names.DOCUMENT_REQUESTS)], worker=worker)
        echo(
            f"Portal: {requests.requests} document requests decided "
            f"({requests.invalid} of them invalid)"
        )

        ondemand, portal = start_ondemand(
            bootstrap,
            prefix,
            workdir,
            services,
            exstream_url=exstream.emulator_url,
            client_secret=exstream.client_secret,
            customers=[p.customer_id for p in dataset.preferences[: options.ondemand_documents]],
        )
        echo(f"{ondemand.name}: started (log: {ondemand.log})")
        served = request_documents(portal, ondemand)
        echo(
            f"Portal (synchronous): {served['ondemand_documents_served']} of "
            f"{served['ondemand_requests']} invoices served as PDFs by the on-demand service"
        )

        _start_sink(bootstrap, prefix, workdir, services, echo, exstream)
        t1 = time.monotonic()
        documents = _wait_exstream_side(bootstrap, topology, exstream, services, worker, progress)
        exstream_s = time.monotonic() - t1
        echo(f"Exstream side: {documents} documents composed and delivered in {exstream_s:.1f} s")
        wait_chained(bootstrap, topology.name(names.AUDIT_INTAKE), topology.name(names.AUDIT))
        summary = _summarise(bootstrap, topology, report.events, report.invalid, report.json)
        summary.update(_summarise_requests(bootstrap, topology, requests, dataset))
        summary.update(_summarise_exstream(bootstrap, topology, exstream))
        summary.update(served)
        summary.update(summarise_ondemand(bootstrap, topology))
        routing = summarise_routing_metrics(worker_metrics, topology)
        summary.update(routing)
        if routing:
            shown = ", ".join(f"{k}={v}" for k, v in routing["routing_metrics"].items())
            echo(f"Routing worker metrics (scraped): {shown}")
        summary["templates_synced"] = {**synced, "source": "Exstream Design API (emulator)"}
        summary.update(_summarise_checkpoints(bootstrap, topology, audit_keys.public_file))
        summary["routing_seconds"] = round(routed_s, 2)
        summary["events_per_second"] = round(report.events / routed_s, 1) if routed_s else None
        summary["exstream_side_seconds"] = round(exstream_s, 2)
        summary["topic_prefix"] = prefix
        summary["schemas_round_tripped"] = roundtrip
        summary["wire_format"] = wire_format
        summary["seed"] = options.seed
        summary["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        summary["total_seconds"] = round(time.monotonic() - started, 1)
        options.summary_path.parent.mkdir(parents=True, exist_ok=True)
        options.summary_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return summary
    finally:
        # every process is stopped even when reporting fails (e.g. stdout is a closed pipe)
        for service in reversed(services):
            service.stop()
            _say(echo, f"{service.name}: stopped")
        if worker is not None:
            worker.stop()
            _say(echo, "Routing worker: stopped")
        if local is not None:
            local.stop()
            _say(echo, "Kafka: stopped")


def _say(echo: Echo, line: str) -> None:
    with suppress(OSError):
        echo(line)


def _schema_roundtrip(bootstrap: str, prefix: str) -> list[str]:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{prefix}demo.schema-roundtrip.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    samples = sample_records()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    codecs = Codecs.from_environment()
    for record in samples:
        producer.produce(topic, value=codecs.for_topic(topic, type(record)).encode(record))
    producer.flush(30)
    got = [r.value for r in read_topic(bootstrap, topic)]
    names_ = []
    for record, raw in zip(samples, got, strict=True):
        decoded = codecs.for_topic(topic, type(record)).decode(raw)
        if decoded != record:
            raise AssertionError(f"{type(record).__name__} changed on its way through Kafka")
        names_.append(type(record).__name__)
    admin.delete_topics([topic])
    return names_


def _summarise(
    bootstrap: str, topology: Any, events: int, invalid: int, json_events: int
) -> dict[str, Any]:
    codecs = Codecs.from_environment(topology)
    commands = [
        codecs.for_topic(topology.name(names.COMMANDS), CompositionCommand).decode(r.value)
        for r in read_topic(bootstrap, topology.name(names.COMMANDS))
    ]
    alerts = [
        codecs.for_topic(topology.name(names.ALIGNMENT_ALERTS), AlignmentAlert).decode(r.value)
        for r in read_topic(bootstrap, topology.name(names.ALIGNMENT_ALERTS))
    ]
    dead: Counter[str] = Counter()
    for source in (names.ACCOUNT_EVENTS, names.CASE_EVENTS):
        dlq_codec = codecs.for_topic(topology.name(names.dlq(source)), DeadLetter)
        for r in read_topic(bootstrap, topology.name(names.dlq(source))):
            dead[dlq_codec.decode(r.value).error_type] += 1
    audit_kinds: Counter[str] = Counter()
    audit_codec = codecs.for_topic(topology.name(names.AUDIT), AuditRecord)
    for r in read_topic(bootstrap, topology.name(names.AUDIT)):
        audit_kinds[audit_codec.decode(r.value).kind] += 1
    reports = verify_topic(bootstrap, topology.name(names.AUDIT), codecs=codecs)
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


def _summarise_checkpoints(bootstrap: str, topology: Any, public_key: Path) -> dict[str, Any]:
    """The audit trail against the checkpoints the worker signed with this run's key."""
    report = verify_trail(
        bootstrap,
        topology.name(names.AUDIT),
        topology.name(names.AUDIT_CHECKPOINTS),
        load_public_keys([public_key]),
    )
    return {
        "audit_signed_verified": report.verified,
        "audit_unconfirmed": report.unconfirmed,
        "audit_violations": len(report.violations),
    }


def _summarise_requests(
    bootstrap: str, topology: Any, report: PublishReport, dataset: Dataset
) -> dict[str, Any]:
    """Flow 5's asynchronous path: requests in, commands (one per request id), dead letters."""
    codecs = Codecs.from_environment(topology)
    letters = codecs.for_topic(topology.name(names.dlq(names.DOCUMENT_REQUESTS)), DeadLetter)
    commands = [
        c
        for c in (
            codecs.for_topic(topology.name(names.COMMANDS), CompositionCommand).decode(r.value)
            for r in read_topic(bootstrap, topology.name(names.COMMANDS))
        )
        if c.rule_id == REQUEST_RULE_ID
    ]
    dead: Counter[str] = Counter(
        letters.decode(r.value).error_type
        for r in read_topic(bootstrap, topology.name(names.dlq(names.DOCUMENT_REQUESTS)))
    )
    retried = sum(r.retry for r in dataset.document_requests)
    return {
        "document_requests_in": report.requests,
        "document_requests_invalid": report.invalid,
        "document_requests_retried": retried,
        "document_request_commands": len(commands),
        "document_request_commands_by_type": dict(
            Counter(c.communication_type for c in commands).most_common()
        ),
        "document_request_dead_letters": sum(dead.values()),
        "document_request_dead_letters_by_reason": dict(dead.most_common()),
        # every request is a command, a dead letter (the invalid ones), or a retry of one
        "document_requests_accounted_for": (
            len(commands) + retried == report.requests - report.invalid
            and sum(dead.values()) == report.invalid
            and len({c.communication_id for c in commands}) == len(commands)
        ),
    }


@dataclasses.dataclass(slots=True)
class ExstreamSide:
    emulator_url: str
    webhook_metrics_url: str
    client_secret: str
    sink_metrics_url: str = ""


def _start_exstream_side(
    bootstrap: str,
    prefix: str,
    workdir: Path,
    services: list[ServiceProcess],
    echo: Echo,
    faults: tuple[str, ...],
) -> ExstreamSide:
    """The emulator and the event receiver, with per-run secrets (never printed)."""
    client_secret = secrets.token_urlsafe(24)
    hook_secret = secrets.token_urlsafe(24)
    emulator_port, hook_port = free_port(), free_port()
    url = f"http://127.0.0.1:{emulator_port}"
    hook = f"http://127.0.0.1:{hook_port}"
    emulator = ServiceProcess(
        "Exstream emulator",
        [
            "exstream-emulator",
            "--port",
            str(emulator_port),
            "--events-url",
            f"{hook}/hooks/exstream",
            *faults,
        ],
        workdir,
        {"EXSTREAM_CLIENT_SECRET": client_secret, "EXSTREAM_WEBHOOK_SECRET": hook_secret},
    )
    receiver = ServiceProcess(
        "Webhook receiver",
        ["webhook", "--port", str(hook_port), "--prefix", prefix, "--no-apply-topology"],
        workdir,
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_WEBHOOK_SECRET": hook_secret},
    )
    for service, health in ((emulator, f"{url}/_emulator/healthz"), (receiver, f"{hook}/healthz")):
        services.append(service)
        service.start()
        wait_http(health, service)
        echo(f"{service.name}: started (log: {service.log})")
    return ExstreamSide(url, f"{hook}/metrics", client_secret)


def _sync_templates(bootstrap: str, prefix: str, side: ExstreamSide) -> dict[str, Any]:
    """``air-exstream templates sync`` once, against the emulator's Design API."""
    done = subprocess.run(  # fixed argument list, no shell
        [sys.executable, "-m", "streams", "templates", "sync", "--prefix", prefix,
         "--no-apply-topology", "--loglevel", "warning"],
        capture_output=True,
        timeout=180,
        check=False,
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXSTREAM_URL": side.emulator_url,
            "EXSTREAM_CLIENT_SECRET": side.client_secret,
        },
    )  # fmt: skip
    if done.returncode != 0:
        raise ProcessFailed(f"templates sync failed:\n{done.stdout.decode()}{done.stderr.decode()}")
    report: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return report


def _start_sink(
    bootstrap: str,
    prefix: str,
    workdir: Path,
    services: list[ServiceProcess],
    echo: Echo,
    side: ExstreamSide,
) -> ExstreamSide:
    sink_metrics = free_port()
    sink = ServiceProcess(
        "Bulk sink",
        [
            "sink",
            "--prefix",
            prefix,
            "--group-id",
            f"air-exstream-demo-sink-{uuid.uuid4().hex[:6]}",
            "--metrics-port",
            str(sink_metrics),
        ],
        workdir,
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EXSTREAM_URL": side.emulator_url,
            "EXSTREAM_CLIENT_SECRET": side.client_secret,
        },
    )
    services.append(sink)
    sink.start()
    echo(f"{sink.name}: started (log: {sink.log})")
    side.sink_metrics_url = f"http://127.0.0.1:{sink_metrics}/metrics"
    return side


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        result: dict[str, Any] = orjson.loads(response.read())
        return result


def _wait_exstream_side(
    bootstrap: str,
    topology: Any,
    side: ExstreamSide,
    services: list[ServiceProcess],
    worker: WorkerProcess,
    progress: ProgressFactory,
    timeout_s: float = 600.0,
) -> int:
    """Until every command (fallbacks included) is a document and the statuses stop changing."""
    commands_topic = topology.name(names.COMMANDS)
    status_topic = topology.name(names.COMMUNICATION_STATUS)
    deadline = time.monotonic() + timeout_s
    expected = sum(1 for _ in read_topic(bootstrap, commands_topic))
    last_statuses, stable = -1, 0
    with progress(expected, "Exstream documents") as bar:
        shown = 0
        while time.monotonic() < deadline:
            if not worker.alive():
                raise ProcessFailed(f"routing worker exited:\n{worker.tail()}")
            for service in services:
                if not service.alive():
                    raise ProcessFailed(f"{service.name} exited:\n{service.tail()}")
            documents = int(_get_json(f"{side.emulator_url}/_emulator/ledger")["communications"])
            bar.update(max(0, min(documents, expected) - shown))
            shown = max(shown, min(documents, expected))
            if documents >= expected:
                expected = sum(1 for _ in read_topic(bootstrap, commands_topic))  # + fallbacks
                statuses = sum(1 for _ in read_topic(bootstrap, status_topic))
                stable = stable + 1 if statuses == last_statuses and documents >= expected else 0
                last_statuses = statuses
                if stable >= 3:
                    return documents
            time.sleep(1.0)
    raise ProcessFailed(f"the Exstream side did not finish in {timeout_s} s")


def _summarise_exstream(bootstrap: str, topology: Any, side: ExstreamSide) -> dict[str, Any]:
    ledger = _get_json(f"{side.emulator_url}/_emulator/ledger")
    status_codec = Codecs.from_environment(topology).for_topic(
        topology.name(names.COMMUNICATION_STATUS), CommunicationStatus
    )
    statuses = [
        status_codec.decode(r.value)
        for r in read_topic(bootstrap, topology.name(names.COMMUNICATION_STATUS))
    ]
    metadata = sum(1 for _ in read_topic(bootstrap, topology.name(names.DOCUMENT_METADATA)))
    confirmations = {"MAILED", "EMAIL_DELIVERED", "WEB_POSTED", "SMS_DELIVERED", "PUSH_DELIVERED"}
    delivered = Counter(
        s.channel for s in statuses if s.status in confirmations and not s.exception_code
    )
    submissions = sum(1 for _ in read_topic(bootstrap, topology.name(names.SUBMISSIONS)))
    return {
        "documents_composed": ledger["documents"],
        "communications_with_more_than_one_document": ledger[
            "communications_with_more_than_one_document"
        ],
        "submissions_recorded": submissions,
        "status_events": len(statuses),
        "delivered_by_channel": dict(delivered.most_common()),
        "bounced": sum(1 for s in statuses if s.status == "EMAIL_BOUNCED"),
        "fallbacks": sum(1 for s in statuses if s.fallback_of),
        "exceptions": dict(Counter(s.exception_code for s in statuses if s.exception_code)),
        "document_metadata_records": metadata,
        "sink_metrics": scrape_counters(side.sink_metrics_url, "air_exstream_sink_"),
        "emulator_stats": _get_json(f"{side.emulator_url}/_emulator/stats"),
        "webhook_metrics": scrape_counters(side.webhook_metrics_url, ""),
    }
