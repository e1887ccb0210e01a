"""Hostile inputs for every entrance of the system, as hypothesis strategies.

Kafka records (:class:`Hostile`) carry, besides their key, value and headers, what the system must
do with them: the dead-letter codes that are acceptable and the words the dead letter's reason must
contain. Each strategy checks its own construction against the project's codec and catalogue (the
code a record is made for must be the code it gets), so a generator mistake is a rejected example,
not a false alarm on the broker.

:func:`draw` runs a strategy under a fixed seed: the end-to-end tier draws whole batches of
records that way (a worker per example would be far too slow), reproducibly.

The HTTP part: callback bodies and signatures for the webhook receiver, header junk, and
:class:`Served`, which serves aiohttp applications from a private event loop so that (synchronous)
hypothesis tests can send one request per example.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from hypothesis import strategies as st
from yarl import URL

from streams.codec import Codec, DecodeError, codec_for
from streams.codec.codec import SINGLE_OBJECT_MAGIC
from streams.codec.schemas import default_store
from streams.domain.catalogue import ATTRIBUTE_KINDS, CATALOGUE, FieldKind, validate_event
from streams.domain.records import (
    AccountEvent,
    AuditRecord,
    CaseEvent,
    CommRule,
    CompositionCommand,
    DeliveryEvent,
    DocumentMetadata,
    Preference,
    Submission,
    TemplateVersion,
)
from streams.signing import sign
from tests.codec.strategies import records

T = TypeVar("T")

JSON: tuple[str, bytes] = ("content-type", b"application/json")

HTTP_FUZZ = settings(
    derandomize=True,  # the same examples on every run: a failure is reproducible
    deadline=None,  # each example is a real loopback request
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""The settings of the HTTP fuzz tiers (webhook receiver, on-demand service); each test module
sets its own ``max_examples`` on top: ``settings(HTTP_FUZZ, max_examples=...)``."""

# --------------------------------------------------------------------------- drawing


def draw(strategy: st.SearchStrategy[T], seed_value: int) -> T:
    """One example of ``strategy``, the same for the same seed (no database, no shrinking).

    Hypothesis generates the simplest example first (for a list strategy: identical minimal
    records), so the second example generated is the one returned."""
    drawn: list[T] = []

    @seed(seed_value)
    @settings(
        max_examples=2,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def capture(value: T) -> None:
        drawn.append(value)

    capture()
    return drawn[-1]


def draw_many(strategy: st.SearchStrategy[T], count: int, seed_value: int) -> list[T]:
    """``count`` examples of ``strategy``, drawn in small lists (hypothesis bounds how much one
    example may hold) from consecutive seeds."""
    out: list[T] = []
    chunk = 25
    for i in range(0, count, chunk):
        n = min(chunk, count - i)
        out += draw(st.lists(strategy, min_size=n, max_size=n), seed_value + i)
    return out


# --------------------------------------------------------------------------- Kafka records


class Pool(tuple[Any, ...]):
    """Records to build examples from: a tuple whose repr stays short (hypothesis prints the
    arguments of a strategy when it describes one)."""

    def __repr__(self) -> str:
        return f"<{len(self)} records>"


@dataclass(frozen=True, slots=True)
class Hostile:
    """One record to publish and what must become of it."""

    category: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    codes: frozenset[str] = frozenset()
    """Acceptable ``error_type`` values of its dead letter."""
    mentions: tuple[str, ...] = ()
    """Words its dead letter's reason must contain (case-insensitive)."""
    withheld: tuple[str, ...] = ()
    """Values that must never show in the reason (they may be personal data)."""


OTHER_TYPES: tuple[type, ...] = (
    AccountEvent,
    CaseEvent,
    Preference,
    CommRule,
    TemplateVersion,
    DeliveryEvent,
    CompositionCommand,
    AuditRecord,
    DocumentMetadata,
    Submission,
)
KNOWN_FINGERPRINTS = frozenset(default_store().by_fingerprint)


def _decode_code(
    codec: Codec[Any], value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> str:
    """The code the project's codec gives ``value`` ("" when it decodes)."""
    try:
        codec.decode(value, list(headers))
    except DecodeError as exc:
        return exc.code
    return ""


def _confirmed(codec: Codec[Any], record: Hostile) -> Hostile:
    """``record`` when the codec refuses it with one of its codes; otherwise not an example."""
    assume(_decode_code(codec, record.value, record.headers) in record.codes)
    return record


def pick(draw_: st.DrawFn, pool: Sequence[T]) -> T:
    """One element of ``pool`` (by index: a strategy over the pool itself would print it)."""
    return pool[draw_(st.integers(min_value=0, max_value=len(pool) - 1))]


def keys(customers: Sequence[str], *, nullable: bool = True) -> st.SearchStrategy[bytes | None]:
    """Keys of records that are bad anyway: none (where the broker allows it: a compacted topic
    refuses records without a key), a customer's, or random bytes."""
    return st.one_of(
        st.none() if nullable else st.binary(min_size=1, max_size=8),
        st.integers(min_value=0, max_value=len(customers) - 1).map(lambda i: customers[i].encode()),
        st.binary(min_size=1, max_size=40),
    )


@st.composite
def framing_attacks(
    draw_: st.DrawFn,
    cls: type,
    samples: Sequence[Any],
    customers: Sequence[str],
    *,
    compacted: bool = False,
) -> Hostile:
    """Records whose bytes are not a valid ``cls``: garbage, empty, null, wrong or unknown
    framing, another record type, truncated, trailing bytes, corrupt body. On a ``compacted``
    topic a null value is a tombstone (not bad) and every record has a key."""
    codec: Codec[Any] = codec_for(cls)
    name = codec.info.name
    key = draw_(keys(Pool(customers), nullable=not compacted))
    valid = codec.encode(pick(draw_, samples))
    kinds = ["garbage", "empty", "short", "confluent", "fingerprint", "other_schema"]
    kinds += ["truncated", "trailing", "corrupt_body"] + ([] if compacted else ["null"])
    kind = draw_(st.sampled_from(kinds))
    if kind == "garbage":
        value = draw_(st.binary(min_size=1, max_size=300).filter(lambda b: b[:1] != b"\xc3"))
        return _confirmed(
            codec, Hostile(kind, key, value, (), frozenset({"BAD_MAGIC"}), ("C3 01",))
        )
    if kind == "empty":
        return _confirmed(codec, Hostile(kind, key, b"", (), frozenset({"EMPTY"}), ("empty",)))
    if kind == "null":
        return _confirmed(codec, Hostile(kind, key, None, (), frozenset({"EMPTY"}), ("empty",)))
    if kind == "short":
        value = SINGLE_OBJECT_MAGIC + draw_(st.binary(max_size=7))
        return _confirmed(
            codec, Hostile(kind, key, value, (), frozenset({"BAD_MAGIC"}), ("C3 01",))
        )
    if kind == "confluent":
        # a Confluent-framed record where no schema registry is configured
        value = b"\x00" + draw_(st.binary(min_size=4, max_size=4)) + valid[10:]
        return _confirmed(
            codec,
            Hostile(
                kind,
                key,
                value,
                (),
                frozenset({"NO_SCHEMA_REGISTRY"}),
                ("KAFKA_SCHEMA_REGISTRY_URL",),
            ),
        )
    if kind == "fingerprint":
        fingerprint = draw_(st.binary(min_size=8, max_size=8))
        assume(fingerprint not in KNOWN_FINGERPRINTS)
        value = SINGLE_OBJECT_MAGIC + fingerprint + valid[10:]
        return _confirmed(
            codec,
            Hostile(kind, key, value, (), frozenset({"UNKNOWN_SCHEMA"}), ("unknown schema",)),
        )
    if kind == "other_schema":
        other = draw_(st.sampled_from([t for t in OTHER_TYPES if t is not cls]))
        try:
            value = codec_for(other).encode(draw_(records(other)))
        except Exception:  # a random record the schema cannot hold: not an example
            assume(False)
            raise
        return _confirmed(
            codec,
            Hostile(kind, key, value, (), frozenset({"SCHEMA_MISMATCH"}), (f"expected a {name}",)),
        )
    if kind == "truncated":
        cut = draw_(st.integers(min_value=10, max_value=len(valid) - 1))
        value = valid[:cut]
        return _confirmed(
            codec, Hostile(kind, key, value, (), frozenset({"DECODE_ERROR"}), ("truncated",))
        )
    if kind == "trailing":
        value = valid + draw_(st.binary(min_size=1, max_size=30))
        return _confirmed(
            codec, Hostile(kind, key, value, (), frozenset({"DECODE_ERROR"}), ("trailing",))
        )
    body = draw_(st.binary(min_size=1, max_size=120))
    value = SINGLE_OBJECT_MAGIC + codec.info.fingerprint + body
    return _confirmed(codec, Hostile(kind, key, value, (), frozenset({"DECODE_ERROR"}), (name,)))


JSON_JUNK = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@st.composite
def json_attacks(
    draw_: st.DrawFn,
    cls: type,
    samples: Sequence[Any],
    customers: Sequence[str],
    *,
    compacted: bool = False,
) -> Hostile:
    """Records sent as JSON (content-type header) that are not a valid ``cls``: not JSON, cut
    JSON, not an object, a required field missing, a field of the wrong type."""
    codec: Codec[Any] = codec_for(cls)
    key = draw_(keys(Pool(customers), nullable=not compacted))
    valid = orjson.loads(codec.encode_json(pick(draw_, samples)))
    kind = draw_(st.sampled_from(["not_json", "cut_json", "not_object", "missing", "wrong_type"]))
    headers = (JSON,)
    if kind == "not_json":
        value = draw_(st.text(min_size=1, max_size=80).map(str.encode)).lstrip()
        assume(value[:1] not in (b"{", b"[", b'"') and value)
        return _confirmed(
            codec, Hostile(kind, key, value, headers, frozenset({"INVALID_JSON"}), ("JSON",))
        )
    if kind == "cut_json":
        text = orjson.dumps(valid)
        value = text[: draw_(st.integers(min_value=1, max_value=len(text) - 1))]
        return _confirmed(
            codec, Hostile(kind, key, value, headers, frozenset({"INVALID_JSON"}), ("JSON",))
        )
    if kind == "not_object":
        value = orjson.dumps(draw_(st.one_of(JSON_JUNK.filter(lambda v: not isinstance(v, dict)))))
        return _confirmed(
            codec, Hostile(kind, key, value, headers, frozenset({"INVALID_JSON"}), ("JSON",))
        )
    required = [f["name"] for f in codec.info.raw["fields"] if "default" not in f]
    if kind == "missing":
        field = draw_(st.sampled_from(required))
        value = orjson.dumps({k: v for k, v in valid.items() if k != field})
        return _confirmed(
            codec, Hostile(kind, key, value, headers, frozenset({"MISSING_FIELD"}), (field,))
        )
    field = draw_(st.sampled_from(sorted(valid)))
    junk = draw_(JSON_JUNK)
    assume(type(junk) is not type(valid[field]))
    value = orjson.dumps({**valid, field: junk})
    return _confirmed(
        codec,
        Hostile(kind, key, value, headers, frozenset({"SCHEMA_MISMATCH"}), (field,)),
    )


def oversized(size: int, key: bytes | None, rng: random.Random) -> Hostile:
    """Random bytes of ``size`` (not Avro framing): near the broker's message size limit."""
    value = b"\x01" + rng.randbytes(size - 1)
    return Hostile("oversized", key, value, (), frozenset({"BAD_MAGIC"}), ("C3 01",))


# --------------------------------------------------------------------------- domain content


MARK = "zq"
"""Prefix of generated values that must never be quoted in a reason."""


@st.composite
def event_domain_attacks(draw_: st.DrawFn, events: Sequence[AccountEvent | CaseEvent]) -> Hostile:
    """Events that decode but break the catalogue: unknown type, blank ids, negative time, a case
    type the event does not allow, a required attribute missing, an attribute of the wrong shape.
    Avro or JSON. Fresh event ids, keyed by their customer."""
    event = pick(draw_, events)
    spec = CATALOGUE[event.event_type]
    token = f"{MARK}{draw_(st.integers(min_value=10**6, max_value=10**9))}"
    event = dataclasses.replace(event, event_id=f"fz-{token}")
    kinds = ["unknown_type", "blank_id", "negative_time", "missing_attribute", "bad_shape"]
    if isinstance(event, CaseEvent):
        kinds.append("bad_case_type")
    kind = draw_(st.sampled_from(kinds))
    withheld: tuple[str, ...] = ()
    if kind == "unknown_type":
        bad = draw_(st.sampled_from([f"ZQ_{token[2:]}", f"{token} lower case", "", " "]))
        event = dataclasses.replace(event, event_type=bad)
        codes, mentions = {"UNKNOWN_EVENT_TYPE"}, ("event_type",)
        if not bad.isupper():
            withheld = (bad,) if bad.strip() else ()
    elif kind == "blank_id":
        field = draw_(
            st.sampled_from(
                ["event_id", "account_id"]
                if isinstance(event, AccountEvent)
                else ["event_id", "case_id"]
            )
        )
        blank: dict[str, Any] = {field: draw_(st.sampled_from(["", "   ", "\t"]))}
        event = dataclasses.replace(event, **blank)
        codes, mentions = {"MISSING_FIELD"}, (field,)
    elif kind == "negative_time":
        event = dataclasses.replace(
            event, occurred_at=draw_(st.integers(min_value=-(2**63), max_value=-1))
        )
        codes, mentions = {"INVALID_FIELD"}, ("occurred_at",)
    elif kind == "bad_case_type":
        assert isinstance(event, CaseEvent)
        event = dataclasses.replace(event, case_type=f"{token}-TYPE")
        codes, mentions, withheld = {"INVALID_FIELD"}, ("case_type",), (f"{token}-TYPE",)
    elif kind == "missing_attribute":
        assume(bool(spec.required))
        field = draw_(st.sampled_from(sorted(spec.required)))
        attributes = {k: v for k, v in event.attributes.items() if k != field}
        event = dataclasses.replace(event, attributes=attributes)
        codes, mentions = {"MISSING_FIELD"}, (field,)
    else:
        shaped = sorted(
            n
            for n in spec.required | spec.optional
            if ATTRIBUTE_KINDS.get(n, FieldKind.TEXT) is not FieldKind.TEXT
        )
        assume(bool(shaped))
        field = draw_(st.sampled_from(shaped))
        bad_value = f"{token}-not-a-{field}"
        event = dataclasses.replace(event, attributes={**event.attributes, field: bad_value})
        codes, mentions, withheld = {"INVALID_FIELD"}, (field,), (bad_value,)
    rejection = validate_event(event)
    assume(rejection is not None and rejection.code.value in codes)
    codec: Codec[Any] = codec_for(type(event))
    as_json = draw_(st.booleans())
    value = codec.encode_json(event) if as_json else codec.encode(event)
    headers = (JSON,) if as_json else ()
    key = event.customer_id.encode() if event.customer_id.strip() else None
    return Hostile(f"domain_{kind}", key, value, headers, frozenset(codes), mentions, withheld)


# --------------------------------------------------------------------------- HTTP bodies


def callback(event_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid Experience-Insights-shaped delivery event (docs/exstream-emulator.md); overrides
    replace top-level parts (``expctr``, ``user``, ``exstreamJob``, ...)."""
    base: dict[str, Any] = {
        "expctr": {
            "schemaVersion": "1.0",
            "schemaType": "Exstream-Email-POST",
            "schemaSource": "air-exstream",
            "tenant": "air",
            "eventId": event_id,
            "eventDate": "2027-01-15T08:00:00.000Z",
        },
        "user": {
            "AirCommunicationId": "com-fuzz-1",
            "CustomerId": "cust-000042",
            "AirChannel": "EMAIL",
            "DocumentId": "doc-1",
            "ExstreamJobId": "job-1",
        },
        "exstreamEmailStatistics": {
            "creationTime": "2027-01-15T08:00:00.000Z",
            "emailProvider": "OpenText Notifications",
            "customerEmailId": "someone@example.com",
            "campaignId": "c",
            "domain": "air",
            "communicationId": "design-1",
            "eventType": "POST",
        },
    }
    return base | overrides


CALLBACK_FIELDS = (
    "schemaType",
    "eventId",
    "eventDate",
    "AirCommunicationId",
    "CustomerId",
    "AirChannel",
)
_PART_OF = {"schemaType": "expctr", "eventId": "expctr", "eventDate": "expctr"}
HEADER_JUNK = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=0, max_size=60
).map(lambda text: text.strip(" \t"))
"""Header text a well-behaved HTTP client can send (no control characters; HTTP drops the
spaces around a value)."""
UNICODE_JUNK = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=40
)


def _nest(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _with(event: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    part = _PART_OF.get(field, "user")
    return event | {part: {**event[part], field: value}}


def _without(event: dict[str, Any], field: str) -> dict[str, Any]:
    part = _PART_OF.get(field, "user")
    return event | {part: {k: v for k, v in event[part].items() if k != field}}


_EVENT_NUMBERS = itertools.count()
VALID_TYPES = (
    ("EMAIL", "Exstream-Email-POST"),
    ("EMAIL", "Exstream-Email-NDLV"),
    ("EMAIL", "Exstream-Email-OPEN"),
    ("PRINT", "Exstream-PrintMail"),
    ("PRINT", "Exstream-Generated"),
    ("SMS", "Exstream-SMS"),
    ("WEB", "Exstream-Portal"),
    ("PUSH", "Exstream-Push"),
    ("EMAIL", "Exstream-Email-Failed"),
)


@st.composite
def _valid_event(draw_: st.DrawFn) -> dict[str, Any]:
    # mostly fresh ids; now and then one seen before (a re-sent batch, or a conflicting reuse)
    fresh = st.builds(lambda: f"{next(_EVENT_NUMBERS):08x}")  # hypothesis would reuse drawn ids
    event_id = f"ev-{draw_(st.one_of(fresh, fresh, fresh, fresh, st.sampled_from('abc')))}"
    channel, schema_type = draw_(st.sampled_from(VALID_TYPES))
    event = _with(_with(callback(event_id), "schemaType", schema_type), "AirChannel", channel)
    extra = draw_(st.dictionaries(st.sampled_from(["x", "meta", "tag"]), JSON_JUNK, max_size=2))
    return event | extra


@st.composite
def callback_bodies(draw_: st.DrawFn) -> tuple[str, bytes]:
    """(kind, body): batches of valid events, and every way a batch body can be wrong."""
    kind = draw_(
        st.sampled_from(
            [
                *["valid"] * 6,
                "bytes",
                "cut_json",
                "not_array",
                "empty_array",
                "missing",
                "wrong_type",
                "bad_enum",
                "unicode",
                "depth",
                "huge",
                "empty",
                "bad_time",
            ]
        )
    )
    events = draw_(st.lists(_valid_event(), min_size=1, max_size=4))
    if kind == "valid":
        return kind, orjson.dumps(events)
    if kind == "bytes":
        return kind, draw_(st.binary(max_size=300))
    if kind == "empty":
        return kind, b""
    if kind == "empty_array":
        return kind, b"[]"
    if kind == "cut_json":
        text = orjson.dumps(events)
        return kind, text[: draw_(st.integers(min_value=1, max_value=len(text) - 1))]
    if kind == "not_array":
        return kind, orjson.dumps(draw_(JSON_JUNK.filter(lambda v: not isinstance(v, list))))
    if kind == "depth":
        depth = draw_(st.integers(min_value=50, max_value=3000))
        return kind, _nest(depth, draw_(st.sampled_from(["array", "object"])))
    if kind == "huge":
        size = draw_(st.integers(min_value=64 * 1024 + 1, max_value=300 * 1024))
        return kind, orjson.dumps([_with(events[0], "padding", "x" * size)])
    i = draw_(st.integers(min_value=0, max_value=len(events) - 1))
    field = draw_(st.sampled_from(CALLBACK_FIELDS))
    if kind == "missing":
        events[i] = _without(events[i], field)
    elif kind == "wrong_type":
        junk = draw_(JSON_JUNK)
        assume(not isinstance(junk, str) and junk is not None)
        events[i] = _with(events[i], field, junk)
    elif kind == "bad_enum":
        enum_field = draw_(st.sampled_from(["schemaType", "AirChannel"]))
        events[i] = _with(events[i], enum_field, draw_(UNICODE_JUNK.filter(str.strip)))
    elif kind == "unicode":
        events[i] = _with(events[i], field, draw_(UNICODE_JUNK))
    else:  # bad_time
        events[i] = _with(events[i], "eventDate", draw_(UNICODE_JUNK))
    return kind, orjson.dumps(events)


SIGNATURE_KINDS = (
    *["valid"] * 5,
    "previous",
    "missing",
    "wrong_secret",
    "stale",
    "future",
    "other_body",
    "garbled",
    "unicode",
    "no_digest",
    "many_digits",
)


@st.composite
def signatures(
    draw_: st.DrawFn, secret: bytes, previous: bytes, tolerance_s: int
) -> Callable[[bytes, int], tuple[str, str | None]]:
    """A way to sign a body at ``now``: (kind, header value or None when missing). Only
    ``valid`` and ``previous`` are authentic."""
    kind = draw_(st.sampled_from(SIGNATURE_KINDS))
    skew = draw_(st.integers(min_value=1, max_value=10**6))
    junk = draw_(HEADER_JUNK)

    def make(body: bytes, now: int) -> tuple[str, str | None]:
        if kind == "valid":
            return kind, sign(secret, body, now)
        if kind == "previous":
            return kind, sign(previous, body, now)
        if kind == "missing":
            return kind, None
        if kind == "wrong_secret":
            return kind, sign(b"not-the-secret", body, now)
        if kind == "stale":
            return kind, sign(secret, body, now - tolerance_s - skew)
        if kind == "future":
            return kind, sign(secret, body, now + tolerance_s + skew)
        if kind == "other_body":
            return kind, sign(secret, body + b" ", now)
        if kind == "no_digest":
            return kind, f"t={now}"
        if kind == "many_digits":
            return kind, f"t={'9' * (900 + skew % 4000)},v1=00"
        if kind == "unicode":
            return kind, f"t={now},v1={junk or 'é'}"
        return kind, junk.replace("\r", "").replace("\n", "") or ","

    return make


# --------------------------------------------------------------------------- serving HTTP


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body of an error answer (fails when it is not one)."""
        content_type = self.headers.get("Content-Type", "")
        assert content_type.startswith("application/problem+json"), (self.status, content_type)
        parsed = orjson.loads(self.body)
        assert isinstance(parsed, dict), parsed
        assert parsed["status"] == self.status, parsed
        for member in ("detail", "title"):
            assert isinstance(parsed[member], str), parsed
            assert parsed[member].strip(), parsed
        return parsed


class Served:
    """aiohttp applications served on loopback from a private event loop.

    Hypothesis runs synchronous test functions, so each example calls :meth:`request` (or
    :meth:`raw`), which runs one coroutine to completion on this loop; the servers, the client
    session and every application's state live across examples.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._servers: list[TestServer] = []
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> Served:
        self._runner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self._session is not None:
                await self._session.close()
            for server in reversed(self._servers):
                await server.close()

        try:
            self._runner.run(close())
        finally:
            self._runner.__exit__(None, None, None)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def start(self, app: web.Application) -> str:
        """Serve ``app``; returns its base URL (no trailing slash)."""

        async def start() -> str:
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            self._servers.append(server)
            return str(server.make_url("")).rstrip("/")

        return self.run(start())

    def request(
        self,
        method: str,
        url: str | URL,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        async def call() -> Reply:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            async with self._session.request(
                method, url, data=data, headers=dict(headers or {}), allow_redirects=False
            ) as response:
                body = await response.read()
                return Reply(response.status, dict(response.headers), body)

        return self.run(call())

    def raw(self, base: str, request: bytes) -> Reply:
        """Send ``request`` (a whole HTTP/1.1 request, bytes as they are) and parse the answer."""
        target = URL(base)

        async def call() -> Reply:
            reader, writer = await asyncio.open_connection(target.host, target.port)
            try:
                writer.write(request)
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
                await writer.wait_closed()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip()] = value.strip()
            return Reply(status, headers, body)

        return self.run(call())


def raw_request(
    method: str, path: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes = b""
) -> bytes:
    """An HTTP/1.1 request with header values as given (any bytes but CR, LF and NUL)."""
    lines = [method.encode() + b" " + path + b" HTTP/1.1", b"Host: localhost"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


RAW_HEADER_BYTES = st.binary(max_size=80).map(
    lambda raw: bytes(c for c in raw if c == 9 or (c >= 32 and c != 127)).strip(b" \t")
)
"""Header values as a hostile client can send them and HTTP parsing lets through to the
application: any bytes, UTF-8 or not, but control characters (aiohttp's parser answers those
itself with a plain 400)."""


# --------------------------------------------------------------------------- more domain content


@st.composite
def command_refusals(draw_: st.DrawFn, commands: Sequence[CompositionCommand]) -> Hostile:
    """Commands that decode but that Exstream refuses: a channel it does not know, a template
    version below 1, a blank communication id or language. Only the sink can tell: it
    dead-letters each one alone (``EXSTREAM_400``), with Exstream's detail naming the field."""
    command = pick(draw_, commands)
    token = draw_(st.integers(min_value=0, max_value=10**9))
    command = dataclasses.replace(command, communication_id=f"com-fz-refused-{token}")
    kind = draw_(st.sampled_from(["channel", "template_version", "communication_id", "language"]))
    if kind == "channel":
        bad = draw_(st.sampled_from(["FAX", "print", "", "CARRIER_PIGEON"]))
        command, mention = dataclasses.replace(command, channel=bad), "channel"
    elif kind == "template_version":
        bad_version = draw_(st.integers(min_value=-(2**63), max_value=0))
        command = dataclasses.replace(command, template_version=bad_version)
        mention = "templateVersion"
    elif kind == "communication_id":
        command = dataclasses.replace(command, communication_id=draw_(st.sampled_from(["", " "])))
        mention = "communicationId"
    else:
        command = dataclasses.replace(command, language=draw_(st.sampled_from(["", "  "])))
        mention = "language"
    value = codec_for(CompositionCommand).encode(command)
    return Hostile(
        f"exstream_{kind}",
        command.customer_id.encode(),
        value,
        (),
        frozenset({"EXSTREAM_400"}),
        (mention,),
    )
