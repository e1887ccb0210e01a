"""The routing worker on the project's own transactional engine (:mod:`streams.engine`).

Wiring only: topics, tables (changelogs ``<app_id>-<table>-changelog``), codecs and handlers
(:mod:`.handlers`), their ports over the engine (:mod:`.engine_adapters`):

- ``air.preferences.v1``, ``air.account-events.v1``, ``air.case-events.v1`` and
  ``audit.intake.v1`` are co-partitioned inputs: the engine hands partition p of all four over in
  timestamp order, so an event meets every preference published before it; an event still
  waits for the rules and templates published before it
  (:class:`~.engine_adapters.ReferenceAdmission`);
- the rules and templates views (:class:`~.reference.ReferenceView`) run as asyncio tasks
  beside the engine, which starts once both caught up; their topics are inputs too, for the
  alignment alerts of a change (:class:`~.handlers.reference.ReferenceChanges`);
- delivery tracking (:func:`~.tracking.tracking_handlers`: ``exstream.delivery-events.v1``, the
  SLA timer, commands registered in their record's transaction) and document requests
  (:func:`~.requests.request_handler`, after the templates published before them), co-partitioned
  with the events; the SLA timer runs in an engine transaction (its reports exactly-once here);
- audit records: :class:`~.engine_adapters.EngineOutputs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streams.audit.signing import AuditSigning
from streams.codec import Codecs
from streams.config import KafkaSettings
from streams.diagnostics import install_task_dump
from streams.domain.records import (
    CommRule,
    DeadLetter,
    TemplateVersion,
)
from streams.domain.reference_checks import rule_problems, template_problems
from streams.engine.api import Outputs, PartitionsChanged, Record, Store, Timer
from streams.engine.config import EngineConfig
from streams.engine.instance import InstanceSlot, claim
from streams.routing.adapters import (
    TopicAlerts,
    TopicChainedAudit,
    TopicCheckpoints,
    TopicEventOutputs,
)
from streams.routing.counters import Counters
from streams.routing.engine_adapters import (
    CountedOutputs,
    EngineOutputs,
    EngineTopic,
    HandledRecord,
    ReferenceAdmission,
    StoreGuard,
    StoreTable,
)
from streams.routing.handlers.audit import AuditChains, AuditWriter
from streams.routing.handlers.decode import key_mismatch
from streams.routing.handlers.events import EventCodecs, EventsHandler, ReferenceSource
from streams.routing.handlers.preferences import PreferencesHandler
from streams.routing.handlers.reference import ReferenceChanges
from streams.routing.handlers.reference_views import ReferenceViews
from streams.routing.join_gate import GateCounters, JoinGate, ProgressSignal
from streams.routing.metrics import PartitionPosition, RoutingMetrics
from streams.routing.reference import Decoder, ReferenceView
from streams.routing.requests import RequestCounters, RequestsContext, request_handler
from streams.routing.settings import WorkerSettings
from streams.routing.tracking import (
    Tracking,
    TrackingContext,
    TrackingCounters,
    tracking_handlers,
)
from streams.routing.watchdog import Deadline
from streams.routing.worker_codecs import WorkerCodecs, usable
from topology import names
from topology.model import Topology

log = logging.getLogger(__name__)

TABLES = (
    "preferences",
    "suppression",
    "audit-chain-heads",
    "communications",
    "parked-delivery-events",
)
"""The worker's tables (each with its changelog ``<app_id>-<table>-changelog``)."""
TRANSACTION_TIMEOUT_MS = 20_000
"""The engine producer's transaction timeout. A transaction spans only its records' produce and
its commit (the handlers' sends are held until the batch is handled, so no handler wait, for
the registry or the reference views, runs inside one): above the ~11-14 s a lost broker's
partitions take to move, and how long a dead worker's open transaction holds its partitions
(KIP-447) before the broker aborts it."""
ADMISSION_MAX_WAIT_S = 30.0
"""The longest one event waits for the rules and templates published before it: the engine's
loop waits with it (nothing consumed meanwhile), so it stays far below the consumer's
``max.poll.interval.ms`` (300 s)."""


class RoutingEngine(Protocol):
    """The engine's surface the worker uses (``streams.engine.engine.Engine``)."""

    @property
    def outputs(self) -> Outputs: ...
    def input(self, topic: str, handler: Callable[[Record], Awaitable[None]]) -> None: ...
    def store(self, name: str, *, changelog_topic: str, partitions: int) -> Store: ...
    def timer(self, interval_s: float, timer: Timer) -> None: ...
    def on_assigned(self, fn: PartitionsChanged) -> None: ...
    def on_revoked(self, fn: PartitionsChanged) -> None: ...
    def on_committed(self, fn: Callable[[float], None]) -> None: ...
    def positions(self) -> dict[tuple[str, int], int]: ...
    def end_offsets(self) -> dict[tuple[str, int], int]: ...
    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class EngineWorker:
    """The worker's parts around the engine (see :func:`run`)."""

    engine: RoutingEngine
    views: ReferenceViews
    rules: ReferenceView[CommRule]
    templates: ReferenceView[TemplateVersion]
    counters: Counters
    gate_counters: GateCounters
    tracking: TrackingCounters
    requests: RequestCounters
    tables: dict[str, StoreTable]


@dataclass(frozen=True, slots=True)
class _Wiring:
    """What the builders below share: the topology, settings and codecs, the counted outputs
    and the tables."""

    topology: Topology
    worker: WorkerSettings
    codecs: Codecs
    wc: WorkerCodecs
    out: CountedOutputs
    current: HandledRecord
    counters: Counters
    metrics: RoutingMetrics
    tables: dict[str, StoreTable]

    def topic(self, logical: str) -> EngineTopic:
        return EngineTopic(self.out, self.topology.name(logical))

    def partitions(self, *logical: str) -> dict[str, int]:
        return {self.topology.name(n): self.topology.topic(n).partitions for n in logical}


@dataclass(frozen=True, slots=True)
class _ReferenceSide:
    """The rules and templates views, and the admission that holds an event (or a document
    request) until the ones published before it are in them."""

    rules: ReferenceView[CommRule]
    templates: ReferenceView[TemplateVersion]
    views: ReferenceViews
    admission: ReferenceAdmission
    gate_counters: GateCounters


_CUSTOMER_INPUTS = (names.PREFERENCES, names.ACCOUNT_EVENTS, names.CASE_EVENTS)


def install(
    engine: RoutingEngine,
    *,
    kafka_kwargs: dict[str, Any],
    worker: WorkerSettings,
    topology: Topology,
    codecs: Codecs,
    metrics: RoutingMetrics,
) -> EngineWorker:
    """Register the worker's inputs, stores and timers on ``engine``."""
    current = HandledRecord()
    tables = {
        t: StoreTable(
            engine.store(
                t, changelog_topic=f"{worker.app_id}-{t}-changelog", partitions=worker.partitions
            ),
            current,
        )
        for t in TABLES
    }
    # keyed records go to their key's murmur2 partition (api.py); each send counted by topic
    w = _Wiring(
        topology=topology,
        worker=worker,
        codecs=codecs,
        wc=WorkerCodecs.prepared(codecs, topology),
        out=CountedOutputs(engine.outputs, metrics.record_out),
        current=current,
        counters=Counters(),
        metrics=metrics,
        tables=tables,
    )
    engine.on_committed(metrics.commit_duration.observe)
    side = _reference_side(w, kafka_kwargs)
    admission, reference = side.admission, side.views.source()
    signing = AuditSigning.from_environment()
    chains, shared = _audit_and_letters(w, signing)
    tracking_counters, request_counters = TrackingCounters(), RequestCounters()
    tracking = _tracking(w, shared, tracking_counters)
    events = _events(w, shared, tracking, reference)
    request = _requests(w, shared, tracking, side.views, request_counters)
    changes = _reference_changes(w, shared, reference)
    preferences = PreferencesHandler(
        table=tables["preferences"],
        decode=w.wc.preference.decode,
        encode_state=w.wc.preference_state.encode,
        dead_letter=shared.dead_letter,
        counters=w.counters,
        partition_counts=w.partitions(*_CUSTOMER_INPUTS),
        history_ms=worker.preference_history_ms,
        max_versions=worker.preference_max_versions,
        registry_wait_s=worker.registry_wait_s,
    )
    writer = AuditWriter(
        chains=chains,
        decode=w.wc.intake.decode,
        dead_letter=shared.dead_letter,
        registry_wait_s=worker.registry_wait_s,
    )

    def event_input(logical: str, decode: Any) -> Callable[[Record], Awaitable[None]]:
        source_topic = topology.name(logical)

        async def handle(record: Record) -> None:
            await admission.await_reference(record)
            await events.handle(record, decode=decode, source_topic=source_topic)

        return handle

    async def document_request(record: Record) -> None:
        await admission.await_templates(record)
        await request(record)

    for logical, handler in (
        (names.PREFERENCES, preferences.handle),
        (names.ACCOUNT_EVENTS, event_input(names.ACCOUNT_EVENTS, w.wc.account.decode)),
        (names.CASE_EVENTS, event_input(names.CASE_EVENTS, w.wc.case.decode)),
        (names.AUDIT_INTAKE, writer.handle),
        (names.COMM_RULES, changes.rule_changed),
        (names.TEMPLATES, changes.template_changed),
        (names.DELIVERY_EVENTS, tracking.track_delivery),
        (names.DOCUMENT_REQUESTS, document_request),
    ):
        engine.input(topology.name(logical), current.wrap(handler, record_in=metrics.record_in))
    engine.timer(worker.sla_check_interval_s, tracking.sla_check)
    engine.on_revoked(events.forget)
    if signing is not None:
        checkpoints = w.topic(names.AUDIT_CHECKPOINTS)
        engine.timer(1.0, lambda: signing.sign_idle(checkpoints.send))
        engine.on_revoked(signing.forget)
    return EngineWorker(
        engine=engine,
        views=side.views,
        rules=side.rules,
        templates=side.templates,
        counters=w.counters,
        gate_counters=side.gate_counters,
        tracking=tracking_counters,
        requests=request_counters,
        tables=tables,
    )


def _reference_side(w: _Wiring, kafka_kwargs: dict[str, Any]) -> _ReferenceSide:
    progress, gate_counters = ProgressSignal(), GateCounters()

    def view(logical: str, decode: Decoder[Any]) -> ReferenceView[Any]:
        return ReferenceView(
            topic=w.topology.name(logical),
            partitions=w.topology.topic(logical).partitions,
            decode=decode,
            client_kwargs=kafka_kwargs,
            on_progress=progress.notify,
            fetch_wait_ms=w.worker.reference_fetch_wait_ms,
        )

    rules: ReferenceView[CommRule] = view(names.COMM_RULES, usable(w.wc.rule.decode, rule_problems))
    templates: ReferenceView[TemplateVersion] = view(
        names.TEMPLATES, usable(w.wc.template.decode, template_problems)
    )
    return _ReferenceSide(
        rules=rules,
        templates=templates,
        views=ReferenceViews(
            rules=rules, templates=templates, ready_timeout_s=w.worker.reference_ready_timeout_s
        ),
        admission=ReferenceAdmission(
            gate=JoinGate(
                signal=progress,
                max_wait_s=min(w.worker.alignment_max_wait_s, ADMISSION_MAX_WAIT_S),
                counters=gate_counters,
            ),
            rules=rules,
            templates=templates,
        ),
        gate_counters=gate_counters,
    )


def _audit_and_letters(
    w: _Wiring, signing: AuditSigning | None
) -> tuple[AuditChains, EngineOutputs]:
    """The audit chains (and their signed checkpoints) and the outputs every handler shares:
    audit records through the intake or chained here, dead letters."""
    chains = AuditChains(
        heads=w.tables["audit-chain-heads"],
        audit=TopicChainedAudit(w.topic(names.AUDIT)),
        encode=w.wc.audit.encode,
        counters=w.counters,
        checkpoints=None
        if signing is None
        else TopicCheckpoints(signing, w.topic(names.AUDIT_CHECKPOINTS)),
    )
    chained_counts = w.partitions(
        *_CUSTOMER_INPUTS,
        names.DELIVERY_EVENTS,
        names.DOCUMENT_REQUESTS,
        names.AUDIT_INTAKE,
        names.COMM_RULES,
        names.TEMPLATES,
    )
    topology = w.topology
    if topology.topic(names.AUDIT).partitions != topology.topic(names.AUDIT_INTAKE).partitions:
        chained_counts.pop(topology.name(names.AUDIT_INTAKE))  # every audit record through it
    shared = EngineOutputs(
        outputs=w.out,
        current=w.current,
        chains=chains,
        intake_name=topology.name(names.AUDIT_INTAKE),
        encode_intake=w.wc.intake.encode,
        partition_counts=chained_counts,
        letter_codec=lambda dlq: w.codecs.for_topic(dlq, DeadLetter),
        counters=w.counters,
        metrics=w.metrics,
    )
    return chains, shared


def _reference_changes(
    w: _Wiring, shared: EngineOutputs, reference: ReferenceSource
) -> ReferenceChanges:
    return ReferenceChanges(
        reference=reference,
        decode_rule=w.wc.rule.decode,
        decode_template=w.wc.template.decode,
        emit_alert=TopicAlerts(
            topic=w.topic(names.ALIGNMENT_ALERTS),
            encode=w.wc.alert.encode,
            counters=w.counters,
            send_audit=shared.send_audit,
        ).emit,
        dead_letter=shared.dead_letter,
        registry_wait_s=w.worker.registry_wait_s,
    )


def _tracking(w: _Wiring, shared: EngineOutputs, counters: TrackingCounters) -> Tracking:
    communications = w.tables["communications"]
    return tracking_handlers(
        TrackingContext(
            guard=StoreGuard(),
            commands_topic=w.topic(names.COMMANDS),
            delivery_topic_name=w.topology.name(names.DELIVERY_EVENTS),
            status_topic=w.topic(names.COMMUNICATION_STATUS),
            metadata_topic=w.topic(names.DOCUMENT_METADATA),
            communications=communications,
            parked=w.tables["parked-delivery-events"],
            preferences=w.tables["preferences"],
            send_audit=shared.send_audit,
            dead_letter=shared.dead_letter,
            sla_ms=w.worker.sla_ms,
            sla_check_interval_s=w.worker.sla_check_interval_s,
            counters=counters,
            codecs=w.codecs,
            topology=w.topology,
            registry_wait_s=w.worker.registry_wait_s,
            metrics=w.metrics,
        ),
        communications=communications.items,
        owned=lambda: set(communications.store.partitions()),
    )


def _requests(
    w: _Wiring,
    shared: EngineOutputs,
    tracking: Tracking,
    views: ReferenceViews,
    counters: RequestCounters,
) -> Callable[[Any], Awaitable[None]]:
    return request_handler(
        RequestsContext(
            source_topic=w.topology.name(names.DOCUMENT_REQUESTS),
            commands_topic=w.topic(names.COMMANDS),
            communications=w.tables["communications"],
            register=tracking.register,
            send_audit=shared.send_audit,
            dead_letter=shared.dead_letter,
            key_mismatch=key_mismatch,
            templates_by_id=views.templates_by_id,
            counters=counters,
            codecs=w.codecs,
            topology=w.topology,
            registry_wait_s=w.worker.registry_wait_s,
            metrics=w.metrics,
        )
    )


def _events(
    w: _Wiring, shared: EngineOutputs, tracking: Tracking, reference: ReferenceSource
) -> EventsHandler:
    return EventsHandler(
        preferences=w.tables["preferences"],
        suppression=w.tables["suppression"],
        reference=reference,
        outputs=TopicEventOutputs(
            commands_topic=w.topic(names.COMMANDS),
            alerts_topic=w.topic(names.ALIGNMENT_ALERTS),
            registrar=tracking.register,
            audit=shared.send_audit,
            letters=shared.dead_letter,
        ),
        codecs=EventCodecs(
            preference=w.wc.preference_state.decode,
            command=w.wc.command.encode,
            alert=w.wc.alert.encode,
        ),
        counters=w.counters,
        metrics=w.metrics,
        partition_counts=w.partitions(*_CUSTOMER_INPUTS),
        suppression_grace_ms=w.worker.suppression_grace_ms,
        registry_wait_s=w.worker.registry_wait_s,
    )


async def _report(parts: EngineWorker, metrics: RoutingMetrics, interval_s: float) -> None:
    """Refresh the lag and table metrics every ``interval_s``; log the counters every 10 s."""
    since_log = 0.0
    while True:
        await asyncio.sleep(interval_s)
        ends = parts.engine.end_offsets()
        metrics.observe_positions(
            PartitionPosition(topic, partition, ends.get((topic, partition)), offset)
            for (topic, partition), offset in parts.engine.positions().items()
        )
        metrics.observe_tables({t: table.entries() for t, table in parts.tables.items()})
        since_log += interval_s
        if since_log >= 10.0:
            since_log = 0.0
            log.info("routing: %s", parts.counters.line())
            log.info("join alignment: %s", parts.gate_counters.line())
            log.info("tracking: %s", parts.tracking)
            log.info("document requests: %s", parts.requests.line())


async def run(
    parts: EngineWorker, stop: asyncio.Event, metrics: RoutingMetrics, *, metrics_interval_s: float
) -> None:
    """Follow the reference topics, wait until both views caught up, then run the engine until
    ``stop`` is set (or it fails: the error is raised)."""
    background = [asyncio.create_task(view.run()) for view in (parts.rules, parts.templates)]
    background.append(asyncio.create_task(_report(parts, metrics, metrics_interval_s)))
    try:
        await parts.views.ready()
        await parts.engine.run(stop)
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        log.info("routing: %s", parts.counters.line())


def group_settings(worker: WorkerSettings) -> dict[str, str]:
    """The engine consumer's group timing: a crashed worker's partitions move after the
    session timeout (consumer-only keys: not given to the producer)."""
    return {
        "session.timeout.ms": str(int(worker.session_timeout_s * 1000)),
        "heartbeat.interval.ms": str(int(min(3.0, worker.session_timeout_s / 4) * 1000)),
    }


def instance_slot(worker: WorkerSettings) -> InstanceSlot:
    """``AIR_EXSTREAM_INSTANCE_ID`` when set, else the id kept in the worker's state directory
    (:mod:`streams.engine.instance`): a restart on the same directory is the same slot."""
    if worker.instance_id:
        return InstanceSlot(worker.instance_id, None)
    return claim(worker.state_dir)


def engine_config(kafka: KafkaSettings, worker: WorkerSettings, instance_id: str) -> EngineConfig:
    """The engine's settings for this worker (its tables on disk when ``AIR_EXSTREAM_STORE`` is
    ``rocksdb://``)."""
    return EngineConfig(
        app_id=worker.app_id,
        kafka=kafka.confluent_config(),
        consumer=group_settings(worker),
        # no static membership: two processes with the same instance id would fence each
        # other, and a stopped worker's partitions would wait for the session timeout
        instance_id=instance_id,
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        state_dir=worker.tables_dir if worker.on_disk else None,
        changelog_replication_factor=worker.replication_factor,
    )


async def serve(
    *, kafka: KafkaSettings, worker: WorkerSettings, topology: Topology, metrics: RoutingMetrics
) -> None:
    """``air-exstream worker``: run until SIGTERM or SIGINT (SIGUSR1 writes where every task
    waits to the log, :mod:`streams.diagnostics`)."""
    from streams.engine.engine import Engine

    slot = instance_slot(worker)
    engine = Engine(
        engine_config(kafka, worker, slot.instance_id),
        # a transactional call past the commit deadline ends the worker with EXIT_STUCK for its
        # supervisor to restart (streams/routing/watchdog.py)
        call_guard=Deadline(worker.commit_timeout_s).guard,
    )
    parts = install(
        engine,
        kafka_kwargs=kafka.aiokafka_kwargs(),
        worker=worker,
        topology=topology,
        codecs=Codecs.from_settings(kafka, topology),
        metrics=metrics,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    install_task_dump(loop)
    log.info("routing worker on the engine: app %s, instance %s", worker.app_id, slot.instance_id)
    try:
        await run(parts, stop, metrics, metrics_interval_s=worker.metrics_interval_s)
    finally:
        slot.release()
