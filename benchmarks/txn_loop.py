"""The routing benchmark's engine baseline: a plain confluent-kafka transactional loop running the
routing worker's decision code (issue 14, goal 2: the worker at >= 0.8 of this loop).

``python -m benchmarks.txn_loop --bootstrap HOST:PORT --prefix P --group G --output-prefix O``
runs until stopped (SIGTERM). One process, exactly-once: it first reads the preferences, rules
and templates topics of the prefixed topology to their ends into memory (preferences decoded
once, rules and templates into a :class:`~streams.domain.reference_index.ReferenceIndex`), then
consumes the account and case events (6 partitions each) in batches, and per batch, in one
transaction: decodes each event with the project's codecs (:class:`streams.codec.Codecs`),
routes it with :func:`~streams.domain.routing.route_indexed` on the suppression state it keeps
decoded in memory, and produces every output the routing worker writes per event (commands,
alerts, dead letters with their audit record, the audit records chained per input partition
with :func:`streams.audit.chain.append`, and the changelog records of the suppression, chain
head and command-tracking tables, last value per key per transaction as the worker's
``CommitGuard.put`` writes them); then
``send_offsets_to_transaction(consumer.position(...), consumer.consumer_group_metadata())`` and
commit. Outputs go to topics named ``O<name>`` (created here, 6 partitions), not the worker's,
so that both runs' outputs can be counted apart.

The per-event decision is :class:`Decider`: pure (no Kafka), built on the same pieces as
``benchmarks/decision.py``'s fast path (its :class:`~benchmarks.decision.Input` records and
dead letters, its grace period), plus the worker's extra outputs per event: the key and
partition checks, the audit record of each dead letter and the tracking state of each command.
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.decision import GRACE_MS, Input, dead_letter_for
from streams.audit.chain import ChainHead, append
from streams.codec import CodecError, Codecs
from streams.codec.state import encode_chain_head, encode_suppression
from streams.deadletter.letters import dead_letter_headers
from streams.domain import delivery
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
from streams.domain.reference_index import ReferenceIndex
from streams.domain.routing import route_indexed
from streams.domain.suppression import SuppressionEntry
from streams.routing.partitioning import partition_problem
from topology import names
from topology.model import Topology, load_topology

PARTITIONS = 6  # customer_partitions in topology/topics.toml
BATCH = 500
"""Records consumed per transaction at most."""
TRACKING_HEADER = struct.Struct(">H")
"""The command-tracking table value's prefix (the input partition), as the worker writes it."""
OUTPUTS = (
    "commands",
    "alerts",
    "audit",
    "dead-letters",
    "suppression-changelog",
    "audit-chain-heads-changelog",
    "communications-changelog",
)
INPUTS = (names.ACCOUNT_EVENTS, names.CASE_EVENTS)


@dataclass(frozen=True, slots=True)
class Out:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None


@dataclass(slots=True)
class Counts:
    events: int = 0
    commands: int = 0
    alerts: int = 0
    audit: int = 0
    dead_letters: int = 0
    changelog: int = 0


@dataclass(slots=True)
class Decider:
    """The worker's per-event path with its state decoded in memory; outputs through ``emit``."""

    topology: Topology
    output_prefix: str
    codecs: Codecs
    index: ReferenceIndex
    preferences: dict[bytes, Preference]
    sla_ms: dict[str, int] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    suppression: dict[bytes, dict[str, SuppressionEntry]] = field(default_factory=dict)
    heads: dict[int, ChainHead] = field(default_factory=dict)
    tracked: set[bytes] = field(default_factory=set)
    dirty: dict[tuple[str, bytes], tuple[int, bytes]] = field(default_factory=dict)
    """(changelog topic, key) -> (partition, value): written once per transaction."""

    def out(self, name: str) -> str:
        return f"{self.output_prefix}{name}"

    def decide(self, inp: Input, timestamp_ms: int, emit: Callable[[Out], None]) -> None:
        """Route one input record; every record the worker would write for it goes to ``emit``
        (changelog records are kept until :meth:`flush`)."""
        self.counts.events += 1
        record: AccountEvent | CaseEvent
        try:
            if inp.is_case:
                record = self.codecs.for_topic(inp.topic, CaseEvent).decode(inp.value, inp.headers)
            else:
                codec = self.codecs.for_topic(inp.topic, AccountEvent)
                record = codec.decode(inp.value, inp.headers)
        except CodecError as exc:
            self._dead_letter(inp, exc.code, str(exc), emit)
            return
        key = record.customer_id.encode()
        if inp.key and inp.key != key:
            self._dead_letter(inp, "KEY_MISMATCH", "the record key is not its customer id", emit)
            return
        misplaced = partition_problem(key, inp.partition, PARTITIONS)
        if misplaced is not None:
            self._dead_letter(inp, "WRONG_PARTITION", misplaced, emit)
            return
        state = self.suppression.get(key)
        if state is None:
            state = self.suppression[key] = {}
        outcome = route_indexed(
            record,
            source_topic=inp.topic,
            preference=self.preferences.get(key),
            index=self.index,
            suppression_state=state,
            now_ms=record.occurred_at - GRACE_MS,
        )
        if outcome.rejection is not None:
            self._dead_letter(inp, outcome.rejection.code, outcome.rejection.reason, emit)
            return
        command_codec = self.codecs.for_topic(self.out("commands"), CompositionCommand)
        for command in outcome.commands:
            emit(Out(self.out("commands"), key, command_codec.encode(command)))
            self._track(inp.partition, command, timestamp_ms)
        alert_codec = self.codecs.for_topic(self.out("alerts"), AlignmentAlert)
        for alert in outcome.alerts:
            alert_key = (alert.rule_id or alert.template_id or "").encode()
            emit(Out(self.out("alerts"), alert_key, alert_codec.encode(alert)))
        self.counts.commands += len(outcome.commands)
        self.counts.alerts += len(outcome.alerts)
        for entry in outcome.audit:
            self._audit(inp.partition, key, entry, emit)
        if outcome.apply_to(state):
            self._changelog("suppression-changelog", key, inp.partition, encode_suppression(state))

    def flush(self, emit: Callable[[Out], None]) -> None:
        """The changelog records of the transaction: the last value per key."""
        for (topic, key), (partition, value) in self.dirty.items():
            emit(Out(topic, key, value, partition))
        self.counts.changelog += len(self.dirty)
        self.dirty.clear()

    def _changelog(self, name: str, key: bytes, partition: int, value: bytes) -> None:
        self.dirty[(self.out(name), key)] = (partition, value)

    def _audit(
        self, partition: int, key: bytes, record: AuditRecord, emit: Callable[[Out], None]
    ) -> None:
        head = self.heads.get(partition) or ChainHead()
        chained, head = append(head, record)
        self.heads[partition] = head
        codec = self.codecs.for_topic(self.out("audit"), AuditRecord)
        emit(Out(self.out("audit"), key, codec.encode(chained), partition))
        self._changelog(
            "audit-chain-heads-changelog",
            str(partition).encode(),
            partition,
            encode_chain_head(head),
        )
        self.counts.audit += 1

    def _track(self, partition: int, command: CompositionCommand, timestamp_ms: int) -> None:
        key = command.communication_id.encode()
        if key in self.tracked:
            return  # a replay of a command already tracked
        self.tracked.add(key)
        state = delivery.start(command, submitted_at=timestamp_ms, sla_ms=self.sla_ms)
        value = TRACKING_HEADER.pack(partition) + delivery.dumps(state)
        self._changelog("communications-changelog", key, partition, value)

    def _dead_letter(
        self, inp: Input, error_type: str, reason: str, emit: Callable[[Out], None]
    ) -> None:
        letter = dead_letter_for(inp, error_type, reason)
        codec = self.codecs.for_topic(self.out("dead-letters"), DeadLetter)
        emit(
            Out(
                self.out("dead-letters"),
                inp.key,
                codec.encode(letter),
                headers=dead_letter_headers(letter),
            )
        )
        self.counts.dead_letters += 1
        subject = f"{inp.topic}/{inp.partition}/{inp.offset}"
        record = AuditRecord(
            audit_id=audit_id(AuditKind.DEAD_LETTER, subject),
            kind=AuditKind.DEAD_LETTER,
            customer_id=inp.key.decode(errors="replace") if inp.key else None,
            occurred_at=letter.failed_at,
            summary=f"record {subject} dead-lettered: {error_type}",
            details={"error_type": error_type, "source": subject, "reason": reason},
        )
        self._audit(inp.partition, inp.key, record, emit)


def latest_by_key(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[bytes, bytes]:
    """The last value per key of a compacted topic's records in order (``None``: deleted)."""
    out: dict[bytes, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------- Kafka


def read_to_end(conf: dict[str, str], topic: str, timeout_s: float = 120.0) -> list[Any]:
    """Every committed record of ``topic``, partition by partition in offset order: read until
    the position passes each partition's high watermark. Not its last stable offset: a
    transaction's markers are written after its commit returned, and until they are, a
    read_committed reader stops short of that transaction (one CI run read 0 of 316 commands
    just after the writer stopped, and all 316 a moment later)."""
    settings = {**conf, "group.id": "bench-txn-loop-reader", "enable.auto.commit": False}
    ends_reader = Consumer({**settings, "isolation.level": "read_uncommitted"})
    try:
        partitions = ends_reader.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {}
        for p in partitions:
            _low, high = ends_reader.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends[p] = high
    finally:
        ends_reader.close()
    consumer = Consumer({**settings, "isolation.level": "read_committed"})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        positions = dict.fromkeys(partitions, 0)
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {timeout_s} s")
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                records.append(msg)
                partition, offset = msg.partition(), msg.offset()
                if partition is not None and offset is not None:
                    positions[partition] = offset + 1
            # transaction markers are not records: the position says how far it got
            for tp in consumer.position([TopicPartition(topic, p) for p in partitions]):
                positions[tp.partition] = max(positions[tp.partition], tp.offset)
        return records
    finally:
        consumer.close()


def load_decider(bootstrap: str, topology: Topology, output_prefix: str) -> Decider:
    conf = {"bootstrap.servers": bootstrap}
    codecs = Codecs(topology=topology)

    def decoded(logical: str, cls: type[Any]) -> list[Any]:
        topic = topology.name(logical)
        codec = codecs.for_topic(topic, cls)
        latest = latest_by_key((m.key(), m.value()) for m in read_to_end(conf, topic))
        return [codec.decode(v) for v in latest.values()]

    preferences: list[Preference] = decoded(names.PREFERENCES, Preference)
    rules: list[CommRule] = decoded(names.COMM_RULES, CommRule)
    templates: list[TemplateVersion] = decoded(names.TEMPLATES, TemplateVersion)
    # in the log: what the loop decides with (a test that finds too few commands shows it)
    print(
        f"txn loop loaded {len(preferences)} preferences, {len(rules)} rules, "
        f"{len(templates)} template versions",
        flush=True,
    )
    return Decider(
        topology=topology,
        output_prefix=output_prefix,
        codecs=codecs,
        index=ReferenceIndex.from_records(rules, templates),
        preferences={p.customer_id.encode(): p for p in preferences},
    )


def create_outputs(bootstrap: str, output_prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(f"{output_prefix}{name}", PARTITIONS, 1) for name in OUTPUTS]
    for future in admin.create_topics(topics).values():
        future.result(30)


def run(bootstrap: str, prefix: str, group: str, output_prefix: str) -> Counts:
    """The loop, until SIGTERM/SIGINT; returns what it wrote."""
    topology = load_topology("local", prefix=prefix)
    create_outputs(bootstrap, output_prefix)
    decider = load_decider(bootstrap, topology, output_prefix)
    conf = {"bootstrap.servers": bootstrap}
    consumer = Consumer(
        {
            **conf,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer = Producer(
        {
            **conf,
            "transactional.id": f"{group}-txn",
            "linger.ms": 5,
            "acks": "all",
            "retry.backoff.ms": 10,  # as the engine's producer (streams/engine/config.py)
        }
    )
    producer.init_transactions(30)
    stopping: list[bool] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))

    def produce(out: Out) -> None:
        while True:
            try:
                headers: list[tuple[str, str | bytes | None]] | None = (
                    list(out.headers) if out.headers is not None else None
                )
                producer.produce(
                    out.topic, key=out.key, value=out.value, partition=out.partition
                    if out.partition is not None else -1, headers=headers,
                )  # fmt: skip
                return
            except BufferError:
                producer.poll(0.05)

    case_topic = topology.name(names.CASE_EVENTS)
    consumer.subscribe([topology.name(t) for t in INPUTS])
    try:
        while not stopping:
            msgs = consumer.consume(BATCH, timeout=0.2)
            if not msgs:
                continue
            producer.begin_transaction()
            for msg in msgs:
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                assert topic is not None
                assert partition is not None
                assert offset is not None
                _kind, timestamp_ms = msg.timestamp()
                raw_headers = msg.headers()
                assert not isinstance(raw_headers, dict)  # consumed headers are a list
                inp = Input(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=_bytes(msg.key()),
                    value=_bytes(msg.value()),
                    headers=[(k, _bytes(v) if v is not None else None) for k, v in raw_headers]
                    if raw_headers
                    else None,
                    is_case=topic == case_topic,
                )
                decider.decide(inp, timestamp_ms, produce)
            decider.flush(produce)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata()
            )
            producer.commit_transaction()
    finally:
        consumer.close()
    return decider.counts


def _bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.txn_loop")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True, help="the topology's topic prefix")
    parser.add_argument("--group", required=True)
    parser.add_argument("--output-prefix", required=True)
    args = parser.parse_args(argv)
    counts = run(args.bootstrap, args.prefix, args.group, args.output_prefix)
    print(f"txn loop wrote: {counts}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
