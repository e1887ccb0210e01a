"""Every Kafka input of the system under hostile records, through the real processes.

One run (module fixture) on the real broker: the routing worker, the bulk sink and the Exstream
emulator run as their own processes; a seeded simulator workload (the good records) is published
interleaved with a few hundred hypothesis-drawn hostile records per input topic (random bytes,
empty and null values, truncated Avro, another record type, unknown fingerprints, other framings,
values near the broker's size limit, broken JSON, keys of no or of another customer, schema-valid
records whose content the domain or Exstream refuses). The tests then check what came out:

- every bad record is on its ``<topic>.dlq`` with a reason naming the problem, its original
  bytes (or, when too large to copy, their size and digest) and its source coordinates;
- every good record produced what an independent reference computation expects (commands),
  what the delivery state machine must emit (statuses), or what the sink must submit;
- the processes stayed up, no agent crashed, and the consumer groups committed past everything.

A second phase then publishes the inputs that exposed defects of the worker: events and
preferences keyed by another customer, an event after a JSON preference, delivery events that
cannot apply to their communication, reference records whose content the domain cannot use, and
document requests (once consumed by nothing; now hostile ones are dead-lettered and good ones,
retries included, become exactly the reference's commands), all asserted. Phase 1's results are
taken before, so phase 2 cannot blur them.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import DecodeError, codec_for
from streams.deadletter.cli import dlq as dlq_cli
from streams.deadletter.letters import (
    H_ERROR_TYPE,
    H_OMITTED,
    H_REASON,
    H_SOURCE_OFFSET,
    MAX_COPIED_BYTES,
    MAX_REASON_CHARS,
    dead_letter_headers,
    make_dead_letter,
    replay_headers,
)
from streams.demo.processes import (
    ServiceProcess,
    WorkerProcess,
    committed,
    end_offsets,
    free_port,
    wait_consumed,
    wait_http,
)
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    CaseEvent,
    CommRule,
    CommunicationStatus,
    CompositionCommand,
    Condition,
    DeadLetter,
    DeliveryEvent,
    DocumentRequest,
    Preference,
    QuietHours,
    Submission,
    TemplateVersion,
)
from streams.simulator.generator import Dataset, Scenario, SimRequest, generate, template_key
from streams.simulator.publish import request_bytes
from streams.topic_reader import RawRecord
from tests.conftest import KafkaCluster
from tests.e2e.helpers import assert_commands_match
from tests.e2e.reference import Expected, expected_outcome
from tests.fuzz.strategies import (
    JSON,
    Hostile,
    Pool,
    command_refusals,
    draw_many,
    event_domain_attacks,
    framing_attacks,
    json_attacks,
    oversized,
)
from tests.sink.test_sink_e2e import make_commands
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

E2E = pytest.mark.e2e

SEED = 20261128
SCENARIO = Scenario(
    seed=SEED, customers=150, events=500, invalid_share=0.0, json_share=0.15, repeat_share=0.05
)
HOSTILE = 240
"""Hostile records drawn per input topic (plus two near the broker's size limit)."""
BIG = (970_000, 1_040_000)
"""Near-limit values: one a dead letter can still copy whole, one it cannot."""
NULL_KEYED = 10
"""Good events published without a key (the worker falls back to the record's customer id)."""
CLIENT_SECRET = "fuzz-client-secret"
WORKER_TOPICS = (
    names.ACCOUNT_EVENTS,
    names.CASE_EVENTS,
    names.PREFERENCES,
    names.COMM_RULES,
    names.TEMPLATES,
    names.DELIVERY_EVENTS,
)
PHASE1_TOPICS = (*WORKER_TOPICS, names.COMMANDS)


# --------------------------------------------------------------------------- records and results


@dataclass
class Sent:
    """One published record, whether it was meant to be bad, and where it landed."""

    topic: str
    record: Hostile
    bad: bool
    phase: int = 1
    partition: int = -1
    offset: int = -1


def _good(topic: str, key: bytes | None, value: bytes | None, json: bool = False) -> Sent:
    return Sent(topic, Hostile("good", key, value, (JSON,) if json else ()), bad=False)


def _bad(topic: str, records: Sequence[Hostile], phase: int = 1) -> list[Sent]:
    return [Sent(topic, r, bad=True, phase=phase) for r in records]


@dataclass
class Plan:
    """What phase 1 publishes and what must come of its good records."""

    reference: list[Sent]
    """Templates, rules and preferences: published before the worker starts."""
    stream: list[Sent]
    """Events, delivery events and commands: published once the worker holds the references."""
    good_events: int
    null_keyed: int
    good_commands: list[CompositionCommand]
    good_deliveries: list[DeliveryEvent]
    expected: Expected
    draw_seconds: float


@dataclass
class Run:
    topology: Topology
    bootstrap: str
    plan: Plan
    phase2: list[Sent]
    outputs: dict[str, list[RawRecord]]
    """Every output and dead-letter topic after phase 1."""
    outputs_after: dict[str, list[RawRecord]]
    """The same after phase 2 (the known defects)."""
    worker_crashes: int
    worker_crashes_after: int
    sink_failures: int
    alive: dict[str, bool]
    lag: dict[str, int]
    """consumer/topics -> records not committed after phase 1 (0: consumed past everything)."""
    seconds: dict[str, float] = field(default_factory=dict)

    def name(self, logical: str) -> str:
        return self.topology.name(logical)

    @property
    def sent(self) -> list[Sent]:
        return [*self.plan.reference, *self.plan.stream, *self.phase2]

    def letters(self, topic: str, *, after: bool = False) -> list[tuple[RawRecord, DeadLetter]]:
        source = self.outputs_after if after else self.outputs
        codec = codec_for(DeadLetter)
        return [(r, codec.decode(r.value)) for r in source[names.dlq(topic)]]


# --------------------------------------------------------------------------- Kafka helpers


def _interleave(good: Sequence[Sent], bad: Sequence[Sent], rng: random.Random) -> list[Sent]:
    """Both lists merged at random, each keeping its own order (a customer's events stay in
    order, so suppression decides as the reference does)."""
    out: list[Sent] = []
    i = j = 0
    while i < len(good) or j < len(bad):
        share = len(bad) / (len(bad) + len(good))
        if j < len(bad) and (i >= len(good) or rng.random() < share):
            out.append(bad[j])
            j += 1
        else:
            out.append(good[i])
            i += 1
    return out


def _publish(bootstrap: str, sends: Sequence[Sent]) -> None:
    """Produce every record (Java's partitioner, acks=all) and note where each landed."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "linger.ms": 10,
            # room for the near-limit records: a Java producer's default max.request.size
            "message.max.bytes": 1_048_576,
        }
    )
    errors: list[str] = []
    for sent in sends:

        def delivered(err: Any, msg: Any, sent: Sent = sent) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                sent.partition, sent.offset = msg.partition(), msg.offset()

        while True:
            try:
                producer.produce(
                    sent.topic,
                    key=sent.record.key,
                    value=sent.record.value,
                    headers=list(sent.record.headers) or None,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert errors == [], errors[:3]


def _read(
    bootstrap: str, topics: Sequence[str], timeout_s: float = 60.0
) -> dict[str, list[RawRecord]]:
    """Every committed record of ``topics``, with one consumer for all of them (``read_topic``
    waits on each partition that ends with a transaction marker: slow for many topics)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fuzz-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    out: dict[str, list[RawRecord]] = {topic: [] for topic in topics}
    try:
        metadata = consumer.list_topics(timeout=30).topics
        pending: dict[TopicPartition, int] = {}
        for topic in topics:
            for partition in metadata[topic].partitions:
                tp = TopicPartition(topic, partition)
                low, high = consumer.get_watermark_offsets(tp, timeout=30, cached=False)
                if high > low:
                    pending[tp] = high
        consumer.assign(
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in pending]
        )
        deadline = time.monotonic() + timeout_s
        while pending:
            assert time.monotonic() < deadline, f"reading stalled: {sorted(map(str, pending))[:3]}"
            for msg in consumer.consume(num_messages=2000, timeout=0.5):
                assert msg.error() is None, msg.error()
                topic = str(msg.topic())
                key, value = msg.key(), msg.value()
                raw_headers: Any = msg.headers() or []
                out[topic].append(
                    RawRecord(
                        topic,
                        int(msg.partition() or 0),
                        int(msg.offset() or 0),
                        key if isinstance(key, bytes) else None,
                        value if isinstance(value, bytes) else None,
                        [(str(k), v if isinstance(v, bytes) else b"") for k, v in raw_headers],
                        msg.timestamp()[1],
                    )
                )
            # done past the last record, commit markers included (read_committed position)
            for tp in consumer.position(list(pending)):
                if tp.offset >= pending[TopicPartition(tp.topic, tp.partition)]:
                    del pending[TopicPartition(tp.topic, tp.partition)]
    finally:
        consumer.close()
    return out


def _last_records(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    """Per partition, the offset after its last record. Not the end offset: a topic written in
    transactions ends with a commit marker, which no consumer ever reads or commits past."""
    return {
        TopicPartition(topic, record.partition): record.offset + 1
        for record in _read(bootstrap, [topic])[topic]
    }


def _behind(bootstrap: str, group: str, targets: dict[TopicPartition, int]) -> int:
    """How many records of ``targets`` the group has not committed yet."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        done = committed(probe, list(targets))
    finally:
        probe.close()
    return sum(max(0, end - max(done.get(tp, 0), 0)) for tp, end in targets.items())


def _wait_past(
    bootstrap: str,
    group: str,
    targets: dict[TopicPartition, int],
    process: ServiceProcess,
    timeout_s: float,
) -> None:
    deadline = time.monotonic() + timeout_s
    while (behind := _behind(bootstrap, group, targets)) > 0:
        assert process.alive(), process.tail()
        assert time.monotonic() < deadline, f"{group}: {behind} records not committed"
        time.sleep(0.5)


def _crashes(log: Path) -> int:
    """A handler that raised ends the worker with ``HandlerFailed`` (its transaction aborted):
    a record the worker cannot handle would stop routing until someone fixes it."""
    lines = log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if "HandlerFailed" in line)


# --------------------------------------------------------------------------- what is published


def _plan(dataset: Dataset, t: Callable[[str], str], rng: random.Random) -> Plan:
    """Phase 1: the good records, the hostile ones drawn by hypothesis, interleaved."""
    customers = Pool(p.customer_id for p in dataset.preferences)
    good_events = [e for e in dataset.events if e.invalid is None]
    per_customer = Counter(e.record.customer_id for e in good_events)
    # alone of their customer, so that a random partition cannot reorder them
    null_keyed = {e.record.event_id for e in good_events if per_customer[e.record.customer_id] == 1}
    null_keyed = set(sorted(null_keyed)[:NULL_KEYED])
    expected = expected_outcome(
        dataclasses.replace(dataset, events=good_events),
        source_topics=lambda e: t(
            names.ACCOUNT_EVENTS if isinstance(e, AccountEvent) else names.CASE_EVENTS
        ),
    )
    commands = make_commands(60, seed=SEED)
    tracked = sorted(expected.commands.values(), key=lambda c: c.communication_id)[:40]
    deliveries = [
        DeliveryEvent(
            event_id=f"dev-fz-{i}",
            communication_id=c.communication_id,
            customer_id=c.customer_id,
            channel=c.channel,
            status="ACCEPTED",
            occurred_at=c.created_at + 1_000,
        )
        for i, c in enumerate(tracked)
    ]
    accounts = Pool(e.record for e in good_events if isinstance(e.record, AccountEvent))
    cases = Pool(e.record for e in good_events if isinstance(e.record, CaseEvent))

    def hostile(
        cls: type,
        samples: Sequence[Any],
        salt: int,
        *,
        compacted: bool = False,
        extra: st.SearchStrategy[Hostile] | None = None,
    ) -> list[Hostile]:
        pool = Pool(samples)
        options = [
            framing_attacks(cls, pool, customers, compacted=compacted),
            framing_attacks(cls, pool, customers, compacted=compacted),
            json_attacks(cls, pool, customers, compacted=compacted),
            *([extra, extra] if extra is not None else []),
        ]
        drawn = draw_many(st.one_of(options), HOSTILE, SEED + salt)
        key = str(getattr(samples[0], "customer_id", "fz-oversized")).encode()
        return drawn + [oversized(size, key, rng) for size in BIG]

    drawn_at = time.monotonic()
    bad = {
        names.ACCOUNT_EVENTS: hostile(
            AccountEvent, accounts, 1, extra=event_domain_attacks(accounts)
        ),
        names.CASE_EVENTS: hostile(CaseEvent, cases, 2, extra=event_domain_attacks(cases)),
        names.PREFERENCES: hostile(Preference, dataset.preferences, 3, compacted=True),
        names.COMM_RULES: hostile(CommRule, dataset.rules, 4, compacted=True),
        names.TEMPLATES: hostile(TemplateVersion, dataset.templates, 5, compacted=True),
        names.DELIVERY_EVENTS: hostile(DeliveryEvent, deliveries, 6),
        names.COMMANDS: hostile(
            CompositionCommand, commands, 7, extra=command_refusals(Pool(commands))
        ),
    }
    draw_seconds = time.monotonic() - drawn_at

    def mixed(logical: str, good: list[Sent]) -> list[Sent]:
        return _interleave(good, _bad(t(logical), bad[logical]), rng)

    # compacted topics: tombstones of keys never used are good records too
    templates, rules, prefs = t(names.TEMPLATES), t(names.COMM_RULES), t(names.PREFERENCES)
    tcodec, rcodec, pcodec = codec_for(TemplateVersion), codec_for(CommRule), codec_for(Preference)
    reference = mixed(
        names.TEMPLATES,
        [_good(templates, template_key(x).encode(), tcodec.encode(x)) for x in dataset.templates]
        + [_good(templates, f"tpl-fz-gone/{i}/en".encode(), None) for i in range(5)],
    )
    reference += mixed(
        names.COMM_RULES,
        [_good(rules, r.rule_id.encode(), rcodec.encode(r)) for r in dataset.rules]
        + [_good(rules, f"rule-fz-gone-{i}".encode(), None) for i in range(5)]
        + [
            Sent(rules, Hostile("orphan_rule", r.rule_id.encode(), rcodec.encode(r)), bad=False)
            for r in _orphan_rules(dataset)
        ],
    )
    reference += mixed(
        names.PREFERENCES,
        [_good(prefs, p.customer_id.encode(), pcodec.encode(p)) for p in dataset.preferences]
        + [_good(prefs, f"cust-9{i:05d}".encode(), None) for i in range(5)],
    )

    events = []
    for sim in good_events:
        is_account = isinstance(sim.record, AccountEvent)
        codec: Any = codec_for(AccountEvent) if is_account else codec_for(CaseEvent)
        as_json = sim.encoding == "json"
        value = codec.encode_json(sim.record) if as_json else codec.encode(sim.record)
        key = None if sim.record.event_id in null_keyed else sim.record.customer_id.encode()
        topic = t(names.ACCOUNT_EVENTS if is_account else names.CASE_EVENTS)
        events.append(_good(topic, key, value, json=as_json))
    stream = _interleave(
        events,
        _bad(t(names.ACCOUNT_EVENTS), bad[names.ACCOUNT_EVENTS])
        + _bad(t(names.CASE_EVENTS), bad[names.CASE_EVENTS]),
        rng,
    )
    dcodec, kcodec = codec_for(DeliveryEvent), codec_for(CompositionCommand)
    delivery_topic, commands_topic = t(names.DELIVERY_EVENTS), t(names.COMMANDS)
    stream += mixed(
        names.DELIVERY_EVENTS,
        [_good(delivery_topic, d.customer_id.encode(), dcodec.encode(d)) for d in deliveries],
    )
    stream += mixed(
        names.COMMANDS,
        [_good(commands_topic, c.customer_id.encode(), kcodec.encode(c)) for c in commands],
    )
    return Plan(
        reference=reference,
        stream=stream,
        good_events=len(good_events),
        null_keyed=len(null_keyed),
        good_commands=commands,
        good_deliveries=deliveries,
        expected=expected,
        draw_seconds=draw_seconds,
    )


def _orphan_rules(dataset: Dataset) -> list[CommRule]:
    """Rules naming templates Exstream does not have: refused as documented (flow 6), by an
    alignment alert to both sides, not by a dead letter. Their condition never holds, so they
    change no event's routing."""
    return [
        dataclasses.replace(
            dataset.rules[0],
            rule_id=f"rule-fz-orphan-{i}",
            template_id=f"tpl-fz-unknown-{i}",
            conditions=[Condition(field="amount_due", op="EQ", value="never")],
        )
        for i in range(5)
    ]


@functools.cache
def _dataset() -> Dataset:
    return generate(SCENARIO)


def _good_requests(dataset: Dataset) -> list[SimRequest]:
    """Valid portal requests of the scenario's customers (retries among them)."""
    scenario = dataclasses.replace(SCENARIO, document_requests=40, invalid_share=0.0)
    requests = generate(scenario).document_requests
    assert all(r.invalid is None for r in requests)
    assert generate(scenario).preferences == dataset.preferences
    return requests


def _known_defects(dataset: Dataset, expected: Expected, t: Callable[[str], str]) -> list[Sent]:
    """Phase 2: records the worker is known to mishandle, each tagged by its category. In this
    order: the JSON preference must come before its customer's event."""
    out: list[Sent] = []

    def add(
        logical: str, category: str, key: bytes | None, value: bytes, json: bool = False
    ) -> None:
        record = Hostile(category, key, value, (JSON,) if json else ())
        out.append(Sent(t(logical), record, bad=True, phase=2))

    acodec, pcodec = codec_for(AccountEvent), codec_for(Preference)
    rcodec, tcodec = codec_for(CommRule), codec_for(TemplateVersion)
    accounts = [
        e.record for e in dataset.events if isinstance(e.record, AccountEvent) and e.invalid is None
    ]
    # keyed by another customer than the record's
    for i, event in enumerate(accounts[:10]):
        other = f"cust-{(int(event.customer_id[5:]) + 1) % SCENARIO.customers:06d}"
        moved = dataclasses.replace(event, event_id=f"fz-moved-{i}")
        add(names.ACCOUNT_EVENTS, "key_mismatch", other.encode(), acodec.encode(moved))
    # a preference published as JSON (as Air Inc. may), then an event of that customer
    customer = "cust-fz-json"
    pref = dataclasses.replace(dataset.preferences[0], customer_id=customer)
    add(names.PREFERENCES, "json_preference", customer.encode(), pcodec.encode_json(pref), True)
    billing = next(e for e in accounts if e.event_type == "BILLING_CYCLE_CLOSED")
    event = dataclasses.replace(billing, event_id="fz-json-pref", customer_id=customer)
    add(names.ACCOUNT_EVENTS, "after_json_preference", customer.encode(), acodec.encode(event))
    # document requests: hostile framings, requests the domain refuses, and good ones
    requests_topic = t(names.DOCUMENT_REQUESTS)
    good_requests = _good_requests(dataset)
    request = good_requests[0].record
    attacks = framing_attacks(DocumentRequest, Pool([request]), Pool(["cust-000001"]))
    out += _bad(requests_topic, draw_many(attacks, 20, SEED + 99), phase=2)
    qcodec = codec_for(DocumentRequest)
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("unknown_document_type", {"document_type": "TAX_CERTIFICATE"}, "UNKNOWN_DOCUMENT_TYPE"),
        ("missing_request_field", {"fields": {}}, "MISSING_FIELD"),
        ("invalid_delivery", {"delivery": "FAX"}, "INVALID_FIELD"),
        ("invalid_language", {"language": "x"}, "INVALID_FIELD"),
    ]
    for i, (category, change, code) in enumerate(refused):
        name = next(iter(change))
        refused_request = dataclasses.replace(
            request, request_id=f"req-fz-bad-{i}", **{name: change[name]}
        )
        hostile = Hostile(
            category,
            refused_request.customer_id.encode(),
            qcodec.encode(refused_request),
            (),
            frozenset({code}),
            (name.replace("_", " "),),
        )
        out.append(Sent(requests_topic, hostile, bad=True, phase=2))
    moved_request = dataclasses.replace(request, request_id="req-fz-moved")
    hostile = Hostile(
        "request_key_mismatch",
        b"cust-000002",
        qcodec.encode(moved_request),
        (),
        frozenset({"KEY_MISMATCH"}),
        ("key",),
    )
    out.append(Sent(requests_topic, hostile, bad=True, phase=2))
    rng = random.Random(SEED)
    for sim in good_requests:
        value, headers = request_bytes(sim, rng)
        key = sim.record.customer_id.encode()
        json = (JSON,) if headers else ()
        out.append(Sent(requests_topic, Hostile("good_request", key, value, json), False, 2))
    # reference records whose content the domain cannot use
    for i in range(5):
        rule = dataclasses.replace(
            dataset.rules[0],
            rule_id=f"rule-fz-bad-{i}",
            event_type=f"NOT_AN_EVENT_{i}",
            conditions=[Condition(field="amount_due", op="BOGUS", value="1")],
            version=-i,
        )
        add(names.COMM_RULES, "domain_rule", rule.rule_id.encode(), rcodec.encode(rule))
        template = dataclasses.replace(
            dataset.templates[0],
            template_id=f"tpl-fz-bad-{i}",
            version=-i,
            status="BOGUS",
            channels=["FAX"],
            language="",
        )
        key = template_key(template).encode()
        add(names.TEMPLATES, "domain_template", key, tcodec.encode(template))
        bad_pref = dataclasses.replace(
            dataset.preferences[1],
            customer_id=f"cust-fz-badpref-{i}",
            language="",
            quiet_hours=QuietHours(start_hour=99, end_hour=-5),
            updated_at=-1,
        )
        key = bad_pref.customer_id.encode()
        add(names.PREFERENCES, "domain_preference", key, pcodec.encode(bad_pref))
    # delivery events of known communications that cannot apply to them
    dcodec = codec_for(DeliveryEvent)
    commands = sorted(expected.commands.values(), key=lambda c: c.communication_id)[40:46]
    for i, command in enumerate(commands):
        base = DeliveryEvent(
            event_id=f"dev-fz-bad-{i}",
            communication_id=command.communication_id,
            customer_id=command.customer_id,
            channel=command.channel,
            status="COMPOSED",
            occurred_at=command.created_at + 1,
        )
        variant = [
            dataclasses.replace(base, status="TELEPORTED"),
            dataclasses.replace(base, channel="FAX"),
            dataclasses.replace(base, customer_id="cust-999999"),
        ][i % 3]
        key = variant.customer_id.encode()
        add(names.DELIVERY_EVENTS, "domain_delivery", key, dcodec.encode(variant))
    return out


# --------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def run(kafka: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Run:
    started = time.monotonic()
    bootstrap = kafka.bootstrap_servers
    workdir = tmp_path_factory.mktemp("fuzz-topics")
    prefix = f"fz{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    t = topology.name
    dataset = generate(SCENARIO)
    plan = _plan(dataset, t, random.Random(SEED))
    _publish(bootstrap, plan.reference)  # the worker must hold these before events refer to them

    app_id = f"router-fz-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(bootstrap, prefix, app_id, workdir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = ServiceProcess(
        "emulator",
        [
            *("exstream-emulator", "--port", str(port), "--seed", "5"),
            *("--latency-median-ms", "1", "--latency-p99-ms", "5"),
        ],
        workdir,
        {"EXSTREAM_CLIENT_SECRET": CLIENT_SECRET},
    )
    sink_group = f"sink-fz-{uuid.uuid4().hex[:6]}"
    sink = ServiceProcess(
        "sink",
        [
            *("sink", "--prefix", prefix, "--exstream-url", url),
            *("--group-id", sink_group, "--batch-size", "50"),
        ],
        workdir,
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_CLIENT_SECRET": CLIENT_SECRET},
    )
    processes = (worker, emulator, sink)
    seconds = {"setup": time.monotonic() - started, "hypothesis_draw": plan.draw_seconds}
    worker_inputs = [t(n) for n in WORKER_TOPICS]
    outputs_topics = [
        t(names.COMMANDS),
        t(names.COMMUNICATION_STATUS),
        t(names.SUBMISSIONS),
        t(names.ALIGNMENT_ALERTS),
        *(names.dlq(t(n)) for n in (*PHASE1_TOPICS, names.DOCUMENT_REQUESTS)),
    ]
    worker.start()
    emulator.start()
    try:
        wait_http(f"{url}/_emulator/healthz", emulator)
        sink.start()
        wait_consumed(bootstrap, app_id, [t(names.PREFERENCES)], worker=worker, timeout_s=180)
        seconds["worker_ready"] = time.monotonic() - started

        # ---- phase 1
        published_at = time.monotonic()
        _publish(bootstrap, plan.stream)
        wait_consumed(bootstrap, app_id, worker_inputs, worker=worker, timeout_s=240)
        # the commands topic now holds the worker's commands too: the sink reads them all
        commands = _last_records(bootstrap, t(names.COMMANDS))
        _wait_past(bootstrap, sink_group, commands, sink, timeout_s=180)
        seconds["phase1_processing"] = time.monotonic() - published_at
        lag = {
            "worker/inputs": _behind(
                bootstrap, app_id, dict(end_offsets(bootstrap, worker_inputs))
            ),
            "sink/commands": _behind(bootstrap, sink_group, commands),
        }
        crashes = _crashes(worker.log)
        sink_failures = sink.log.read_text(errors="replace").count("sink batch failed")
        read_at = time.monotonic()
        outputs = _read(bootstrap, outputs_topics)
        seconds["read_back"] = time.monotonic() - read_at

        # ---- phase 2: the known defects
        phase2 = _known_defects(dataset, plan.expected, t)
        later = [s for s in phase2 if s.record.category == "after_json_preference"]
        _publish(bootstrap, [s for s in phase2 if s not in later])
        phase2_inputs = [*worker_inputs, t(names.DOCUMENT_REQUESTS)]
        wait_consumed(bootstrap, app_id, phase2_inputs, worker=worker, timeout_s=120)
        _publish(bootstrap, later)  # once the JSON preference is in the worker's table
        wait_consumed(bootstrap, app_id, phase2_inputs, worker=worker, timeout_s=120)
        outputs_after = _read(bootstrap, outputs_topics)
        crashes_after = _crashes(worker.log)
        alive = {p.name: p.alive() for p in processes}
    finally:
        for process in reversed(processes):
            process.stop()
    seconds["total"] = time.monotonic() - started
    return Run(
        topology=topology,
        bootstrap=bootstrap,
        plan=plan,
        phase2=phase2,
        outputs=outputs,
        outputs_after=outputs_after,
        worker_crashes=crashes,
        worker_crashes_after=crashes_after,
        sink_failures=sink_failures,
        alive=alive,
        lag=lag,
        seconds=seconds,
    )


# --------------------------------------------------------------------------- phase 1 checks


def _phase1(run: Run, topic: str) -> list[Sent]:
    return [s for s in run.sent if s.topic == topic and s.phase == 1]


def _by_source(
    letters: list[tuple[RawRecord, DeadLetter]],
) -> dict[tuple[int, int], list[tuple[RawRecord, DeadLetter]]]:
    out: dict[tuple[int, int], list[tuple[RawRecord, DeadLetter]]] = defaultdict(list)
    for raw, letter in letters:
        out[(letter.source_partition, letter.source_offset)].append((raw, letter))
    return out


def _check_letter(sent: Sent, raw: RawRecord, letter: DeadLetter) -> None:
    """One dead letter of ``sent``: where it came from, why, and its bytes."""
    record = sent.record
    where = f"{sent.topic}/{sent.partition}/{sent.offset} ({record.category})"
    assert letter.source_topic == sent.topic, where
    assert letter.error_type in record.codes, (where, letter.error_type, letter.reason)
    reason = letter.reason.lower()
    for word in record.mentions:
        assert word.lower() in reason, (where, word, letter.reason)
    for value in record.withheld:
        assert value not in letter.reason, (where, "a value is quoted in the reason")
    headers = dict(raw.headers)
    assert headers[H_REASON].decode() == letter.reason, where
    assert headers[H_ERROR_TYPE].decode() == letter.error_type, where
    assert headers[H_SOURCE_OFFSET] == str(sent.offset).encode(), where
    omitted = letter.original_headers.get(H_OMITTED)
    if omitted is None:
        assert letter.original_value == record.value, (where, "the original bytes are kept")
        assert letter.original_key == record.key, where
        assert dict(letter.original_headers) == {k: v.decode() for k, v in record.headers}, where
    else:
        assert record.value is not None, where
        assert len(record.value) > MAX_COPIED_BYTES, where
        assert letter.original_value is None, where
        assert hashlib.sha256(record.value).hexdigest() in omitted, where
        assert f"{sent.topic}/{sent.partition}/{sent.offset}" in letter.reason, where


def _checked_topic(run: Run, logical: str) -> dict[str, Any]:
    topic = run.name(logical)
    letters = _by_source(run.letters(topic))
    sends = _phase1(run, topic)
    bad = [s for s in sends if s.bad]
    coordinates = {(s.partition, s.offset) for s in bad}
    stray = sorted(set(letters) - coordinates)
    assert stray == [], f"{topic}: dead letters of records that were not bad, e.g. {stray[:3]}"
    for sent in bad:
        found = letters.get((sent.partition, sent.offset), [])
        # one consumer per topic (the sink alone reads the commands topic): one letter each
        assert len(found) == 1, (
            f"{topic}/{sent.partition}/{sent.offset} ({sent.record.category}): "
            f"{len(found)} dead letters"
        )
        for raw, letter in found:
            _check_letter(sent, raw, letter)
    codes = Counter(letter.error_type for found in letters.values() for _, letter in found)
    return {
        "good": len(sends) - len(bad),
        "bad": len(bad),
        "dead_letters": sum(len(found) for found in letters.values()),
        "codes": dict(sorted(codes.items())),
        "categories": dict(sorted(Counter(s.record.category for s in bad).items())),
    }


@E2E
def test_the_processes_stayed_up_and_consumed_past_every_record(run: Run) -> None:
    print(f"\ntopic fuzz timings (s): { {k: round(v, 1) for k, v in run.seconds.items()} }")
    print(f"processes alive at the end: {run.alive}; uncommitted records: {run.lag}")
    assert all(run.alive.values()), run.alive
    assert run.worker_crashes == 0, "a handler raised (the worker stopped on a record)"
    assert run.sink_failures == 0
    assert run.lag, "the lag was measured"
    assert all(n == 0 for n in run.lag.values()), run.lag


@E2E
@pytest.mark.parametrize("logical", PHASE1_TOPICS)
def test_every_bad_record_is_dead_lettered_with_its_reason_and_original(
    run: Run, logical: str
) -> None:
    figures = _checked_topic(run, logical)
    print(f"\n{logical}: {figures}")
    assert figures["bad"] >= HOSTILE


@E2E
def test_near_limit_records_are_dead_lettered_and_replay_refuses_what_was_not_copied(
    run: Run,
) -> None:
    omitted = copied = 0
    for logical in PHASE1_TOPICS:
        topic = run.name(logical)
        letters = _by_source(run.letters(topic))
        for sent in _phase1(run, topic):
            if sent.record.category != "oversized":
                continue
            for _, letter in letters[(sent.partition, sent.offset)]:
                if H_OMITTED in letter.original_headers:
                    omitted += 1
                else:
                    copied += 1
                    assert letter.original_value == sent.record.value
    account = run.name(names.ACCOUNT_EVENTS)
    result = CliRunner().invoke(
        dlq_cli,
        ["replay", "--source", account, "--dry-run", "--bootstrap-servers", run.bootstrap],
    )
    print(f"\nnear-limit records: {copied} dead letters hold them whole, {omitted} by digest")
    assert result.exit_code == 0, result.output
    assert result.output.count("cannot replay") == 1, result.output[-2000:]
    would = len(run.letters(account, after=True))  # the whole topic, phase 2's letters too
    assert f"{would - 1} dead letter(s) selected" in result.output
    assert copied >= len(PHASE1_TOPICS)
    assert omitted >= len(PHASE1_TOPICS)


@E2E
def test_the_good_records_produce_their_expected_outputs(run: Run) -> None:
    codec = codec_for(CompositionCommand)
    published = {c.communication_id for c in run.plan.good_commands}
    refused: set[str] = set()
    for sent in _phase1(run, run.name(names.COMMANDS)):
        if not sent.bad:
            continue
        try:
            refused.add(codec.decode(sent.record.value, list(sent.record.headers)).communication_id)
        except DecodeError:
            continue
    routed: dict[str, CompositionCommand] = {}
    for raw in run.outputs[run.name(names.COMMANDS)]:
        try:
            command = codec.decode(raw.value, raw.headers)
        except DecodeError:
            continue  # a hostile record published on the commands topic
        if command.communication_id in published or command.communication_id in refused:
            continue
        assert command.communication_id not in routed, "a command was emitted twice"
        routed[command.communication_id] = command
    assert_commands_match(routed.values(), run.plan.expected.commands)

    statuses = {
        (s.communication_id, s.status)
        for s in (
            codec_for(CommunicationStatus).decode(r.value)
            for r in run.outputs[run.name(names.COMMUNICATION_STATUS)]
        )
    }
    wanted = {(d.communication_id, d.status) for d in run.plan.good_deliveries}
    assert wanted <= statuses, (
        f"delivery events without their status: {sorted(wanted - statuses)[:3]}"
    )

    submitted = {
        codec_for(Submission).decode(r.value).communication_id
        for r in run.outputs[run.name(names.SUBMISSIONS)]
    }
    assert published <= submitted, sorted(published - submitted)[:3]
    assert set(run.plan.expected.commands) <= submitted
    assert not refused & submitted, "a command Exstream refused was recorded as submitted"
    print(
        f"\ngood records: {run.plan.good_events} events ({run.plan.null_keyed} without a key) "
        f"-> {len(routed)} commands (as the reference expects), "
        f"{len(run.plan.good_deliveries)} delivery events -> their statuses, "
        f"{len(published)} published commands + {len(routed)} routed -> "
        f"{len(submitted)} submissions"
    )
    assert len(routed) > 100


@E2E
def test_rules_naming_unknown_templates_are_refused_by_an_alignment_alert(run: Run) -> None:
    orphans = [s for s in run.plan.reference if s.record.category == "orphan_rule"]
    alerts = [
        codec_for(AlignmentAlert).decode(r.value)
        for r in run.outputs[run.name(names.ALIGNMENT_ALERTS)]
    ]
    by_rule = {a.rule_id: a for a in alerts if a.kind == "MISSING_TEMPLATE"}
    print(f"\nrules naming unknown templates: {len(orphans)}, alerts {len(alerts)} in all")
    assert orphans
    for sent in orphans:
        rule_id = (sent.record.key or b"").decode()
        alert = by_rule.get(rule_id)
        assert alert is not None, f"no MISSING_TEMPLATE alert for {rule_id}"
        assert alert.template_id in alert.message
        assert "does not exist" in alert.message


# --------------------------------------------------------------------------- known defects


def _letters_for(run: Run, category: str) -> tuple[list[Sent], int]:
    """The phase-2 records of ``category`` and how many of them were dead-lettered."""
    sends = [s for s in run.phase2 if s.record.category == category]
    found = 0
    for sent in sends:
        letters = _by_source(run.letters(sent.topic, after=True))
        found += bool(letters.get((sent.partition, sent.offset)))
    return sends, found


@E2E
def test_an_event_keyed_by_another_customer_is_dead_lettered(run: Run) -> None:
    sends, found = _letters_for(run, "key_mismatch")
    print(f"\nkey mismatch: {len(sends)} events, {found} dead-lettered")
    assert sends
    assert found == len(sends)


@E2E
def test_an_event_after_a_json_preference_is_routed(run: Run) -> None:
    codec = codec_for(CompositionCommand)
    commands = [
        codec.decode(r.value)
        for r in run.outputs_after[run.name(names.COMMANDS)]
        if _decodes(codec, r)
    ]
    routed = [c for c in commands if c.source_event_id == "fz-json-pref"]
    _, found = _letters_for(run, "after_json_preference")
    print(
        f"\nJSON preference: {len(routed)} commands, {found} dead letters, "
        f"{run.worker_crashes_after - run.worker_crashes} handler failures"
    )
    assert run.worker_crashes_after == run.worker_crashes
    assert routed or found


def _decodes(codec: Any, raw: RawRecord) -> bool:
    try:
        codec.decode(raw.value, raw.headers)
    except DecodeError:
        return False
    return True


@E2E
def test_bad_document_requests_are_dead_lettered_and_good_ones_become_commands(run: Run) -> None:
    topic = run.name(names.DOCUMENT_REQUESTS)
    sends = [s for s in run.phase2 if s.topic == topic]
    bad = [s for s in sends if s.bad]
    letters = _by_source(run.letters(topic, after=True))
    print(
        f"\ndocument requests: {len(bad)} bad records, {sum(map(len, letters.values()))} dead "
        f"letters, {len(sends) - len(bad)} good records"
    )
    assert sorted(letters) == sorted((s.partition, s.offset) for s in bad)
    for sent in bad:
        found = letters[(sent.partition, sent.offset)]
        assert len(found) == 1, (sent.record.category, len(found))
        _check_letter(sent, *found[0])

    good = _good_requests(_dataset())
    expected = expected_outcome(
        dataclasses.replace(_dataset(), events=[], document_requests=good),
        source_topics=lambda e: "unused: no events",
        request_topic=topic,
    )
    codec = codec_for(CompositionCommand)
    commands = [
        c
        for c in (
            codec.decode(r.value)
            for r in run.outputs_after[run.name(names.COMMANDS)]
            if _decodes(codec, r)
        )
        if c.source_topic == topic
    ]
    ids = Counter(c.communication_id for c in commands)
    assert [i for i, n in ids.items() if n > 1] == [], "a request's command was emitted twice"
    assert {c.communication_id: c for c in commands} == expected.commands
    assert len(expected.commands) > 30
    assert expected.request_retries > 0


@E2E
def test_reference_records_the_domain_cannot_use_are_dead_lettered(run: Run) -> None:
    totals = {
        c: _letters_for(run, c) for c in ("domain_rule", "domain_template", "domain_preference")
    }
    print(
        "\nunusable reference records: "
        + ", ".join(f"{c} {len(s)} sent / {n} dead-lettered" for c, (s, n) in totals.items())
    )
    assert all(s and n == len(s) for s, n in totals.values())


@E2E
def test_delivery_events_that_cannot_apply_are_dead_lettered(run: Run) -> None:
    sends, found = _letters_for(run, "domain_delivery")
    print(f"\nunusable delivery events: {len(sends)} sent, {found} dead-lettered")
    assert sends
    assert found == len(sends)


# --------------------------------------------------------------------------- the size bound


PRODUCER_LIMIT = 1_000_000
"""A request limit below every producer of the project's (aiokafka's and librdkafka's defaults
allow ~1 MiB): a letter that fits it fits them all."""


@pytest.mark.unit
@settings(max_examples=150, deadline=None, database=None)
@given(
    key_size=st.integers(min_value=0, max_value=64 * 1024),
    value_size=st.one_of(
        st.integers(min_value=0, max_value=2_000),
        st.integers(min_value=MAX_COPIED_BYTES - 2_000, max_value=1_048_576),
    ),
    headers=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=200), max_size=5),
    reason=st.text(max_size=1_500),
)
def test_a_dead_letter_always_fits_a_producer_request_and_accounts_for_its_original(
    key_size: int, value_size: int, headers: dict[str, str], reason: str
) -> None:
    """Whatever the size of the original (up to the broker's 1 MiB and keys up to 64 KiB), its
    letter, written keyed like the original, fits the producers' request limit, and holds the
    original byte for byte or names (size, SHA-256) what it left out."""
    key = b"k" * key_size if key_size else None
    value = bytes(range(256)) * (value_size // 256) + b"v" * (value_size % 256)
    original = [(k, v.encode()) for k, v in headers.items()]
    letter = make_dead_letter(
        source_topic="air.account-events.v1",
        partition=2,
        offset=7,
        key=key,
        value=value,
        headers=original,
        error_type="BAD_MAGIC",
        reason=reason,
        failed_at=1,
    )
    kafka_headers = dead_letter_headers(letter)
    size = len(key or b"") + len(codec_for(DeadLetter).encode(letter))
    size += sum(len(k.encode()) + len(v) for k, v in kafka_headers)
    assert size < PRODUCER_LIMIT - 1_000, size  # the record batch framing takes the rest
    assert len(letter.reason) <= MAX_REASON_CHARS
    omitted = letter.original_headers.get(H_OMITTED)
    if omitted is None:
        assert letter.original_value == value
        assert letter.original_key == key
        assert letter.original_headers == {
            k: v for k, v in headers.items() if not k.startswith("dlq-")
        }
        assert 2 * key_size + value_size <= MAX_COPIED_BYTES
    else:
        assert letter.original_value is None
        assert hashlib.sha256(value).hexdigest() in omitted
        assert f"{len(value)} bytes" in omitted
        assert "air.account-events.v1/2/7" in letter.reason
        assert H_OMITTED not in dict(replay_headers(letter, "x.dlq", 0, 1))
