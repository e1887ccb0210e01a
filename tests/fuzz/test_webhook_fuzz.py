"""The webhook receiver under hostile callbacks: bodies, signatures, headers, methods and paths.

Every answer is checked against a model of the receiver's contract (streams/webhook/server.py):
413 over 64 KiB, 401 for anything not signed with a current secret within the tolerance, 400 and
exactly one dead letter (reason, code, original bytes) for a signed body that is not a valid
delivery callback, 204 and exactly one record for a new valid one, 200/409 for an event id seen
before. Never a 5xx, never an exception out of the handler.

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
from streams.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from streams.topic_reader import read_topic
from streams.webhook.events import PayloadError, body_digest, parse_callback
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
        secrets=(SECRET, PREVIOUS), topic=TOPIC, dlq_topic=DLQ, tolerance_s=TOLERANCE_S
    )
    app = WebhookReceiver(config, sink, clock=lambda: float(NOW)).app()
    with Served() as served:
        yield Receiver(served, served.start(app), sink, Model())


def _check_callback(
    r: Receiver, body: bytes, signature: tuple[str, str | None], event_id_header: str | None
) -> str:
    """Post one callback and check the answer and the writes against the model; returns what
    happened (for the figures)."""
    sig_kind, header = signature
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    if event_id_header is not None:
        headers[EVENT_ID_HEADER] = event_id_header
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
        assert new == [], "nothing is written for an unauthenticated callback"
        return f"refused_{problem['code']}"
    digest = body_digest(body)
    event = _parsed(body, event_id_header)
    if isinstance(event, PayloadError):
        return _check_invalid(r, reply, new, body, digest, event)
    seen = r.model.written.get(event.event_id)
    if seen is None:
        assert reply.status == 204, reply
        assert len(new) == 1, new
        topic, key, value, kafka_headers = new[0]
        assert topic == TOPIC
        assert key == event.customer_id.encode()
        assert codec_for(DeliveryEvent).decode(value) == event
        assert dict(kafka_headers)[EVENT_ID_RECORD_HEADER] == event.event_id.encode()
        r.model.written[event.event_id] = digest
        return "accepted"
    assert new == []
    if seen == digest:
        assert reply.status == 200, reply
        assert orjson.loads(reply.body) == {"eventId": event.event_id, "status": "duplicate"}
        return "duplicate"
    assert reply.status == 409, reply
    assert reply.problem()["eventId"] == event.event_id
    return "conflict"


def _parsed(body: bytes, event_id_header: str | None) -> DeliveryEvent | PayloadError:
    try:
        return parse_callback(body, event_id_header)
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
    """A signed body that is no delivery callback: 400 naming why, and one dead letter."""
    assert reply.status == 400, reply
    problem = reply.problem()
    assert problem["code"] == error.code
    assert problem["detail"] == str(error)
    if digest in r.model.dead_lettered:
        assert new == [], "a retried invalid callback is dead-lettered once"
        return "invalid_again"
    r.model.dead_lettered.add(digest)
    assert len(new) == 1, new
    topic, _key, value, kafka_headers = new[0]
    assert topic == DLQ
    letter = codec_for(DeadLetter).decode(value)
    assert letter.error_type == error.code
    assert letter.reason == f"invalid delivery callback: {error}"
    assert letter.original_value == body, "the dead letter keeps the body byte for byte"
    assert letter.source_topic == TOPIC
    assert (letter.source_partition, letter.source_offset) == (-1, -1)
    assert dict(kafka_headers)[H_ERROR_TYPE] == error.code.encode()
    assert dict(kafka_headers)[H_SOURCE_TOPIC] == TOPIC.encode()
    return "dead_lettered"


def _header_of(body: bytes) -> str | None:
    """The body's eventId, when an HTTP header can carry it as it is."""
    try:
        event_id = orjson.loads(body).get("eventId")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(event_id, str) or event_id != event_id.strip(" \t"):
        return None
    return None if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in event_id) else event_id


EVENT_ID_HEADERS = st.one_of(st.none(), st.just("__body__"), HEADER_JUNK)


@pytest.mark.component
@pytest.mark.timeout(240)
def test_every_callback_gets_its_contracted_answer_and_never_a_server_error(
    receiver: Receiver,
) -> None:
    @FUZZ
    @given(
        case=callback_bodies(),
        signer=signatures(SECRET, PREVIOUS, TOLERANCE_S),
        event_id_header=EVENT_ID_HEADERS,
    )
    @example(
        case=("valid", orjson.dumps(callback("dev-example"))),
        signer=lambda body, now: ("unicode", f"t={now},v1=é"),  # non-ASCII digest
        event_id_header=None,
    )
    @example(
        case=("valid", orjson.dumps(callback("dev-example"))),
        signer=lambda body, now: ("unicode", "t=²,v1=00"),  # a Unicode digit as timestamp
        event_id_header=None,
    )
    @example(
        case=("valid", orjson.dumps(callback("dev-example"))),
        signer=lambda body, now: ("many_digits", f"t={'9' * 5000},v1=00"),
        event_id_header=None,
    )
    def check(
        case: tuple[str, bytes],
        signer: Callable[[bytes, int], tuple[str, str | None]],
        event_id_header: str | None,
    ) -> None:
        _kind, body = case
        if event_id_header == "__body__":
            event_id_header = _header_of(body)
        outcome = _check_callback(receiver, body, signer(body, NOW), event_id_header)
        receiver.model.answers[outcome] += 1

    check()
    answers = receiver.model.answers
    print(f"\nwebhook callbacks: {sum(answers.values())} sent, {dict(sorted(answers.items()))}")
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
def test_garbled_header_bytes_are_refused_or_dead_lettered_never_a_server_error(
    receiver: Receiver,
) -> None:
    """Header values as raw bytes (not UTF-8, Unicode digits, junk) on a signed valid body."""
    answers: Counter[int] = Counter()
    dead_lettered: set[str] = set()

    @settings(FUZZ, max_examples=200)
    @given(
        signature=st.one_of(RAW_HEADER_BYTES, st.just(b"")),
        event_id=st.one_of(st.none(), RAW_HEADER_BYTES),
        content_type=st.one_of(st.none(), RAW_HEADER_BYTES),
        sign_it=st.booleans(),
        n=st.integers(min_value=0, max_value=10**9),
    )
    @example(signature=b"t=\xc2\xb2,v1=ab", event_id=None, content_type=None, sign_it=False, n=1)
    @example(signature=b"", event_id=b"\xff\xfe", content_type=b"\xff/\xfe", sign_it=True, n=2)
    def check(
        signature: bytes, event_id: bytes | None, content_type: bytes | None, sign_it: bool, n: int
    ) -> None:
        body = orjson.dumps(callback(f"dev-raw-{n}"))
        if sign_it:
            signature = sign(SECRET, body, NOW).encode()
        headers = [(SIGNATURE_HEADER.encode(), signature)]
        if event_id is not None:
            headers.append((EVENT_ID_HEADER.encode(), event_id))
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
        elif event_id is None or event_id.decode("utf-8", "surrogateescape") == f"dev-raw-{n}":
            assert reply.status in (204, 200), reply
        else:
            assert reply.status == 400, reply  # header and body disagree: dead-lettered
            digest = body_digest(body)
            if digest in dead_lettered:
                assert new == [], "a retried invalid callback is dead-lettered once"
            else:
                dead_lettered.add(digest)
                assert len(new) == 1, new
                letter = codec_for(DeadLetter).decode(new[0][2])
                assert letter.error_type == "EVENT_ID_MISMATCH"
                assert letter.original_value == body
                # the header's bytes as received, not UTF-8 ones shown escaped
                shown = event_id.decode("utf-8", "backslashreplace")
                assert letter.original_headers[EVENT_ID_RECORD_HEADER] == shown
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
    """Through the real Kafka writer: every invalid signed body is on the dead-letter topic with
    its code, reason and bytes; every valid one on the delivery topic, once."""
    topic, dlq = _topics(kafka, "fuzz-delivery-events")
    cases = draw_many(callback_bodies().filter(lambda c: len(c[1]) <= LIMIT), 240, 4242)
    receiver = build_receiver(
        secrets=[SECRET],
        client_config=kafka.client_config(),
        topic=topic,
        dlq_topic=dlq,
        kafka_timeout_s=15.0,
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
                event = parse_callback(body)
            except PayloadError as exc:
                assert reply.status == 400, reply
                expected_letters.setdefault(body_digest(body), (body, exc.code))
                continue
            assert reply.status in (204, 200, 409), reply
            expected_events.setdefault(event.event_id, event)
    elapsed = time.monotonic() - started
    events = [
        codec_for(DeliveryEvent).decode(r.value)
        for r in read_topic(kafka.bootstrap_servers, topic, client_config=kafka.client_config())
    ]
    letters = list(read_topic(kafka.bootstrap_servers, dlq, client_config=kafka.client_config()))
    print(
        f"\nwebhook on the broker: {len(cases)} signed callbacks in {elapsed:.1f} s, answers "
        f"{dict(statuses)}; {len(events)} events written, {len(letters)} dead letters"
    )
    written = Counter(e.event_id for e in events)
    assert [i for i, n in written.items() if n > 1] == [], "each valid callback written once"
    assert {e.event_id: e for e in events} == expected_events
    got: dict[str, tuple[bytes, str]] = {}
    for record in letters:
        letter = codec_for(DeadLetter).decode(record.value)
        assert letter.original_value is not None
        assert dict(record.headers)[H_REASON].decode() == letter.reason
        assert letter.reason.startswith("invalid delivery callback: ")
        got[body_digest(letter.original_value)] = (letter.original_value, letter.error_type)
    assert len(letters) == len(expected_letters), "each invalid body dead-lettered once"
    assert got == expected_letters
    assert len(expected_letters) > 20
    assert len(expected_events) > 20
