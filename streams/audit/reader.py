"""Reading the audit topic and its checkpoints back: decoded records per partition, in offset
order, committed records only (``read_committed``), from the start or from given offsets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from streams.audit.chain import ChainReport, verify_chain
from streams.audit.checkpoints import CheckpointError, decode
from streams.audit.verify import SeenCheckpoint, TrailRecord, Violation
from streams.codec import Codecs, DecodeError
from streams.domain.records import AuditRecord
from streams.topic_reader import RawRecord, TopicReadError, read_topic


def audit_records(
    bootstrap_servers: str,
    topic: str,
    client_config: Mapping[str, str] | None = None,
    *,
    codecs: Codecs | None = None,
) -> Iterator[tuple[RawRecord, AuditRecord | None]]:
    """Every record of the audit topic with its decoded value (None when undecodable).
    ``codecs``: default, the ones ``KAFKA_*`` configures."""
    codec = (codecs or Codecs.from_environment()).for_topic(topic, AuditRecord)
    for raw in read_topic(bootstrap_servers, topic, client_config=client_config):
        try:
            yield raw, codec.decode(raw.value)
        except DecodeError:
            yield raw, None


def verify_topic(
    bootstrap_servers: str,
    topic: str,
    client_config: Mapping[str, str] | None = None,
    *,
    codecs: Codecs | None = None,
) -> list[ChainReport]:
    """One chain report per partition that holds records. An undecodable record is itself a
    violation (reported as altered content). The chain alone: see :mod:`streams.audit.trail`
    for verification against signed checkpoints."""
    by_partition: dict[int, list[tuple[int, AuditRecord]]] = {}
    for raw, record in audit_records(bootstrap_servers, topic, client_config, codecs=codecs):
        if record is None:
            record = AuditRecord(
                audit_id="<undecodable>", kind="", occurred_at=0, summary="", hash="<undecodable>"
            )
        by_partition.setdefault(raw.partition, []).append((raw.offset, record))
    return [verify_chain(p, recs) for p, recs in sorted(by_partition.items())]


@dataclass(frozen=True, slots=True)
class Partitions:
    """What was read of a topic: the messages per partition, where each partition ends (the
    offset to read from next time) and the partitions the topic has."""

    messages: dict[int, list[Message]]
    ends: dict[int, int]
    partitions: tuple[int, ...]


def read_partitions(
    bootstrap_servers: str,
    topic: str,
    client_config: Mapping[str, str] | None = None,
    *,
    starts: Mapping[int, int] | None = None,
    timeout_s: float = 60.0,
    idle_timeout_s: float = 10.0,
) -> Partitions:
    """Every committed message of ``topic`` from ``starts`` (partition -> offset; the beginning
    for the others) up to the end offsets seen at the start, in one consumer. A start below the
    partition's first offset (deleted records) reads from the first one."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"air-exstream-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            **(client_config or {}),
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise TopicReadError(
                f"topic {topic!r} does not exist on {bootstrap_servers}; "
                "run `air-exstream topology apply` first"
            )
        partitions = tuple(sorted(meta.partitions))
        ends: dict[int, int] = {}
        todo: list[TopicPartition] = []
        for p in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout_s, cached=False
            )
            ends[p] = high
            start = (starts or {}).get(p)
            if start is None or start < low:
                start = low
            if high > start:
                todo.append(TopicPartition(topic, p, OFFSET_BEGINNING if start == low else start))
        messages: dict[int, list[Message]] = {p: [] for p in partitions}
        if todo:
            _consume(consumer, topic, todo, ends, messages, idle_timeout_s)
        return Partitions(messages, ends, partitions)
    finally:
        consumer.close()


def _consume(
    consumer: Consumer,
    topic: str,
    todo: list[TopicPartition],
    ends: Mapping[int, int],
    messages: dict[int, list[Message]],
    idle_timeout_s: float,
) -> None:
    consumer.assign(todo)
    waiting = {tp.partition for tp in todo}
    idle_since = time.monotonic()
    while waiting:
        # a short wait: consume() returns early only once it has num_messages
        batch = consumer.consume(num_messages=5000, timeout=0.05)
        for msg in batch:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise TopicReadError(f"reading {topic} failed: {err}")
            messages[msg.partition() or 0].append(msg)
        if batch:
            idle_since = time.monotonic()
        # under read_committed the end offset can sit past transaction markers that are never
        # returned as records: a partition is done once the consumer's position reached it
        positions = consumer.position([TopicPartition(topic, p) for p in waiting])
        waiting -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
        if waiting and time.monotonic() - idle_since > idle_timeout_s:
            raise TopicReadError(
                f"reading {topic} stalled in partition(s) {sorted(waiting)} before their end"
            )


def trail_records(messages: list[Message], codecs: Codecs | None = None) -> list[TrailRecord]:
    """Audit messages as records for verification (an undecodable value: ``record=None``).
    ``codecs``: default, the ones ``KAFKA_*`` configures."""
    codecs = codecs or Codecs.from_environment()
    out = []
    for msg in messages:
        try:
            codec = codecs.for_topic(msg.topic() or "", AuditRecord)
            record: AuditRecord | None = codec.decode(msg.value())
        except DecodeError:
            record = None
        kind, stamp = msg.timestamp()
        out.append(TrailRecord(msg.offset() or 0, record, stamp, kind == TIMESTAMP_LOG_APPEND_TIME))
    return out


def seen_checkpoints(
    topic: str, messages: Mapping[int, list[Message]]
) -> tuple[list[SeenCheckpoint], list[Violation]]:
    """The checkpoints read from the checkpoints topic, and a violation per record that is not
    one (undecodable, a tombstone: nobody but the audit writer writes there)."""
    seen: list[SeenCheckpoint] = []
    violations: list[Violation] = []
    for partition, batch in sorted(messages.items()):
        for msg in batch:
            offset = msg.offset() or 0
            try:
                seen.append(SeenCheckpoint(topic, partition, offset, decode(msg.value())))
            except CheckpointError as exc:
                violations.append(
                    Violation(topic, partition, offset, None, f"not a checkpoint: {exc}")
                )
    return seen, violations
