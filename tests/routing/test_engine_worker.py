"""The engine worker's wiring (streams/routing/engine_worker.py) on a plain fake engine: the inputs,
stores and changelogs it registers, a preference then an event through the registered handlers
(command, audit chain, table puts in the record's partition), dead letters, delivery tracking
and document requests."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from streams.codec import Codecs, codec_for
from streams.config import KafkaSettings
from streams.domain.records import (
    AccountEvent,
    AuditKind,
    AuditRecord,
    CommRule,
    CompositionCommand,
    DeadLetter,
    DeliveryEvent,
    DeliveryStatus,
    DocumentRequest,
    Preference,
    TemplateVersion,
)
from streams.engine import engine as engine_module
from streams.engine.api import Record
from streams.engine.config import EngineConfig
from streams.routing import engine_worker
from streams.routing.engine_worker import (
    EngineWorker,
    engine_config,
    group_settings,
    install,
    run,
)
from streams.routing.handlers.audit import decode_head, head_key
from streams.routing.metrics import RoutingMetrics
from streams.routing.partitioning import murmur2_partition
from streams.routing.preference_versions import value_as_of
from streams.routing.settings import WorkerSettings
from streams.simulator.generator import template_catalogue, template_key
from tests.domain.factories import T0, billing_event, preference, rule, template
from tests.routing.engine_fakes import FakeEngine
from topology import names
from topology.model import Topology, load_topology

pytestmark = pytest.mark.unit

APP = "router-test"
CUSTOMER = b"cust-1"
PARTITION = murmur2_partition(CUSTOMER, 6)


def worker_settings(**overrides: Any) -> WorkerSettings:
    return WorkerSettings(app_id=APP, engine="kafka", **overrides)


def installed(metrics: RoutingMetrics | None = None) -> tuple[FakeEngine, EngineWorker, Topology]:
    topology = load_topology("local", prefix="t.")
    engine = FakeEngine()
    parts = install(
        engine,
        kafka_kwargs={"bootstrap_servers": "127.0.0.1:1"},
        worker=worker_settings(),
        topology=topology,
        codecs=Codecs(),
        metrics=metrics or RoutingMetrics(),
    )
    return engine, parts, topology


def test_each_committed_transaction_is_timed_as_a_commit_of_the_worker() -> None:
    metrics = RoutingMetrics()
    engine, _, _ = installed(metrics)
    for fn in engine.committed:
        fn(0.25)
        fn(0.5)
    count = metrics.registry.get_sample_value("air_exstream_routing_commit_duration_seconds_count")
    total = metrics.registry.get_sample_value("air_exstream_routing_commit_duration_seconds_sum")
    assert (len(engine.committed), count, total) == (1, 2.0, 0.75)


def rec(topic: str, offset: int, key: bytes | None, value: bytes | None, ts: int) -> Record:
    return Record(topic, PARTITION, offset, key, value, None, ts)


def test_it_reads_the_workers_inputs_into_stores_named_after_their_changelogs() -> None:
    engine, _, topology = installed()
    assert set(engine.inputs) == {
        topology.name(n)
        for n in (
            names.PREFERENCES,
            names.ACCOUNT_EVENTS,
            names.CASE_EVENTS,
            names.AUDIT_INTAKE,
            names.COMM_RULES,
            names.TEMPLATES,
            names.DELIVERY_EVENTS,
            names.DOCUMENT_REQUESTS,
        )
    }
    assert {name: (topic, n) for name, (_, topic, n) in engine.stores.items()} == {
        t: (f"{APP}-{t}-changelog", 6)
        for t in (
            "preferences",
            "suppression",
            "audit-chain-heads",
            "communications",
            "parked-delivery-events",
        )
    }
    assert [interval for interval, _ in engine.timers] == [worker_settings().sla_check_interval_s]


async def test_a_preference_then_an_event_of_its_customer_make_a_command_and_chained_audit() -> (
    None
):
    engine, parts, topology = installed()
    parts.rules.apply("r-statement", codec_for(CommRule).encode(rule()), [])
    parts.templates.apply("tpl", codec_for(TemplateVersion).encode(template()), [])
    prefs_topic, events_topic = (
        topology.name(names.PREFERENCES),
        topology.name(names.ACCOUNT_EVENTS),
    )
    pref = preference(customer_id="cust-1")
    await engine.handle(rec(prefs_topic, 0, CUSTOMER, codec_for(Preference).encode(pref), T0 - 5))
    preferences = engine.stores["preferences"][0]
    assert [(p, k) for p, k, _ in preferences.puts] == [(PARTITION, CUSTOMER)]
    stored = value_as_of(preferences.get(PARTITION, CUSTOMER), T0)
    assert stored is not None
    assert codec_for(Preference).decode(stored) == pref

    event = billing_event(customer_id="cust-1")
    await engine.handle(rec(events_topic, 0, CUSTOMER, codec_for(AccountEvent).encode(event), T0))
    out = engine.outputs
    commands = [
        codec_for(CompositionCommand).decode(s.value) for s in out.to("t." + names.COMMANDS)
    ]
    assert [c.source_event_id for c in commands] == [event.event_id]
    # keyed, the partition left to the engine (its producer: murmur2 of the key)
    assert [(s.key, s.partition) for s in out.to("t." + names.COMMANDS)] == [(CUSTOMER, None)]
    chained = out.to("t." + names.AUDIT)
    assert len(chained) >= 1
    assert {s.partition for s in chained} == {PARTITION}
    assert [codec_for(AuditRecord).decode(s.value).seq for s in chained] == list(
        range(1, len(chained) + 1)
    )
    heads = engine.stores["audit-chain-heads"][0]
    assert decode_head(heads.get(PARTITION, head_key(PARTITION))).seq == len(chained)
    assert parts.counters.events == 1
    assert parts.counters.commands == 1

    # the command is tracked (in the event's partition); its delivery events come back as statuses
    [command] = commands
    communications = engine.stores["communications"][0]
    assert [(p, k) for p, k, _ in communications.puts] == [
        (PARTITION, command.communication_id.encode())
    ]
    delivery = topology.name(names.DELIVERY_EVENTS)
    accepted = DeliveryEvent(
        event_id="d1",
        communication_id=command.communication_id,
        customer_id="cust-1",
        channel=command.channel,
        status=DeliveryStatus.ACCEPTED,
        occurred_at=T0 + 10,
    )
    await engine.handle(rec(delivery, 0, CUSTOMER, codec_for(DeliveryEvent).encode(accepted), T0))
    statuses = out.to("t." + names.COMMUNICATION_STATUS)
    assert [(s.key, s.partition) for s in statuses] == [(CUSTOMER, None)]
    assert parts.tracking.delivery_events == 1
    # one for a communication not known yet is parked
    early = dataclasses.replace(accepted, event_id="d2", communication_id="unknown")
    await engine.handle(rec(delivery, 1, CUSTOMER, codec_for(DeliveryEvent).encode(early), T0))
    parked = engine.stores["parked-delivery-events"][0]
    assert [(p, k) for p, k, _ in parked.puts] == [(PARTITION, b"unknown")]


async def test_undecodable_records_are_dead_lettered_with_audit_through_the_right_path() -> None:
    engine, parts, topology = installed()
    events_topic, rules_topic = topology.name(names.ACCOUNT_EVENTS), topology.name(names.COMM_RULES)
    await engine.handle(rec(events_topic, 3, CUSTOMER, b"\x00junk", T0))
    await engine.handle(Record(rules_topic, 0, 9, b"r1", b"\x00junk", None, T0))
    out = engine.outputs
    letters = [
        codec_for(DeadLetter).decode(s.value)
        for s in out.sent
        if s.topic.endswith(".dlq") and s.value is not None
    ]
    assert [(d.source_topic, d.source_offset) for d in letters] == [
        (events_topic, 3),
        (rules_topic, 9),
    ]
    # the event's audit record chained in its partition, the rule's through the intake
    [chained] = out.to("t." + names.AUDIT)
    assert chained.partition == PARTITION
    assert codec_for(AuditRecord).decode(chained.value).kind == AuditKind.DEAD_LETTER
    [intake] = out.to("t." + names.AUDIT_INTAKE)
    assert codec_for(AuditRecord).decode(intake.value).details["source"] == f"{rules_topic}/0/9"
    assert parts.counters.dead_letters == 2


async def test_run_waits_for_the_views_then_runs_the_engine_until_stopped() -> None:
    engine, parts, _ = installed()
    started = asyncio.Event()

    async def caught_up(timeout_s: float | None = None) -> None:
        started.set()

    async def follow() -> None:
        await asyncio.Event().wait()

    for view in (parts.rules, parts.templates):
        view.wait_ready = caught_up  # type: ignore[method-assign]
        view.run = follow  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(run(parts, stop, RoutingMetrics(), metrics_interval_s=60.0))
    await asyncio.wait_for(started.wait(), 10)
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.ran
    stop.set()
    await asyncio.wait_for(running, 10)


async def test_a_document_request_makes_one_tracked_command_and_its_retry_none() -> None:
    engine, parts, topology = installed()
    for t in template_catalogue():
        parts.templates.apply(template_key(t), codec_for(TemplateVersion).encode(t), [])
    requests = topology.name(names.DOCUMENT_REQUESTS)
    request = DocumentRequest(
        request_id="req-1",
        customer_id="cust-1",
        document_type="INVOICE",
        reference_id="INV-2026-0042",
        language="fr",
        delivery="SECURE_URL",
        requested_at=T0,
        fields={
            "amount_due": "120.50",
            "currency": "EUR",
            "due_date": "2026-02-15",
            "statement_period": "2026-01",
        },
    )
    value = codec_for(DocumentRequest).encode(request)
    await engine.handle(rec(requests, 0, CUSTOMER, value, T0))
    await engine.handle(rec(requests, 1, CUSTOMER, value, T0 + 1))  # the portal retried
    commands = engine.outputs.to("t." + names.COMMANDS)
    assert [(s.key, s.partition) for s in commands] == [(CUSTOMER, None)]
    [command] = [codec_for(CompositionCommand).decode(s.value) for s in commands]
    communications = engine.stores["communications"][0]
    assert communications.get(PARTITION, command.communication_id.encode()) is not None
    assert (parts.requests.commands, parts.requests.retries) == (1, 1)
    kinds = [
        codec_for(AuditRecord).decode(s.value).kind for s in engine.outputs.to("t." + names.AUDIT)
    ]
    assert kinds == [AuditKind.COMMAND_EMITTED, AuditKind.SUPPRESSED]


def test_the_group_timing_is_a_consumer_setting_without_static_membership() -> None:
    settings = group_settings(worker_settings(session_timeout_s=20.0))
    assert settings == {"session.timeout.ms": "20000", "heartbeat.interval.ms": "3000"}
    assert "group.instance.id" not in settings


async def test_serve_gives_the_group_timing_to_the_consumer_not_to_every_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[EngineConfig] = []

    class _Built(Exception):
        pass

    def capture(config: EngineConfig, **_guard: object) -> None:
        seen.append(config)
        raise _Built

    monkeypatch.setattr(engine_module, "Engine", capture)
    with pytest.raises(_Built):
        await engine_worker.serve(
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
            worker=worker_settings(session_timeout_s=20.0, instance_id="slot-1"),
            topology=load_topology("local", prefix="t."),
            metrics=RoutingMetrics(),
        )
    [config] = seen
    assert config.consumer == group_settings(worker_settings(session_timeout_s=20.0))
    assert config.instance_id == "slot-1"
    assert not set(config.consumer) & set(config.kafka)
    assert config.static_membership is False


def test_the_tables_go_on_disk_under_the_state_dir_only_with_the_rocksdb_store(
    tmp_path: Path,
) -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:9")
    in_memory = engine_config(kafka, WorkerSettings(data_dir=str(tmp_path)), "slot-1")
    assert in_memory.state_dir is None
    assert in_memory.instance_id == "slot-1"
    on_disk = engine_config(
        kafka, WorkerSettings(data_dir=str(tmp_path), app_id="r", store="rocksdb://"), "slot-1"
    )
    assert on_disk.state_dir == tmp_path / "r" / "tables"
    assert in_memory.changelog_replication_factor == -1  # the broker's default
    replicated = WorkerSettings(data_dir=str(tmp_path), replication_factor=3)
    assert engine_config(kafka, replicated, "s").changelog_replication_factor == 3
