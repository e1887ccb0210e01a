"""The routing worker: Faust agents joining Air Inc. events with preferences, rules and templates.

Topology of the worker (all names resolved through the :class:`~topology.model.Topology`):

- ``air.preferences.v1`` -> agent -> ``preferences`` table (partitioned like the events: an
  event and its customer's preferences share a partition number, so the join is local);
- ``air.comm-rules.v1`` and ``exstream.templates.v1`` -> :class:`ReferenceView` on every worker
  (all partitions, like a GlobalKTable), plus one agent each that raises alignment alerts when a
  rule or template changes;
- ``air.account-events.v1`` and ``air.case-events.v1`` -> agent ->
  :class:`~streams.routing.handlers.events.EventsHandler` (``route_indexed``) ->
  ``exstream.composition-commands.v1``, ``alignment.alerts.v1``, ``audit.communications.v1``,
  and the per-customer ``suppression`` table;
- ``air.document-requests.v1`` (the portal's asynchronous requests) -> agent
  (:mod:`streams.routing.requests`) -> ``exstream.composition-commands.v1`` and an audit record;
- audit records are hash-chained per partition of ``audit.communications.v1`` (the chain head is
  kept in the ``audit-chain-heads`` table). Those of customer-partitioned inputs are appended
  directly, to the partition of the record being processed and in its transaction; the others
  (rule and template alerts, the SLA timer) go through ``audit.intake.v1`` and the audit writer
  agent, which appends them in the intake record's partition
  (:mod:`streams.routing.handlers.audit`; which way a record goes:
  :class:`~streams.routing.adapters.WorkerOutputs`). Partition p of every
  customer-partitioned topic shares one transactional id, so each chain has a single writer;
- every undecodable or invalid record -> ``<topic>.dlq`` with the reason (and an audit record,
  :meth:`~streams.routing.adapters.WorkerOutputs.dead_letter`);
  so is a keyed event or preference record in another partition than its key's murmur2 partition
  (``WRONG_PARTITION``, :mod:`streams.routing.partitioning`): joined there, it would meet
  another partition's preferences and state.

Join order: an event is decided only once the preferences of its partition, and the rules and
templates, published before it are applied (:mod:`streams.routing.alignment`; the events agents
wait through :class:`~streams.routing.handlers.join.JoinAdmission` in
:class:`~streams.routing.join_gate.JoinGate`, bounded by ``alignment_max_wait_s``), so a
backlog of preferences and events is joined as if they had arrived in timestamp order.

Guarantee: with ``processing_guarantee=exactly_once`` (the default), every input record's outputs,
table updates and consumer offset are committed in one Kafka transaction per partition. A crash
or restart neither loses nor duplicates records as seen by ``read_committed`` consumers.
Determinism (see :func:`~streams.domain.routing.route_event`) makes even an at-least-once
replay produce byte-identical commands with the same communication ids, which the sink's
idempotency then discards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
from yarl import URL

from streams.audit.signing import AuditSigning
from streams.codec import Codecs
from streams.config import KafkaSettings
from streams.domain.records import (
    CommRule,
    DeadLetter,
    TemplateVersion,
)
from streams.domain.reference_checks import (
    rule_problems,
    template_problems,
)
from streams.errors import AirExstreamError
from streams.routing.adapters import (
    ConsumerGenerations,
    ConsumerPositions,
    GuardedTable,
    TopicAlerts,
    TopicChainedAudit,
    TopicCheckpoints,
    TopicEventOutputs,
    WorkerOutputs,
)
from streams.routing.alignment import TableAlignment
from streams.routing.faust_compat import (
    CommitGuard,
    checkpoint,
    highwaters_from_broker,
    recovery_reads_to_the_last_record,
    table_entries,
)
from streams.routing.handlers.audit import AuditChains, AuditWriter
from streams.routing.handlers.decode import key_mismatch
from streams.routing.handlers.events import EventCodecs, EventsHandler
from streams.routing.handlers.join import JoinAdmission
from streams.routing.handlers.preferences import PreferencesHandler
from streams.routing.handlers.reference import ReferenceChanges
from streams.routing.handlers.reference_views import ReferenceViews
from streams.routing.join_gate import GateCounters, JoinGate, ProgressSignal
from streams.routing.metrics import RoutingMetrics, SendSensor
from streams.routing.reference import ReferenceView
from streams.routing.requests import RequestCounters, RequestsContext, install_requests
from streams.routing.settings import WorkerSettings
from streams.routing.tracking import TrackingContext, TrackingCounters, install_tracking
from streams.routing.watchdog import Deadline
from streams.routing.worker_codecs import WorkerCodecs
from topology import names
from topology.model import Topology

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


@dataclass(slots=True)
class Counters:
    """What the worker did since it started (logged periodically)."""

    events: int = 0
    commands: int = 0
    suppressed: int = 0
    alerts: int = 0
    dead_letters: int = 0
    audit_written: int = 0
    preferences: int = 0
    redeliveries_skipped: int = 0
    revoked_skipped: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        rate = self.events / max(time.monotonic() - self.started, 1e-9)
        return (
            f"events={self.events} ({rate:.0f}/s) commands={self.commands} "
            f"suppressed={self.suppressed} alerts={self.alerts} "
            f"dead_letters={self.dead_letters} audit={self.audit_written} "
            f"preferences={self.preferences} redeliveries_skipped={self.redeliveries_skipped} "
            f"revoked_skipped={self.revoked_skipped}"
        )


class UnusableRecord(AirExstreamError):
    """A reference record decodes but its content is not usable (see
    :mod:`streams.domain.reference_checks`); the views skip it, the agents dead-letter it."""


def usable(
    decode: Callable[[bytes, Any], Any], problems: Callable[[Any], list[str]]
) -> Callable[[bytes, Any], Any]:
    """``decode`` that raises :class:`UnusableRecord` for a record with problems."""

    def checked(value: bytes, headers: Any) -> Any:
        record = decode(value, headers)
        found = problems(record)
        if found:
            raise UnusableRecord("; ".join(found))
        return record

    return checked


def create_app(
    *,
    kafka: KafkaSettings,
    worker: WorkerSettings,
    topology: Topology,
    codecs: Codecs | None = None,
    metrics: RoutingMetrics | None = None,
) -> tuple[faust.App, Counters]:
    """Build the routing application (not started). Returns it with its live counters; its
    Prometheus metrics go to ``metrics`` (served by the caller, see :mod:`.metrics`).
    ``codecs`` defaults to the ones ``kafka`` configures (``KAFKA_SCHEMA_REGISTRY_URL``)."""
    codecs = codecs or Codecs.from_settings(kafka, topology)
    worker.state_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        worker.app_id,
        broker=kafka.faust_broker_url(),
        broker_credentials=kafka.faust_credentials(),
        store=worker.store,
        processing_guarantee=worker.processing_guarantee,
        topic_partitions=worker.partitions,
        topic_replication_factor=worker.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=worker.web_enabled,
        web_port=worker.web_port,
        datadir=str(worker.state_dir),
        table_cleanup_interval=60.0,
        producer_acks=-1,
        producer_linger=worker.producer_linger_ms / 1000.0,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 4),
        stream_wait_empty=False,
        broker_max_poll_records=worker.max_poll_records,
        stream_buffer_maxsize=worker.stream_buffer_maxsize,
        broker_commit_interval=worker.commit_cadence.tick_s,
    )
    counters = Counters()
    if metrics is None:
        metrics = RoutingMetrics(commit_deadline_s=worker.commit_timeout_s)
    app.sensors.add(SendSensor(metrics))
    guard = CommitGuard(
        app,
        counters,
        Deadline(worker.commit_timeout_s),
        metrics,
        cadence=worker.commit_cadence,
        inputs=lambda: input_topics,
    )
    app.on_partitions_revoked.connect(guard.on_revoked)
    kafka_kwargs = kafka.aiokafka_kwargs()  # every aiokafka client of the worker
    app.on_partitions_revoked.connect(partial(highwaters_from_broker, app))
    app.on_partitions_revoked.connect(partial(recovery_reads_to_the_last_record, app, kafka_kwargs))

    def topic(logical: str) -> Any:
        return app.topic(topology.name(logical), internal=False, **RAW)

    account_topic = topic(names.ACCOUNT_EVENTS)
    case_topic = topic(names.CASE_EVENTS)
    preferences_topic = topic(names.PREFERENCES)
    rules_topic = topic(names.COMM_RULES)
    templates_topic = topic(names.TEMPLATES)
    commands_topic = topic(names.COMMANDS)
    alerts_topic = topic(names.ALIGNMENT_ALERTS)
    intake_topic = topic(names.AUDIT_INTAKE)
    audit_topic = topic(names.AUDIT)

    def table(name: str, *, store: str = "memory://") -> Any:
        # bytes key and value types make faust use the raw serializer for the changelog.
        # A store URL with neither host nor path ("memory://") is falsy to yarl, and faust then
        # silently uses the app's store: name the table in it, as faust's own default does.
        url = URL(store)
        return app.Table(
            name,
            partitions=worker.partitions,
            key_type=bytes,
            value_type=bytes,
            store=url if url.path else url / name,
            options=worker.rocksdb_options() if store == worker.store else None,
        )

    # only preferences may keep local files across a crash: see WorkerSettings.store
    preferences = table("preferences", store=worker.store)
    if worker.rocksdb_options() is not None:

        @app.timer(interval=worker.checkpoint_interval_s)
        async def checkpoint_preferences() -> None:
            await checkpoint(app, preferences, kafka_kwargs)

    suppression = table("suppression")
    chain_heads = table("audit-chain-heads")

    wc = WorkerCodecs.prepared(codecs, topology)

    # customer-keyed inputs: a record must be in its key's murmur2 partition (partitioning.py)
    partition_counts = {
        topology.name(n): topology.topic(n).partitions
        for n in (names.PREFERENCES, names.ACCOUNT_EVENTS, names.CASE_EVENTS)
    }

    # ---- join order (streams/routing/alignment.py): the events agents wait in the gate
    progress = ProgressSignal()
    gate_counters = GateCounters()
    gate = JoinGate(signal=progress, max_wait_s=worker.alignment_max_wait_s, counters=gate_counters)
    preferences_name = topology.name(names.PREFERENCES)

    rules_view: ReferenceView[CommRule] = ReferenceView(
        topic=topology.name(names.COMM_RULES),
        partitions=topology.topic(names.COMM_RULES).partitions,
        decode=usable(wc.rule.decode, rule_problems),
        client_kwargs=kafka_kwargs,
        on_progress=progress.notify,
        fetch_wait_ms=worker.reference_fetch_wait_ms,
    )
    templates_view: ReferenceView[TemplateVersion] = ReferenceView(
        topic=topology.name(names.TEMPLATES),
        partitions=topology.topic(names.TEMPLATES).partitions,
        decode=usable(wc.template.decode, template_problems),
        client_kwargs=kafka_kwargs,
        on_progress=progress.notify,
        fetch_wait_ms=worker.reference_fetch_wait_ms,
    )
    join = JoinAdmission(
        gate=gate,
        alignment=TableAlignment(idle_grace_s=worker.alignment_idle_grace_s),
        positions=ConsumerPositions(app, preferences_name),
        generations=ConsumerGenerations(app),
        rules=rules_view,
        templates=templates_view,
    )

    async def forget_preferences(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else ()
        join.preferences_revoked(tp.partition for tp in revoked if tp.topic == preferences_name)

    async def preferences_assigned(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        join.preferences_assigned()

    app.on_partitions_revoked.connect(forget_preferences)
    app.on_partitions_assigned.connect(preferences_assigned)
    views = ReferenceViews(
        rules=rules_view,
        templates=templates_view,
        ready_timeout_s=worker.reference_ready_timeout_s,
    )

    # signed checkpoints of the audit chains (streams/audit/signing.py); off without a key
    audit_signing = AuditSigning.from_environment()
    checkpoints_topic = topic(names.AUDIT_CHECKPOINTS)
    if audit_signing is not None:
        signing = audit_signing

        @app.timer(interval=1.0)
        async def sign_idle_audit_heads() -> None:
            await signing.sign_idle(checkpoints_topic.send)

        async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            signing.forget({tp.partition for tp in (args[0] if args else ())})

        app.on_partitions_revoked.connect(forget_revoked)

    chains = AuditChains(
        heads=GuardedTable(guard, chain_heads),
        audit=TopicChainedAudit(audit_topic),
        encode=wc.audit.encode,
        counters=counters,
        checkpoints=(
            None if audit_signing is None else TopicCheckpoints(audit_signing, checkpoints_topic)
        ),
    )

    outputs = WorkerOutputs(
        app=app,
        chains=chains,
        intake_topic=intake_topic,
        intake_name=topology.name(names.AUDIT_INTAKE),
        encode_intake=wc.intake.encode,
        chain_directly=(
            topology.topic(names.AUDIT).partitions == topology.topic(names.AUDIT_INTAKE).partitions
        ),
        dlq_topic=lambda name: app.topic(name, internal=False, **RAW),
        letter_codec=lambda name: codecs.for_topic(name, DeadLetter),
        counters=counters,
        metrics=metrics,
    )
    send_audit, dead_letter = outputs.send_audit, outputs.dead_letter

    # ------------------------------------------------------------------ reference data

    @app.task
    async def follow_rules() -> None:
        await rules_view.run()

    @app.task
    async def follow_templates() -> None:
        await templates_view.run()

    @app.agent(preferences_topic)
    async def preferences_agent(stream: Any) -> None:
        async for event in stream.events():
            await guard.process(event, preferences_handler.handle)
            join.preference_applied(event.message)

    @app.agent(rules_topic)
    async def rule_alignment_agent(stream: Any) -> None:
        await views.ready()
        async for event in stream.events():
            await guard.process(event, reference_changes.rule_changed)

    @app.agent(templates_topic)
    async def template_alignment_agent(stream: Any) -> None:
        await views.ready()
        async for event in stream.events():
            await guard.process(event, reference_changes.template_changed)

    # ------------------------------------------------------------------ business events

    async def route(stream: Any, codec: Any, source_topic: str) -> None:
        await views.ready()
        async for event in stream.events():
            msg = event.message
            await join.await_inputs(msg)
            if not join.still_current(msg):
                continue
            handle = partial(events_handler.handle, decode=codec.decode, source_topic=source_topic)
            await guard.process(event, handle)

    @app.agent(account_topic)
    async def account_events_agent(stream: Any) -> None:
        await route(stream, wc.account, topology.name(names.ACCOUNT_EVENTS))

    @app.agent(case_topic)
    async def case_events_agent(stream: Any) -> None:
        await route(stream, wc.case, topology.name(names.CASE_EVENTS))

    # ------------------------------------------------------------------ audit writer

    @app.agent(intake_topic)
    async def audit_writer(stream: Any) -> None:
        async for event in stream.events():
            await guard.process(event, intake_writer.handle)

    tracking = TrackingCounters()
    communications = table("communications")
    parked = table("parked-delivery-events")
    register = install_tracking(
        TrackingContext(
            app=app,
            guard=guard,
            commands_topic=commands_topic,
            delivery_topic=topic(names.DELIVERY_EVENTS),
            delivery_topic_name=topology.name(names.DELIVERY_EVENTS),
            status_topic=topic(names.COMMUNICATION_STATUS),
            metadata_topic=topic(names.DOCUMENT_METADATA),
            communications=communications,
            parked=parked,
            preferences=preferences,
            send_audit=send_audit,
            dead_letter=dead_letter,
            sla_ms=worker.sla_ms,
            sla_check_interval_s=worker.sla_check_interval_s,
            counters=tracking,
            codecs=codecs,
            topology=topology,
            registry_wait_s=worker.registry_wait_s,
            metrics=metrics,
        )
    )

    # ------------------------------------------------------------------ handlers (handlers/)

    reference_source = views.source()
    reference_changes = ReferenceChanges(
        reference=reference_source,
        decode_rule=wc.rule.decode,
        decode_template=wc.template.decode,
        emit_alert=TopicAlerts(
            topic=alerts_topic, encode=wc.alert.encode, counters=counters, send_audit=send_audit
        ).emit,
        dead_letter=dead_letter,
        registry_wait_s=worker.registry_wait_s,
    )
    intake_writer = AuditWriter(
        chains=chains,
        decode=wc.intake.decode,
        dead_letter=dead_letter,
        registry_wait_s=worker.registry_wait_s,
    )
    preferences_handler = PreferencesHandler(
        table=GuardedTable(guard, preferences),
        decode=wc.preference.decode,
        encode_state=wc.preference_state.encode,
        dead_letter=dead_letter,
        counters=counters,
        partition_counts=partition_counts,
        history_ms=worker.preference_history_ms,
        max_versions=worker.preference_max_versions,
        registry_wait_s=worker.registry_wait_s,
    )
    events_handler = EventsHandler(
        preferences=preferences,
        suppression=GuardedTable(guard, suppression),
        reference=reference_source,
        outputs=TopicEventOutputs(
            commands_topic=commands_topic,
            alerts_topic=alerts_topic,
            registrar=register,
            audit=send_audit,
            letters=dead_letter,
        ),
        codecs=EventCodecs(
            preference=wc.preference_state.decode, command=wc.command.encode, alert=wc.alert.encode
        ),
        counters=counters,
        metrics=metrics,
        partition_counts=partition_counts,
        suppression_grace_ms=worker.suppression_grace_ms,
        registry_wait_s=worker.registry_wait_s,
    )

    async def forget_decoded_state(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        events_handler.forget({tp.partition for tp in (args[0] if args else ())})

    app.on_partitions_revoked.connect(forget_decoded_state)

    # ------------------------------------------------------------------ portal requests

    requests = RequestCounters()
    install_requests(
        RequestsContext(
            app=app,
            guard=guard,
            requests_topic=topic(names.DOCUMENT_REQUESTS),
            source_topic=topology.name(names.DOCUMENT_REQUESTS),
            commands_topic=commands_topic,
            communications=communications,
            register=register,
            send_audit=send_audit,
            dead_letter=dead_letter,
            key_mismatch=key_mismatch,
            reference_ready=views.ready,
            templates_by_id=views.templates_by_id,
            admitted=join.templates_admitted,
            counters=requests,
            codecs=codecs,
            topology=topology,
            registry_wait_s=worker.registry_wait_s,
            metrics=metrics,
        )
    )

    input_topics = {
        topology.name(logical)
        for logical in (
            names.ACCOUNT_EVENTS,
            names.CASE_EVENTS,
            names.PREFERENCES,
            names.COMM_RULES,
            names.TEMPLATES,
            names.AUDIT_INTAKE,
            names.DELIVERY_EVENTS,
            names.DOCUMENT_REQUESTS,
        )
    }
    state_tables = {
        "preferences": preferences,
        "suppression": suppression,
        "audit-chain-heads": chain_heads,
        "communications": communications,
        "parked-delivery-events": parked,
    }

    @app.timer(interval=worker.metrics_interval_s)
    async def refresh_metrics() -> None:
        metrics.observe_positions(guard.processing_positions())
        metrics.observe_tables({name: table_entries(t) for name, t in state_tables.items()})

    @app.timer(interval=10.0)
    async def report_progress() -> None:
        log.info("routing: %s", counters.line())
        log.info("join alignment: %s", gate_counters.line())
        log.info("tracking: %s", tracking)
        log.info("document requests: %s", requests.line())

    return app, counters
