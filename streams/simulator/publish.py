"""Publish a generated :class:`Dataset` to Kafka: reference data first, then the events, and
the portal's document requests.

Byte-level invalid records are made here: ``garbage`` is random bytes, ``truncated`` is a valid
Avro record cut in half. JSON records carry the ``content-type: application/json`` header.
Records are keyed by customer id (templates by ``template_id/version/language``, rules by rule id)
and produced idempotently with ``acks=all``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from streams.codec import Codec, Codecs
from streams.domain.records import (
    AccountEvent,
    CaseEvent,
    CommRule,
    DocumentRequest,
    Preference,
)
from streams.errors import AirExstreamError
from streams.simulator.generator import Dataset, SimEvent, SimRequest
from topology import names
from topology.model import Topology

JSON_HEADER: tuple[str, str | bytes | None] = ("content-type", b"application/json")


KafkaHeaders = list[tuple[str, str | bytes | None]]


class PublishError(AirExstreamError):
    retriable = True


@dataclass(slots=True)
class PublishReport:
    rules: int = 0
    preferences: int = 0
    events: int = 0
    requests: int = 0
    invalid: int = 0
    json: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)


class _Sender:
    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.errors: list[str] = []

    def __call__(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: KafkaHeaders | None,
    ) -> None:
        while True:
            try:
                self.producer.produce(
                    topic,
                    key=key.encode(),
                    value=value,
                    headers=list(headers) if headers else None,
                    on_delivery=self._delivered,
                )
                return
            except BufferError:  # local queue full: let librdkafka drain it
                self.producer.poll(0.1)

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))


_NO_REGISTRY = Codecs()


def event_bytes(
    sim: SimEvent, rng: random.Random, codecs: Codecs = _NO_REGISTRY, topic: str = ""
) -> tuple[bytes, KafkaHeaders | None]:
    """The value and headers of one simulated event record on ``topic``, framed by
    ``codecs`` (default: single-object encoding)."""
    record = sim.record
    codec: Codec[Any] = (
        codecs.for_topic(topic, AccountEvent)
        if isinstance(record, AccountEvent)
        else codecs.for_topic(topic, CaseEvent)
    )
    if sim.invalid == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60))), None
    encoded = codec.encode(record)
    if sim.invalid == "truncated":
        return encoded[: max(1, len(encoded) // 2)], None
    if sim.encoding == "json":
        return codec.encode_json(record), [JSON_HEADER]
    return encoded, None


def request_bytes(
    sim: SimRequest, rng: random.Random, codecs: Codecs = _NO_REGISTRY, topic: str = ""
) -> tuple[bytes, KafkaHeaders | None]:
    """The value and headers of one simulated document request record on ``topic``, framed
    by ``codecs`` (default: single-object encoding)."""
    codec = codecs.for_topic(topic, DocumentRequest)
    if sim.invalid == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60))), None
    encoded = codec.encode(sim.record)
    if sim.invalid == "truncated":
        return encoded[: max(1, len(encoded) // 2)], None
    if sim.encoding == "json":
        return codec.encode_json(sim.record), [JSON_HEADER]
    return encoded, None


def publish_requests(
    requests: list[SimRequest],
    topology: Topology,
    producer_config: Mapping[str, str],
    *,
    seed: int,
    codecs: Codecs | None = None,
) -> PublishReport:
    """Document requests on ``air.document-requests.v1``, keyed by customer id. ``codecs``:
    default, the ones ``KAFKA_*`` configures."""
    codecs = codecs or Codecs.from_environment(topology)
    producer = _producer(producer_config)
    send = _Sender(producer)
    report = PublishReport()
    rng = random.Random(seed ^ 0x7E0)
    topic = topology.name(names.DOCUMENT_REQUESTS)
    for sim in requests:
        value, headers = request_bytes(sim, rng, codecs, topic)
        send(topic, sim.record.customer_id, value, headers)
        report.requests += 1
        report.invalid += sim.invalid is not None
        report.json += headers is not None
    report.by_topic[topic] = report.requests
    _finish(producer, send)
    return report


def publish_reference(
    dataset: Dataset,
    topology: Topology,
    producer_config: Mapping[str, str],
    *,
    codecs: Codecs | None = None,
) -> PublishReport:
    """Rules and preferences: Air Inc.'s reference data the routing worker must know before
    events. Templates are Exstream's: ``air-exstream templates sync`` publishes them from the
    Design API (the emulator's holds ``dataset.templates``); the simulator does not."""
    producer = _producer(producer_config)
    send = _Sender(producer)
    report = PublishReport()
    codecs = codecs or Codecs.from_environment(topology)
    rcodec = codecs.for_topic(topology.name(names.COMM_RULES), CommRule)
    pcodec = codecs.for_topic(topology.name(names.PREFERENCES), Preference)
    for r in dataset.rules:
        send(topology.name(names.COMM_RULES), r.rule_id, rcodec.encode(r), None)
        report.rules += 1
    for p in dataset.preferences:
        send(topology.name(names.PREFERENCES), p.customer_id, pcodec.encode(p), None)
        report.preferences += 1
    _finish(producer, send)
    return report


def publish_events(
    events: list[SimEvent],
    topology: Topology,
    producer_config: Mapping[str, str],
    *,
    seed: int,
    progress: Callable[[int], None] | None = None,
    codecs: Codecs | None = None,
) -> PublishReport:
    """``codecs``: default, the ones ``KAFKA_*`` configures."""
    codecs = codecs or Codecs.from_environment(topology)
    producer = _producer(producer_config)
    send = _Sender(producer)
    report = PublishReport()
    rng = random.Random(seed ^ 0x5EED)
    for i, sim in enumerate(events):
        topic = topology.name(
            names.ACCOUNT_EVENTS if isinstance(sim.record, AccountEvent) else names.CASE_EVENTS
        )
        value, headers = event_bytes(sim, rng, codecs, topic)
        send(topic, sim.record.customer_id, value, headers)
        report.events += 1
        report.by_topic[topic] = report.by_topic.get(topic, 0) + 1
        report.invalid += sim.invalid is not None
        report.json += headers is not None
        if i % 1000 == 0:
            producer.poll(0)
        if progress is not None:
            progress(1)
    _finish(producer, send)
    return report


_KAFKA_LOG = logging.getLogger("streams.simulator.kafka")
_KAFKA_LOG.addHandler(logging.NullHandler())  # shown only where the application configures logging


def _producer(config: Mapping[str, str]) -> Producer:
    return Producer(
        {
            **config,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            # Java clients' default partitioner: co-partitioning needs every producer to agree
            "partitioner": "murmur2_random",
            # librdkafka's own log lines (e.g. "coordinator load in progress: retrying" while a
            # fresh broker starts) go through Python logging instead of raw stderr
            "logger": _KAFKA_LOG,
        }
    )


def _finish(producer: Producer, send: _Sender) -> None:
    remaining = producer.flush(60)
    if remaining or send.errors:
        raise PublishError(
            f"{remaining} record(s) not delivered, {len(send.errors)} delivery error(s)"
            + (f"; first: {send.errors[0]}" if send.errors else "")
        )
