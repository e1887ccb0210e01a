"""The bound on delivery events parked for a communication the tracker does not know yet
(:mod:`streams.routing.tracking`): the handlers on fakes (no broker), then a flood for one unknown
communication id through the worker on the real broker. The pure decision is tested in
``tests/domain/test_parking.py``."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import KafkaError, Message, Producer

from streams.codec import Codecs, codec_for
from streams.deadletter.cli import dlq as dlq_cli
from streams.demo.processes import WorkerProcess, wait_consumed
from streams.domain.document_requests import request_communication_id
from streams.domain.parking import MAX_PARKED_PER_COMMUNICATION, PARKED_LIMIT
from streams.domain.records import (
    AuditRecord,
    Channel,
    CommunicationStatus,
    CompositionCommand,
    DeadLetter,
    DeliveryEvent,
    DocumentMetadata,
    DocumentRequest,
    Recipient,
)
from streams.engine.api import Record
from streams.routing.engine_adapters import HandledRecord, StoreGuard, StoreTable
from streams.routing.tracking import Tracking, TrackingContext, TrackingCounters, tracking_handlers
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import JSON_HEADER, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.exstream.templates import publish_synced_templates
from tests.routing.engine_fakes import FakeStore
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

# ------------------------------------------------------------------------ the handlers, on fakes


class _Topic:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append(value)


_DELIVERY = "exstream.delivery-events.v1"
_COMMAND = CompositionCommand(
    communication_id="com-1",
    source_event_id="req-1",
    source_topic="air.document-requests.v1",
    event_type="DOCUMENT_REQUESTED",
    rule_id="r-1",
    rule_version=1,
    customer_id="cust-1",
    communication_type="INVOICE",
    template_id="tpl-billing-statement",
    template_version=1,
    language="en",
    channel=Channel.WEB,
    recipient=Recipient(),
    data={},
    created_at=1_700_000_000_000,
)


def _event(event_id: str, status: str, **overrides: Any) -> DeliveryEvent:
    values: dict[str, Any] = {
        "event_id": event_id,
        "communication_id": "com-1",
        "customer_id": "cust-1",
        "document_id": "doc-1",
        "channel": Channel.WEB,
        "status": status,
        "occurred_at": 1_700_000_001_000,
    }
    return DeliveryEvent(**{**values, **overrides})


def _context(
    current: HandledRecord,
    *,
    communications: StoreTable,
    parked: StoreTable,
    status_topic: _Topic,
    counters: TrackingCounters,
    dead_letter: Callable[[Any, str, str], Any],
    sla_ms: dict[str, int] | None = None,
) -> TrackingContext:
    """Delivery tracking's context as the worker builds it, over fakes."""

    async def send_audit(record: AuditRecord, key: bytes | None) -> None:
        return None

    return TrackingContext(
        guard=StoreGuard(),
        commands_topic=_Topic(),
        delivery_topic_name=_DELIVERY,
        status_topic=status_topic,
        metadata_topic=_Topic(),
        communications=communications,
        parked=parked,
        preferences=StoreTable(FakeStore("preferences"), current),
        send_audit=send_audit,
        dead_letter=dead_letter,
        sla_ms=sla_ms or {},
        sla_check_interval_s=60.0,
        counters=counters,
        codecs=Codecs(),
        topology=load_topology("local"),
        registry_wait_s=1.0,
    )


class _Tracker:
    """tracking_handlers on fakes: feed delivery records, register commands, see what came out."""

    def __init__(self) -> None:
        self.current = HandledRecord()
        self.parked_store = FakeStore("parked-delivery-events")
        self.parked = StoreTable(self.parked_store, self.current)
        communications = StoreTable(FakeStore("communications"), self.current)
        self.statuses = _Topic()
        self.letters: list[tuple[str, int, str, str]] = []
        self.counters = TrackingCounters()
        self.offset = 0

        async def dead_letter(msg: Any, code: str, reason: str) -> None:
            self.letters.append((msg.topic, msg.offset, code, reason))

        self.tracking: Tracking = tracking_handlers(
            _context(
                self.current,
                communications=communications,
                parked=self.parked,
                status_topic=self.statuses,
                counters=self.counters,
                dead_letter=dead_letter,
            ),
            communications=communications.items,
            owned=lambda: {0},
        )

    def message(
        self, value: bytes, headers: list[tuple[str, bytes]] | None = None, topic: str = _DELIVERY
    ) -> Record:
        self.offset += 1
        return Record(
            topic=topic,
            partition=0,
            offset=self.offset,
            key=b"cust-1",
            value=value,
            headers=headers or [],
            timestamp_ms=1_700_000_000_000,
        )

    async def deliver(self, *messages: Record) -> None:
        """Each record to the delivery handler, in order, as the worker hands them."""
        handle = self.current.wrap(self.tracking.track_delivery)
        for msg in messages:
            await handle(msg)

    async def register(self, msg: Record, command: CompositionCommand) -> None:
        """``command`` registered while ``msg`` is handled (as routing or a fallback does)."""

        async def handle(record: Record) -> None:
            await self.tracking.register(record, command)

        await self.current.wrap(handle)(msg)

    def parked_ids(self) -> list[str]:
        raw = self.parked.get(b"com-1")
        codec = codec_for(DeliveryEvent)
        return [codec.decode(base64.b64decode(e)).event_id for e in orjson.loads(raw or b"[]")]

    def status_names(self) -> list[str]:
        codec = codec_for(CommunicationStatus)
        return [codec.decode(v).status for v in self.statuses.sent]


@pytest.mark.component
async def test_the_handler_parks_refuses_and_ignores_as_decided() -> None:
    tracker = _Tracker()
    codec = codec_for(DeliveryEvent)
    flood = [tracker.message(codec.encode(_event(f"dev-{i}", "ACCEPTED"))) for i in range(40)]
    again = tracker.message(codec.encode(_event("dev-0", "ACCEPTED")))
    await tracker.deliver(*flood, again)
    assert tracker.parked_ids() == [f"dev-{i}" for i in range(MAX_PARKED_PER_COMMUNICATION)]
    assert [(o, c) for _, o, c, _ in tracker.letters] == [
        (m.offset, PARKED_LIMIT) for m in flood[MAX_PARKED_PER_COMMUNICATION:]
    ]
    assert tracker.counters.parked_events == MAX_PARKED_PER_COMMUNICATION
    assert tracker.counters.parked_refused == 40 - MAX_PARKED_PER_COMMUNICATION
    assert tracker.counters.parked_duplicates == 1
    assert tracker.counters.ignored_events == 1
    assert tracker.status_names() == []


@pytest.mark.component
async def test_a_json_event_is_parked_in_canonical_avro_and_applied() -> None:
    tracker = _Tracker()
    codec = codec_for(DeliveryEvent)
    json_event = _event("dev-1", "COMPOSED")
    await tracker.deliver(
        tracker.message(codec.encode(_event("dev-0", "ACCEPTED"))),
        tracker.message(codec.encode_json(json_event), [("content-type", b"application/json")]),
    )
    (_, stored) = orjson.loads(tracker.parked.get(b"com-1") or b"[]")
    assert codec.decode(base64.b64decode(stored)) == json_event  # Avro, no header needed
    await tracker.register(tracker.message(b"request", topic="air.document-requests.v1"), _COMMAND)
    assert tracker.status_names() == ["ACCEPTED", "COMPOSED"]
    assert tracker.parked.get(b"com-1") is None


@pytest.mark.component
async def test_entries_parked_by_an_earlier_version_are_still_applied_or_skipped() -> None:
    """Before the canonical encoding an entry held the record's own bytes (possibly JSON)."""
    tracker = _Tracker()
    codec = codec_for(DeliveryEvent)
    legacy = [
        codec.encode_json(_event("dev-0", "ACCEPTED")),
        b"\x00garbage",
        codec.encode(_event("dev-1", "COMPOSED")),
    ]
    tracker.parked_store.put(
        0, b"com-1", orjson.dumps([base64.b64encode(v).decode() for v in legacy])
    )
    await tracker.deliver(tracker.message(codec.encode(_event("dev-2", "ACCEPTED"))))
    assert tracker.counters.parked_events == 1  # the undecodable entry matched nothing
    await tracker.register(tracker.message(b"request", topic="air.document-requests.v1"), _COMMAND)
    assert tracker.status_names() == ["ACCEPTED", "COMPOSED"]
    assert tracker.counters.ignored_events == 2  # the undecodable entry; dev-2 (stale)
    assert tracker.letters == []


@pytest.mark.component
async def test_an_unusable_parked_event_does_not_dead_letter_the_record_being_processed() -> None:
    """Registering from a delivery record (a bounce's fallback): the parked event's problem is
    logged, the delivery record itself is not blamed for it."""
    tracker = _Tracker()
    codec = codec_for(DeliveryEvent)
    await tracker.deliver(
        tracker.message(codec.encode(_event("dev-0", "MAILED", channel=Channel.PRINT)))
    )
    bounce = tracker.message(codec.encode(_event("dev-9", "EMAIL_BOUNCED", communication_id="x")))
    await tracker.register(bounce, _COMMAND)
    assert tracker.letters == []
    assert tracker.counters.ignored_events == 1
    assert tracker.parked.get(b"com-1") is None


# ---------------------------------------------------------------------------- on the broker

EXTRA = 5
"""Distinct events beyond the limit: each is dead-lettered."""

_Record = tuple[str, bytes, list[tuple[str, str | bytes | None]]]
"""A delivery event to publish: its id, value and headers."""


def _tracking_report(log: Path, expected: dict[str, int], timeout_s: float) -> dict[str, int]:
    """The counters of the worker's latest ``tracking:`` report (one every 10 s), as soon as it
    shows ``expected``; the last report seen (empty if none) when none does in time."""
    deadline = time.monotonic() + timeout_s
    latest: dict[str, int] = {}
    while time.monotonic() < deadline:
        lines = [
            line for line in log.read_text(errors="replace").splitlines() if "tracking:" in line
        ]
        if lines:
            latest = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}
            if all(latest.get(k) == v for k, v in expected.items()):
                return latest
        time.sleep(1.0)
    return latest


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_a_flood_for_an_unknown_communication_is_bounded_and_applied_when_its_command_comes(
    kafka: KafkaCluster, tmp_path: Path, producer_factory: Callable[..., Producer]
) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"park{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    conf = {"bootstrap.servers": bootstrap}
    apply_topology(conf, topology)
    t = topology.name
    delivery_topic = t(names.DELIVERY_EVENTS)
    dataset = generate(
        Scenario(
            seed=31,
            customers=3,
            events=0,
            document_requests=1,
            invalid_share=0.0,
            json_share=0.0,
            request_retry_share=0.0,
        )
    )
    publish_reference(dataset, topology, conf)
    publish_synced_templates(dataset.templates, topology, conf)
    (sim_request,) = dataset.document_requests
    assert sim_request.invalid is None
    request = sim_request.record
    customer = request.customer_id
    communication = request_communication_id(customer, request.request_id)

    # 32 distinct events parked (ACCEPTED, COMPOSED, then re-reports of an old status; the
    # COMPOSED one as JSON, which is parked in its canonical Avro form), 5 distinct WEB_POSTED
    # beyond the limit, and exact repeats of parked events before and after the limit
    event_codec = codec_for(DeliveryEvent)

    def event(event_id: str, status: str, at: int, *, json: bool = False) -> _Record:
        record = DeliveryEvent(
            event_id=event_id,
            communication_id=communication,
            customer_id=customer,
            document_id="doc-parked",
            channel=Channel.WEB,
            status=status,
            occurred_at=request.requested_at + at,
        )
        if json:
            return event_id, event_codec.encode_json(record), [JSON_HEADER]
        return event_id, event_codec.encode(record), []

    statuses_parked = ["ACCEPTED", "COMPOSED"] + [
        "ACCEPTED" if i % 2 else "COMPOSED" for i in range(MAX_PARKED_PER_COMMUNICATION - 2)
    ]
    parked = [
        event(f"dev-p{i:02d}", status, 1_000 * (i + 1), json=i == 1)
        for i, status in enumerate(statuses_parked)
    ]
    refused = [event(f"dev-r{i}", "WEB_POSTED", 100_000 + i) for i in range(EXTRA)]
    arrivals = [*parked[:10], parked[0], parked[1], *parked[10:], *refused, parked[5]]
    offsets: list[int] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        offsets.append(msg.offset() or 0)

    app_id = f"router-park-{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(bootstrap, prefix, app_id, tmp_path)
    worker.start()
    try:
        wait_consumed(bootstrap, app_id, [t(names.PREFERENCES)], worker=worker, timeout_s=60)
        producer = producer_factory(**{"enable.idempotence": True})
        for _, value, headers in arrivals:
            producer.produce(
                delivery_topic,
                key=customer.encode(),
                value=value,
                headers=headers,
                on_delivery=delivered,
            )
        producer.produce(delivery_topic, key=customer.encode(), value=b"")
        assert producer.flush(30) == 0
        assert len(offsets) == len(arrivals)
        wait_consumed(bootstrap, app_id, [delivery_topic], worker=worker, timeout_s=60)

        # ---- exactly the 5 new events beyond the limit are dead-lettered, at their offsets
        letters = [
            (r.offset, codec_for(DeadLetter).decode(r.value))
            for r in read_topic(bootstrap, names.dlq(delivery_topic))
        ]
        limited = [d for _, d in letters if d.error_type == PARKED_LIMIT]
        assert len(limited) == EXTRA, [(d.error_type, d.reason) for _, d in letters]
        first_refused = arrivals.index(refused[0])
        refused_offsets = offsets[first_refused : first_refused + EXTRA]
        assert [d.source_offset for d in limited] == refused_offsets
        assert [event_codec.decode(d.original_value).event_id for d in limited] == [
            i for i, _, _ in refused
        ]
        for d, (event_id, _, _) in zip(limited, refused, strict=True):
            assert d.source_topic == delivery_topic
            assert d.original_key == customer.encode()
            assert repr(communication) in d.reason
            assert repr(event_id) in d.reason
            assert f"{MAX_PARKED_PER_COMMUNICATION} events already wait" in d.reason
        # the trailing empty record proves the worker still dead-letters what it must
        assert [d.error_type for _, d in letters if d.error_type != PARKED_LIMIT] == ["EMPTY"]
        assert worker.alive()
        statuses_topic = t(names.COMMUNICATION_STATUS)
        assert not [
            r
            for r in read_topic(bootstrap, statuses_topic)
            if codec_for(CommunicationStatus).decode(r.value).communication_id == communication
        ]

        # ---- the command comes: the parked events are applied, in arrival order
        producer.produce(
            t(names.DOCUMENT_REQUESTS),
            key=customer.encode(),
            value=codec_for(DocumentRequest).encode(request),
        )
        assert producer.flush(30) == 0
        wait_consumed(bootstrap, app_id, [t(names.DOCUMENT_REQUESTS)], worker=worker, timeout_s=60)
        commands = [
            codec_for(CompositionCommand).decode(r.value)
            for r in read_topic(bootstrap, t(names.COMMANDS))
        ]
        assert [c.communication_id for c in commands] == [communication]

        def statuses() -> list[CommunicationStatus]:
            return [
                s
                for r in read_topic(bootstrap, statuses_topic)
                if (s := codec_for(CommunicationStatus).decode(r.value)).communication_id
                == communication
            ]

        assert [s.status for s in statuses()] == ["ACCEPTED", "COMPOSED"]

        # ---- the refused events, replayed from the dead-letter topic, now apply directly
        replay = CliRunner().invoke(
            dlq_cli,
            [
                "replay",
                "--source",
                delivery_topic,
                "--error-type",
                PARKED_LIMIT,
                "--bootstrap-servers",
                bootstrap,
            ],
        )
        assert replay.exit_code == 0, replay.output
        assert f"{EXTRA} dead letter(s) replayed" in replay.output
        wait_consumed(bootstrap, app_id, [delivery_topic], worker=worker, timeout_s=60)
        final = statuses()
        assert [s.status for s in final] == ["ACCEPTED", "COMPOSED", "WEB_POSTED"]
        assert final[-1].previous_status == "COMPOSED"
        metadata = [
            m
            for r in read_topic(bootstrap, t(names.DOCUMENT_METADATA))
            if (m := codec_for(DocumentMetadata).decode(r.value)).communication_id == communication
        ]
        assert {m.document_id for m in metadata} == {"doc-parked"}
        assert metadata[0].delivered_at is None
        assert metadata[-1].delivered_at == request.requested_at + 100_000
        assert len(list(read_topic(bootstrap, names.dlq(delivery_topic)))) == EXTRA + 1

        # ---- the worker's own count: 32 parked, 3 repeats ignored, 5 refused; applied: the 32
        # parked (30 of them ignored as already reached or stale) and the 5 replayed (4 ignored)
        expected = {
            "commands_tracked": 1,
            "parked_events": MAX_PARKED_PER_COMMUNICATION,
            "parked_duplicates": 3,
            "parked_refused": EXTRA,
            "delivery_events": MAX_PARKED_PER_COMMUNICATION + EXTRA,
            "ignored_events": 3 + (MAX_PARKED_PER_COMMUNICATION - 2) + (EXTRA - 1),
            "statuses": 3,
            "metadata": 2,
            "fallbacks": 0,
        }
        counters = _tracking_report(worker.log, expected, timeout_s=25)
        assert worker.alive()
    finally:
        worker.stop()
    assert {k: counters.get(k) for k in expected} == expected, worker.tail()
