"""The routing worker: Faust agents joining Air Inc. events with preferences, rules and templates.

Topology of the worker (all names resolved through the :class:`~topology.model.Topology`):

- ``air.preferences.v1`` -> agent -> ``preferences`` table (partitioned like the events: an
  event and its customer's preferences share a partition number, so the join is local);
- ``air.comm-rules.v1`` and ``exstream.templates.v1`` -> :class:`ReferenceView` on every worker
  (all partitions, like a GlobalKTable), plus one agent each that raises alignment alerts when a
  rule or template changes;
- ``air.account-events.v1`` and ``air.case-events.v1`` -> agent -> :func:`route_event` ->
  ``exstream.composition-commands.v1``, ``alignment.alerts.v1``, ``audit.intake.v1``, and the
  per-customer ``suppression`` table;
- ``audit.intake.v1`` -> the audit writer agent -> ``audit.communications.v1``, hash-chained per
  partition (the chain head is kept in the ``audit-chain-heads`` table);
- every undecodable or invalid record -> ``<topic>.dlq`` with the reason (and an audit record).

Guarantee: with ``processing_guarantee=exactly_once`` (the default), every input record's outputs,
table updates and consumer offset are committed in one Kafka transaction per partition. A crash
or restart neither loses nor duplicates records as seen by ``read_committed`` consumers.
Determinism (see :func:`route_event`) makes even an at-least-once replay produce byte-identical
commands with the same communication ids, which the sink's idempotency then discards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.streams import current_event

from streams.audit.chain import ChainHead, append
from streams.codec import CodecError, codec_for
from streams.config import KafkaSettings
from streams.deadletter.letters import dead_letter_headers, make_dead_letter
from streams.domain.alignment import check_rule, compare_versions
from streams.domain.ids import audit_id
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    AuditKind,
    AuditRecord,
    CaseEvent,
    CommRule,
    CompositionCommand,
    DeadLetter,
    Preference,
    TemplateVersion,
)
from streams.domain.routing import route_event
from streams.domain.suppression import SuppressionEntry
from streams.routing.reference import ReferenceView
from streams.routing.settings import WorkerSettings
from streams.routing.tracking import TrackingContext, TrackingCounters, install_tracking
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
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        rate = self.events / max(time.monotonic() - self.started, 1e-9)
        return (
            f"events={self.events} ({rate:.0f}/s) commands={self.commands} "
            f"suppressed={self.suppressed} alerts={self.alerts} "
            f"dead_letters={self.dead_letters} audit={self.audit_written} "
            f"preferences={self.preferences} redeliveries_skipped={self.redeliveries_skipped}"
        )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _suppression_state(raw: bytes | None) -> dict[str, SuppressionEntry]:
    if not raw:
        return {}
    return {key: SuppressionEntry(**value) for key, value in orjson.loads(raw).items()}


def _dump_suppression(state: dict[str, SuppressionEntry]) -> bytes:
    return orjson.dumps(
        {
            key: {
                "communication_id": e.communication_id,
                "source_event_id": e.source_event_id,
                "emitted_at": e.emitted_at,
                "expires_at": e.expires_at,
            }
            for key, e in state.items()
        }
    )


def _key_text(key: bytes | None) -> str | None:
    return key.decode("utf-8", "replace") if key else None


class CommitGuard:
    """Exactly-once processing on top of faust-streaming's transactions, made to really hold.

    Two gaps in faust-streaming 0.15.3 were found by the crash test (SIGKILL of the worker
    mid-stream produced hundreds of duplicate commands) and are closed here:

    1. Faust chooses a record's transactional producer from the *output* topic's partition,
       looked up in the consumer's metadata. For topics the worker does not consume (commands,
       alerts, audit, dead letters) that lookup fails and the record is sent through the
       non-transactional producer: it is never part of any transaction. Here every record sent
       while an input record is processed goes through the transactional producer of that
       *input* partition, the one whose transaction also commits the input offset (the rule
       Kafka Streams follows).
    2. Faust commits from a timer, independently of the agents, so a transaction could contain
       part of a record's outputs while its offset went into the next one. Here a lock is held
       while one record is processed and acked, and the commit takes the same lock, so every
       transaction holds whole records together with their offsets.

    Table updates go through :meth:`put` / :meth:`delete`, which write the table's store and send
    the changelog record explicitly (awaited, in the same transaction), instead of Faust's
    buffered changelog writes whose timing relative to the commit is not controlled.
    """

    def __init__(self, app: faust.App, counters: Counters) -> None:
        self._app = app
        self._counters = counters
        self._processed: dict[tuple[int, str, int], int] = {}
        self._lock = asyncio.Lock()
        self._installed = False

    def _install(self) -> None:
        """Patch the running worker's consumer. Not done at build time: touching
        ``app.consumer`` before the Worker has started makes faust cache
        ``in_transaction=False`` and silently turns exactly-once off."""
        self._installed = True
        app = self._app
        consumer: Any = app.consumer
        force_commit = consumer.force_commit

        async def locked_commit(*args: Any, **kwargs: Any) -> Any:
            async with self._lock:
                return await force_commit(*args, **kwargs)

        consumer.force_commit = locked_commit
        self._seek_before_resume(app, consumer)
        if app.in_transaction:
            self._route_sends_by_input_partition(app, consumer)

    async def on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # the first rebalance callback of a worker: running, not yet recovering tables
        if not self._installed:
            self._install()

    @staticmethod
    def _seek_before_resume(app: faust.App, consumer: Any) -> None:
        """Make stream partitions fetchable only after they were sought to the committed offset.

        faust-streaming's recovery resumes the stream partitions and *then* seeks them to the
        committed offsets. Records the fetcher had buffered from before the seek are delivered
        in between, and the seek then rewinds under them: seen as records routed twice and as a
        partition whose committed offset never moved again. Here a resume is held back until
        the seek that always follows it has completed (changelog partitions, which table
        recovery itself reads, are resumed at once).
        """
        pending: set[Any] = set()
        resume = consumer.resume_partitions
        perform_seek = consumer.perform_seek

        def deferred_resume(tps: Any) -> None:
            changelogs = app.tables.changelog_topics
            # table recovery reads changelogs while stream partitions wait: those go at once
            now = {tp for tp in tps if tp.topic in changelogs}
            pending.update(tp for tp in tps if tp.topic not in changelogs)
            if now:
                resume(now)

        async def seek_then_resume() -> None:
            await perform_seek()
            if pending:
                ready = set(pending)
                pending.clear()
                resume(ready)

        consumer.resume_partitions = deferred_resume
        consumer.perform_seek = seek_then_resume

    @staticmethod
    def _route_sends_by_input_partition(app: faust.App, consumer: Any) -> None:
        transactions = consumer.transactions
        fallback_send = transactions.send

        async def send(
            topic: str,
            key: bytes | None,
            value: bytes | None,
            partition: int | None,
            timestamp: float | None,
            headers: Any,
            *,
            transactional_id: str | None = None,
        ) -> Any:
            event = current_event()
            if event is None:
                return await fallback_send(topic, key, value, partition, timestamp, headers)
            source = event.message.tp
            group = app.assignor.group_for_topic(source.topic)
            return await transactions.producer.send(
                topic,
                key,
                value,
                partition,
                timestamp,
                headers,
                transactional_id=f"{app.conf.id}-{group}-{source.partition}",
            )

        transactions.send = send

    async def process(self, event: Any, handle: Callable[[Any], Awaitable[None]]) -> bool:
        """Run ``handle(event.message)`` and ack the event before any commit can run.

        Returns False (and does not call ``handle``) for a redelivery: an offset at or below one
        already processed in this consumer generation. faust-streaming's fetcher accepts an
        offset equal to the last one read (``offset >= read_offset``), and after its recovery
        seek a partition's last record can come round a second time (seen in the crash test:
        the tail record of each partition routed twice). Within one generation an offset
        processed once is either committed or in the open transaction, so skipping it loses
        nothing; a rebalance starts a new generation, where the committed offset rules again.
        """
        if not self._installed:
            self._install()
        msg = event.message
        position = (self._app.consumer_generation_id, msg.topic, msg.partition)
        async with self._lock:
            last = self._processed.get(position)
            if last is not None and last >= msg.offset:
                self._counters.redeliveries_skipped += 1
                event.ack()
                return False
            await self._register_gap(msg, last)
            await handle(msg)
            self._processed[position] = msg.offset
            event.ack()
            return True

    async def _register_gap(self, msg: Any, last: int | None) -> None:
        """Tell faust which offsets before ``msg`` will never arrive, so its commits move on.

        Transaction markers (and aborted records, under read_committed) occupy offsets that are
        never delivered. faust-streaming records such a gap only when the previous offset read
        was non-zero (``if gap > 1 and r_offset``), so a partition whose first record sits at
        offset 0 followed by two markers never committed past offset 1 (seen on the audit intake
        topic: the audit writer re-read it from the start after every restart).
        """
        consumer: Any = self._app.consumer
        start = last + 1 if last is not None else consumer._committed_offset.get(msg.tp)
        if start is not None and msg.offset > start:
            await consumer._add_gap(msg.tp, start, msg.offset - 1)

    @staticmethod
    async def put(table: Any, msg: Any, key: bytes, value: bytes) -> None:
        table.data[key] = value
        await table.changelog_topic.send(key=key, value=value, partition=msg.partition)

    @staticmethod
    async def delete(table: Any, msg: Any, key: bytes) -> None:
        if key in table.data:
            del table.data[key]
        await table.changelog_topic.send(key=key, value=None, partition=msg.partition)


def create_app(
    *, kafka: KafkaSettings, worker: WorkerSettings, topology: Topology
) -> tuple[faust.App, Counters]:
    """Build the routing application (not started). Returns it with its live counters."""
    Path(worker.data_dir).mkdir(parents=True, exist_ok=True)
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
        datadir=worker.data_dir,
        table_cleanup_interval=60.0,
        producer_acks=-1,
        broker_session_timeout=worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_s / 4),
        stream_wait_empty=False,
    )
    counters = Counters()
    guard = CommitGuard(app, counters)
    app.on_partitions_revoked.connect(guard.on_revoked)
    client_kwargs = {k: v for k, v in kafka.aiokafka_kwargs().items() if k != "bootstrap_servers"}

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

    def table(name: str) -> Any:
        # bytes key and value types make faust use the raw serializer for the changelog
        return app.Table(name, partitions=worker.partitions, key_type=bytes, value_type=bytes)

    preferences = table("preferences")
    suppression = table("suppression")
    chain_heads = table("audit-chain-heads")

    rule_codec = codec_for(CommRule)
    template_codec = codec_for(TemplateVersion)
    pref_codec = codec_for(Preference)
    account_codec = codec_for(AccountEvent)
    case_codec = codec_for(CaseEvent)
    command_codec = codec_for(CompositionCommand)
    alert_codec = codec_for(AlignmentAlert)
    audit_codec = codec_for(AuditRecord)
    letter_codec = codec_for(DeadLetter)

    rules_view: ReferenceView[CommRule] = ReferenceView(
        topic=topology.name(names.COMM_RULES),
        partitions=topology.topic(names.COMM_RULES).partitions,
        bootstrap_servers=kafka.require_bootstrap(),
        decode=rule_codec.decode,
        client_kwargs=client_kwargs,
    )
    templates_view: ReferenceView[TemplateVersion] = ReferenceView(
        topic=topology.name(names.TEMPLATES),
        partitions=topology.topic(names.TEMPLATES).partitions,
        bootstrap_servers=kafka.require_bootstrap(),
        decode=template_codec.decode,
        client_kwargs=client_kwargs,
    )
    index: dict[str, Any] = {"rules_version": -1, "templates_version": -1}

    def current_rules() -> list[CommRule]:
        if index["rules_version"] != rules_view.version:
            index["rules"] = rules_view.values()
            index["rules_version"] = rules_view.version
        rules: list[CommRule] = index["rules"]
        return rules

    def templates_by_id() -> dict[str, list[TemplateVersion]]:
        if index["templates_version"] != templates_view.version:
            by_id: dict[str, list[TemplateVersion]] = {}
            for t in templates_view.values():
                by_id.setdefault(t.template_id, []).append(t)
            index["templates"] = by_id
            index["templates_version"] = templates_view.version
        templates: dict[str, list[TemplateVersion]] = index["templates"]
        return templates

    async def reference_ready() -> None:
        await rules_view.wait_ready(worker.reference_ready_timeout_s)
        await templates_view.wait_ready(worker.reference_ready_timeout_s)

    async def send_audit(record: AuditRecord, key: bytes | None) -> None:
        await intake_topic.send(key=key or b"", value=audit_codec.encode(record))

    dlq_topics: dict[str, Any] = {}

    async def dead_letter(msg: Any, error_type: str, reason: str) -> None:
        letter = make_dead_letter(
            source_topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            value=msg.value,
            headers=list(msg.headers or ()),
            error_type=error_type,
            reason=reason,
            failed_at=_now_ms(),
        )
        dlq = dlq_topics.get(msg.topic)
        if dlq is None:
            dlq = dlq_topics[msg.topic] = app.topic(names.dlq(msg.topic), internal=False, **RAW)
        await dlq.send(
            key=msg.key, value=letter_codec.encode(letter), headers=dead_letter_headers(letter)
        )
        counters.dead_letters += 1
        subject = f"{msg.topic}/{msg.partition}/{msg.offset}"
        await send_audit(
            AuditRecord(
                audit_id=audit_id(AuditKind.DEAD_LETTER, subject),
                kind=AuditKind.DEAD_LETTER,
                customer_id=_key_text(msg.key),
                occurred_at=letter.failed_at,
                summary=f"record {subject} dead-lettered: {error_type}",
                details={"error_type": error_type, "source": subject, "reason": reason},
            ),
            msg.key,
        )
        log.warning("dead-lettered %s: %s", subject, error_type)

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
            await guard.process(event, store_preference)

    async def store_preference(msg: Any) -> None:
        if msg.key is None:
            await dead_letter(msg, "MISSING_KEY", "preference record has no customer id key")
            return
        if msg.value is None:
            await guard.delete(preferences, msg, msg.key)
            return
        try:
            pref_codec.decode(msg.value, msg.headers)
        except CodecError as exc:
            await dead_letter(msg, exc.code, str(exc))
            return
        await guard.put(preferences, msg, msg.key, msg.value)
        counters.preferences += 1

    @app.agent(rules_topic)
    async def rule_alignment_agent(stream: Any) -> None:
        await reference_ready()
        async for event in stream.events():
            await guard.process(event, check_rule_change)

    async def check_rule_change(msg: Any) -> None:
        if msg.value is None:
            return
        try:
            rule = rule_codec.decode(msg.value, msg.headers)
        except CodecError as exc:
            await dead_letter(msg, exc.code, str(exc))
            return
        versions = templates_by_id().get(rule.template_id, [])
        for alert in check_rule(rule, versions, raised_at=int(msg.timestamp * 1000)):
            await emit_alert(alert)

    @app.agent(templates_topic)
    async def template_alignment_agent(stream: Any) -> None:
        await reference_ready()
        async for event in stream.events():
            await guard.process(event, check_template_change)

    async def check_template_change(msg: Any) -> None:
        if msg.value is None:
            return
        try:
            new = template_codec.decode(msg.value, msg.headers)
        except CodecError as exc:
            await dead_letter(msg, exc.code, str(exc))
            return
        older = [
            v
            for v in templates_by_id().get(new.template_id, [])
            if v.language == new.language and v.version < new.version
        ]
        if not older:
            return
        previous = max(older, key=lambda v: v.version)
        affected = [r.rule_id for r in current_rules() if r.template_id == new.template_id]
        for alert in compare_versions(
            previous, new, raised_at=new.updated_at, affected_rule_ids=affected
        ):
            await emit_alert(alert)

    async def emit_alert(alert: AlignmentAlert) -> None:
        key = (alert.rule_id or alert.template_id).encode()
        await alerts_topic.send(key=key, value=alert_codec.encode(alert))
        counters.alerts += 1
        await send_audit(
            AuditRecord(
                audit_id=audit_id(AuditKind.ALIGNMENT_ALERT, alert.alert_id),
                kind=AuditKind.ALIGNMENT_ALERT,
                occurred_at=alert.raised_at,
                summary=alert.message[:200],
                details={"alert_id": alert.alert_id, "kind": alert.kind},
            ),
            key,
        )

    # ------------------------------------------------------------------ business events

    async def route(stream: Any, codec: Any, source_topic: str) -> None:
        await reference_ready()
        async for event in stream.events():
            await guard.process(event, partial(route_one, codec=codec, source_topic=source_topic))

    async def route_one(msg: Any, codec: Any, source_topic: str) -> None:
        try:
            record = codec.decode(msg.value, msg.headers)
        except CodecError as exc:
            await dead_letter(msg, exc.code, str(exc))
            return
        key = msg.key or record.customer_id.encode()
        pref_raw = preferences.get(key)
        preference = pref_codec.decode(pref_raw) if pref_raw else None
        state = _suppression_state(suppression.get(key))
        outcome = route_event(
            record,
            source_topic=source_topic,
            preference=preference,
            rules=current_rules(),
            templates_by_id=templates_by_id(),
            suppression_state=state,
            now_ms=record.occurred_at - worker.suppression_grace_ms,
        )
        counters.events += 1
        if outcome.rejection is not None:
            await dead_letter(msg, outcome.rejection.code, outcome.rejection.reason)
            return
        for command in outcome.commands:
            await commands_topic.send(key=key, value=command_codec.encode(command))
        for alert in outcome.alerts:
            await alerts_topic.send(
                key=(alert.rule_id or alert.template_id).encode(),
                value=alert_codec.encode(alert),
            )
        for entry in outcome.audit:
            await send_audit(entry, key)
        counters.commands += len(outcome.commands)
        counters.suppressed += len(outcome.suppressed) + len(outcome.undeliverable)
        counters.alerts += len(outcome.alerts)
        if outcome.suppression_updates or outcome.expired_keys:
            state.update(outcome.suppression_updates)
            for stale in outcome.expired_keys:
                state.pop(stale, None)
            await guard.put(suppression, msg, key, _dump_suppression(state))

    @app.agent(account_topic)
    async def account_events_agent(stream: Any) -> None:
        await route(stream, account_codec, topology.name(names.ACCOUNT_EVENTS))

    @app.agent(case_topic)
    async def case_events_agent(stream: Any) -> None:
        await route(stream, case_codec, topology.name(names.CASE_EVENTS))

    # ------------------------------------------------------------------ audit writer

    @app.agent(intake_topic)
    async def audit_writer(stream: Any) -> None:
        async for event in stream.events():
            await guard.process(event, chain_one)

    async def chain_one(msg: Any) -> None:
        try:
            record = audit_codec.decode(msg.value, msg.headers)
        except CodecError as exc:
            await dead_letter(msg, exc.code, str(exc))
            return
        head_key = str(msg.partition).encode()
        raw_head = chain_heads.get(head_key)
        head = ChainHead(**orjson.loads(raw_head)) if raw_head else ChainHead()
        chained, head = append(head, record)
        await audit_topic.send(
            key=msg.key, value=audit_codec.encode(chained), partition=msg.partition
        )
        await guard.put(
            chain_heads, msg, head_key, orjson.dumps({"seq": head.seq, "hash": head.hash})
        )
        counters.audit_written += 1

    tracking = TrackingCounters()
    install_tracking(
        TrackingContext(
            app=app,
            guard=guard,
            commands_topic=commands_topic,
            delivery_topic=topic(names.DELIVERY_EVENTS),
            status_topic=topic(names.COMMUNICATION_STATUS),
            metadata_topic=topic(names.DOCUMENT_METADATA),
            communications=table("communications"),
            parked=table("parked-delivery-events"),
            preferences=preferences,
            send_audit=send_audit,
            dead_letter=dead_letter,
            sla_ms=worker.sla_ms,
            sla_check_interval_s=worker.sla_check_interval_s,
            counters=tracking,
        )
    )

    @app.timer(interval=10.0)
    async def report_progress() -> None:
        log.info("routing: %s", counters.line())
        log.info("tracking: %s", tracking)

    return app, counters
