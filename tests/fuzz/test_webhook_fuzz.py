"""The event receiver under hostile batches: bodies, signatures, headers, methods and paths.

Every answer is checked against a model of the receiver's contract (streams/webhook/server.py):
413 over the body limit (64 KiB here), 401 for anything not signed with a current secret within
the tolerance (nothing written), 400 and exactly one dead letter (reason, code, original bytes)
for a signed body that is not a valid batch of Experience-Insights-shaped events (nothing of it
on the delivery topic), 409 and nothing written when an event id comes back with other content,
else 200 with exactly one record per event id never written before. Never a 5xx, never an
exception out of the handler.

The component tests use the receiver's own writer interface (``EventSink``) in memory, so each
example's writes are known exactly; one end-to-end test sends a drawn batch through the real
Kafka writer to the real broker and reads both topics back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson
import pytest
from confluent_kafka.admin import NewTopic
from hypothesis import example, given, settings
from hypothesis import strategies as st
from yarl import URL

from streams.codec import codec_for
from streams.deadletter.letters import H_ERROR_TYPE, H_REASON, H_SOURCE_TOPIC
from streams.domain.records import DeadLetter, DeliveryEvent
from streams.signing import SIGNATURE_HEADER, sign
from streams.topic_reader import read_topic
from streams.webhook.events import ParsedEvent, PayloadError, body_digest, parse_batch
from streams.webhook.server import (
    EVENT_ID_RECORD_HEADER,
    HOOK_PATH,
    WebhookConfig,
    WebhookReceiver,
    build_receiver,
)
from tests.conftest import KafkaCluster, unique, wait_for_topics
from tests.fuzz.strategies import (
    HEADER_JUNK,
    HTTP_FUZZ,
    RAW_HEADER_BYTES,
    Reply,
    Served,
    callback,
    callback_bodies,
    draw_many,
    raw_request,
    signatures,
)

SECRET = b"fuzz-webhook-secret"
PREVIOUS = b"fuzz-webhook-previous-secret"
TOLERANCE_S = 300
LIMIT = 64 * 1024
TOPIC = "exstream.delivery-events.v1"
DLQ = "exstream.delivery-events.v1.dlq"
NOW = 1_900_000_000
FUZZ = settings(HTTP_FUZZ, max_examples=400)


@dataclass
class RecordingSink:
    """The receiver's ``EventSink`` in memory: every write is confirmed at once and kept."""

    writes: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        self.writes.append((topic, key, value, list(headers)))

    def close(self) -> None:
        return None


@dataclass
class Model:
    """What the receiver must remember between callbacks (its replay rule)."""

    written: dict[str, str] = field(default_factory=dict)
    """event id -> digest of the body written for it."""
    dead_lettered: set[str] = field(default_factory=set)
    """digests of invalid bodies already dead-lettered."""
    answers: Counter[str] = field(default_factory=Counter)


@dataclass
class Receiver:
    served: Served
    base: str
    sink: RecordingSink
    model: Model


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = RecordingSink()
    config = WebhookConfig(
        secrets=(SECRET, PREVIOUS),
        topic=TOPIC,
        dlq_topic=DLQ,
        tolerance_s=TOLERANCE_S,
        max_body_bytes=LIMIT,
    )
    app = WebhookReceiver(config, sink, clock=lambda: float(NOW)).app()
    with Served() as served:
        yield Receiver(served, served.start(app), sink, Model())


def _check_callback(r: Receiver, body: bytes, signature: tuple[str, str | None]) -> str:
    """Post one batch and check the answer and the writes against the model; returns what
    happened (for the figures)."""
    sig_kind, header = signature
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    before = len(r.sink.writes)
    reply = r.served.request("POST", f"{r.base}{HOOK_PATH}", data=body, headers=headers)
    new = r.sink.writes[before:]
    assert reply.status < 500, reply
    if len(body) > LIMIT:
        assert reply.status == 413, reply
        assert str(LIMIT) in reply.problem()["detail"]
        assert new == []
        return "too_large"
    if sig_kind not in ("valid", "previous"):
        assert reply.status == 401, (sig_kind, reply)
        problem = reply.problem()
        assert problem["code"] in {"MISSING", "MALFORMED", "STALE", "MISMATCH"}, problem
        assert new == [], "nothing is written for an unauthenticated batch"
        return f"refused_{problem['code']}"
    digest = body_digest(body)
    events = _parsed(body)
    if isinstance(events, PayloadError):
        return _check_invalid(r, reply, new, body, digest, events)
    in_batch: dict[str, str] = {}
    conflict = None
    for p in events:
        first = in_batch.setdefault(p.event.event_id, p.digest)
        written = r.model.written.get(p.event.event_id)
        if first != p.digest or (written is not None and written != p.digest):
            conflict = p.event.event_id
            break
    if conflict is not None:
        assert reply.status == 409, reply
        assert reply.problem()["eventId"] == conflict
        assert new == [], "nothing of a conflicting batch is written"
        return "conflict"
    fresh = [p for p in events if p.event.event_id not in r.model.written]
    expected: dict[str, DeliveryEvent] = {}
    for p in fresh:
        expected.setdefault(p.event.event_id, p.event)
    assert reply.status == 200, reply
    assert orjson.loads(reply.body) == {
        "accepted": len(expected),
        "duplicates": len(events) - len(expected),
    }
    assert len(new) == len(expected), new
    for topic, key, value, kafka_headers in new:
        event = codec_for(DeliveryEvent).decode(value)
        assert topic == TOPIC
        assert expected.pop(event.event_id) == event
        assert key == event.customer_id.encode()
        assert dict(kafka_headers)[EVENT_ID_RECORD_HEADER] == event.event_id.encode()
    for p in fresh:
        r.model.written[p.event.event_id] = p.digest
    return "accepted" if fresh else "duplicate"


def _parsed(body: bytes) -> list[ParsedEvent] | PayloadError:
    try:
        return parse_batch(body)
    except PayloadError as exc:
        return exc


def _check_invalid(
    r: Receiver,
    reply: Reply,
    new: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
    body: bytes,
    digest: str,
    error: PayloadError,
) -> str:
    """A signed body that is no valid batch: 400 naming why, and one dead letter."""
    assert reply.status == 400, reply
    problem = reply.problem()
    assert problem["code"] == error.code
    assert problem["detail"] == str(error)
    if digest in r.model.dead_lettered:
        assert new == [], "a re-sent invalid batch is dead-lettered once"
        return "invalid_again"
    r.model.dead_lettered.add(digest)
    assert len(new) == 1, new
    topic, _key, value, kafka_headers = new[0]
    assert topic == DLQ
    letter = codec_for(DeadLetter).decode(value)
    assert letter.error_type == error.code
    assert letter.reason == f"invalid delivery event batch: {error}"
    assert letter.original_value == body, "the dead letter keeps the body byte for byte"
    assert letter.source_topic == TOPIC
    assert (letter.source_partition, letter.source_offset) == (-1, -1)
    assert dict(kafka_headers)[H_ERROR_TYPE] == error.code.encode()
    assert dict(kafka_headers)[H_SOURCE_TOPIC] == TOPIC.encode()
    return "dead_lettered"


@pytest.mark.component
@pytest.mark.timeout(240)
def test_every_batch_gets_its_contracted_answer_and_never_a_server_error(
    receiver: Receiver,
) -> None:
    @FUZZ
    @given(case=callback_bodies(), signer=signatures(SECRET, PREVIOUS, TOLERANCE_S))
    @example(
        case=("valid", orjson.dumps([callback("ev-example")])),
        signer=lambda body, now: ("unicode", f"t={now},v1=é"),  # non-ASCII digest
    )
    @example(
        case=("valid", orjson.dumps([callback("ev-example")])),
        signer=lambda body, now: ("unicode", "t=²,v1=00"),  # a Unicode digit as timestamp
    )
    @example(
        case=("valid", orjson.dumps([callback("ev-example")])),
        signer=lambda body, now: ("many_digits", f"t={'9' * 5000},v1=00"),
    )
    def check(
        case: tuple[str, bytes], signer: Callable[[bytes, int], tuple[str, str | None]]
    ) -> None:
        _kind, body = case
        outcome = _check_callback(receiver, body, signer(body, NOW))
        receiver.model.answers[outcome] += 1

    check()
    answers = receiver.model.answers
    print(f"\nwebhook batches: {sum(answers.values())} sent, {dict(sorted(answers.items()))}")
    assert answers["accepted"] > 0
    assert answers["dead_lettered"] > 0
    assert sum(n for k, n in answers.items() if k.startswith("refused_")) > 0
    assert answers["too_large"] > 0


KNOWN = {(HOOK_PATH, "POST"), ("/healthz", "GET"), ("/metrics", "GET")}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
PATHS = st.one_of(
    st.sampled_from(
        [
            HOOK_PATH,
            "/healthz",
            "/metrics",
            f"{HOOK_PATH}/",
            "/HOOKS/exstream",
            "/hooks//exstream",
            "/healthz/../metrics",
            "/",
            f"{HOOK_PATH}/x",
        ]
    ),
    st.lists(
        st.one_of(
            st.sampled_from(["hooks", "exstream", "healthz", "metrics", "..", ".", "", "%2e%2e"]),
            HEADER_JUNK,
        ),
        max_size=4,
    ).map(lambda segments: "/" + "/".join(segments)),
)


@pytest.mark.component
@pytest.mark.timeout(120)
def test_any_method_and_path_is_answered_without_a_server_error(receiver: Receiver) -> None:
    statuses: Counter[int] = Counter()

    @FUZZ
    @given(method=st.sampled_from(METHODS), raw_path=PATHS, body=st.binary(max_size=64))
    def check(method: str, raw_path: str, body: bytes) -> None:
        url = URL(receiver.base).with_path(raw_path)
        reply = receiver.served.request(method, url, data=body or None)
        statuses[reply.status] += 1
        assert reply.status < 500, reply
        path = url.path
        if (path, method) in KNOWN or (method == "HEAD" and (path, "GET") in KNOWN):
            expected = 401 if path == HOOK_PATH else 200  # no signature
        elif any(path == p for p, _ in KNOWN):
            expected = 405
        else:
            expected = 404
        assert reply.status == expected, (method, path, reply)
        if reply.status >= 400 and method != "HEAD":
            reply.problem()

    check()
    print(f"\nwebhook methods/paths: {sum(statuses.values())} requests, {dict(statuses)}")
    assert receiver.sink.writes == []


@pytest.mark.component
@pytest.mark.timeout(120)
def test_garbled_header_bytes_are_refused_or_accepted_never_a_server_error(
    receiver: Receiver,
) -> None:
    """Header values as raw bytes (not UTF-8, Unicode digits, junk) on a signed valid body."""
    answers: Counter[int] = Counter()

    @settings(FUZZ, max_examples=200)
    @given(
        signature=st.one_of(RAW_HEADER_BYTES, st.just(b"")),
        authorization=st.one_of(st.none(), RAW_HEADER_BYTES),
        content_type=st.one_of(st.none(), RAW_HEADER_BYTES),
        sign_it=st.booleans(),
        n=st.integers(min_value=0, max_value=10**9),
    )
    @example(
        signature=b"t=\xc2\xb2,v1=ab", authorization=None, content_type=None, sign_it=False, n=1
    )
    @example(signature=b"", authorization=b"\xff\xfe", content_type=b"\xff/\xfe", sign_it=True, n=2)
    def check(
        signature: bytes,
        authorization: bytes | None,
        content_type: bytes | None,
        sign_it: bool,
        n: int,
    ) -> None:
        body = orjson.dumps([callback(f"ev-raw-{n}")])
        if sign_it:
            signature = sign(SECRET, body, NOW).encode()
        headers = [(SIGNATURE_HEADER.encode(), signature)]
        if authorization is not None:
            headers.append((b"Authorization", authorization))
        if content_type is not None:
            headers.append((b"Content-Type", content_type))
        before = len(receiver.sink.writes)
        reply = receiver.served.raw(
            receiver.base, raw_request("POST", HOOK_PATH.encode(), headers, body)
        )
        new = receiver.sink.writes[before:]
        answers[reply.status] += 1
        assert reply.status < 500, reply
        if not sign_it:
            assert reply.status == 401, reply
            assert new == []
        else:
            assert reply.status == 200, reply
            assert len(new) <= 1
        if reply.status >= 400:
            reply.problem()

    check()
    print(f"\nwebhook raw headers: {sum(answers.values())} requests, {dict(answers)}")


def _topics(kafka: KafkaCluster, prefix: str) -> tuple[str, str]:
    """A new topic (3 partitions) and its dead-letter topic. The admin client is dropped here: one
    kept by a fixture outlives the session's broker and logs connection failures."""
    admin = kafka.admin()
    topic, dlq = unique(prefix), unique(f"{prefix}-dlq")
    created = admin.create_topics([NewTopic(topic, 3, -1), NewTopic(dlq, 1, -1)])
    for future in created.values():
        future.result(timeout=30)
    wait_for_topics(admin, [topic, dlq])
    return topic, dlq


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_a_signed_batch_lands_on_kafka_valid_as_events_invalid_as_dead_letters(
    kafka: KafkaCluster,
) -> None:
    """Through the real Kafka writer: every invalid signed batch is on the dead-letter topic with
    its code, reason and bytes; every event of the valid ones on the delivery topic, once."""
    topic, dlq = _topics(kafka, "fuzz-delivery-events")
    cases = draw_many(callback_bodies().filter(lambda c: len(c[1]) <= LIMIT), 240, 4242)
    receiver = build_receiver(
        secrets=[SECRET],
        client_config=kafka.client_config(),
        topic=topic,
        dlq_topic=dlq,
        kafka_timeout_s=15.0,
        max_body_bytes=LIMIT,
    )
    expected_events: dict[str, DeliveryEvent] = {}
    expected_letters: dict[str, tuple[bytes, str]] = {}
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    with Served() as served:
        base = served.start(receiver.app())
        for _kind, body in cases:
            now = int(time.time())
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(SECRET, body, now),
            }
            reply = served.request("POST", f"{base}{HOOK_PATH}", data=body, headers=headers)
            statuses[reply.status] += 1
            assert reply.status < 500, reply
            try:
                parsed = parse_batch(body)
            except PayloadError as exc:
                assert reply.status == 400, reply
                expected_letters.setdefault(body_digest(body), (body, exc.code))
                continue
            assert reply.status in (200, 409), reply
            if reply.status == 200:
                for p in parsed:
                    expected_events.setdefault(p.event.event_id, p.event)
    elapsed = time.monotonic() - started
    events = [
        codec_for(DeliveryEvent).decode(r.value)
        for r in read_topic(kafka.bootstrap_servers, topic, client_config=kafka.client_config())
    ]
    letters = list(read_topic(kafka.bootstrap_servers, dlq, client_config=kafka.client_config()))
    print(
        f"\nwebhook on the broker: {len(cases)} signed batches in {elapsed:.1f} s, answers "
        f"{dict(statuses)}; {len(events)} events written, {len(letters)} dead letters"
    )
    written = Counter(e.event_id for e in events)
    assert [i for i, n in written.items() if n > 1] == [], "each valid event written once"
    assert {e.event_id: e for e in events} == expected_events
    got: dict[str, tuple[bytes, str]] = {}
    for record in letters:
        letter = codec_for(DeadLetter).decode(record.value)
        assert letter.original_value is not None
        assert dict(record.headers)[H_REASON].decode() == letter.reason
        assert letter.reason.startswith("invalid delivery event batch: ")
        got[body_digest(letter.original_value)] = (letter.original_value, letter.error_type)
    assert len(letters) == len(expected_letters), "each invalid body dead-lettered once"
    assert got == expected_letters
    assert len(expected_letters) > 20
    assert len(expected_events) > 20
