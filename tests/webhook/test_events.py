"""Event batches: EI events -> DeliveryEvent, batch validation, and the replay rule (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.records import DeliveryEvent
from streams.webhook.events import Decision, ReplayGuard, customer_key, parse_batch
from streams.webhook.mapping import ChannelNames, PayloadError, to_delivery_event
from tests.webhook.ei import batch, ei_event

pytestmark = pytest.mark.unit

WHEN_MS = 1_800_000_000_123 + 0  # 2027-01-15T08:00:00.123Z


def test_an_email_event_becomes_a_delivery_event() -> None:
    event = to_delivery_event(ei_event())
    assert event == DeliveryEvent(
        event_id="ev-1",
        communication_id="com-1",
        customer_id="cust-000042",
        job_id="job-7",
        document_id="doc-9",
        channel="EMAIL",
        status="EMAIL_DELIVERED",
        occurred_at=event.occurred_at,
    )
    assert event.occurred_at % 1000 == 123


@pytest.mark.parametrize(
    ("schema_type", "channel", "status", "bounce"),
    [
        ("Exstream-Generated", "PRINT", "COMPOSED", None),
        ("Exstream-Email-Submit", "EMAIL", "EMAIL_SENT", None),
        ("Exstream-Email-POST", "EMAIL", "EMAIL_DELIVERED", None),
        ("Exstream-Email-OPEN", "EMAIL", "EMAIL_OPENED", None),
        ("Exstream-Email-NDLV", "EMAIL", "EMAIL_BOUNCED", "HARD"),
        ("Exstream-PrintFile", "PRINT", "PRINTED", None),
        ("Exstream-PrintMail", "PRINT", "MAILED", None),
        ("Exstream-Portal", "WEB", "WEB_POSTED", None),
        ("Exstream-SMS", "SMS", "SMS_DELIVERED", None),
        ("Exstream-Push", "PUSH", "PUSH_DELIVERED", None),
        ("Exstream-PrintFile-Failed", "PRINT", "FAILED", None),
        ("Exstream-Email-Failed", "EMAIL", "FAILED", None),
    ],
)
def test_each_schema_type_maps_onto_a_status(
    schema_type: str, channel: str, status: str, bounce: str | None
) -> None:
    event = to_delivery_event(ei_event(schema_type=schema_type, channel=channel))
    assert event.status == status
    assert event.bounce_type == bounce
    assert event.channel == channel


def test_failures_carry_the_exception_code_from_the_job_message() -> None:
    failed = to_delivery_event(
        ei_event(schema_type="Exstream-PrintFile-Failed", channel="PRINT", msg="MISSING_DATA: x, y")
    )
    assert (failed.exception_code, failed.exception_text) == ("MISSING_DATA", "x, y")
    plain = to_delivery_event(
        ei_event(schema_type="Exstream-Portal-Failed", channel="WEB", msg="disk full")
    )
    assert (plain.exception_code, plain.exception_text) == ("DELIVERY_FAILED", "disk full")
    bare = to_delivery_event(ei_event(schema_type="Exstream-SMS-Failed", channel="SMS"))
    assert bare.exception_code == "DELIVERY_FAILED"
    assert bare.exception_text


def test_channel_names_are_configuration() -> None:
    names = ChannelNames(delivered={"Letters": "MAILED"})
    assert (
        to_delivery_event(ei_event(schema_type="Exstream-Letters", channel="PRINT"), names).status
        == "MAILED"
    )
    with pytest.raises(PayloadError) as info:
        to_delivery_event(ei_event(schema_type="Exstream-PrintMail", channel="PRINT"), names)
    assert info.value.code == "UNKNOWN_STATUS"


def test_an_event_without_an_id_gets_one_from_its_content() -> None:
    a = to_delivery_event(ei_event(event_id=None))
    b = to_delivery_event(ei_event(event_id=None))
    c = to_delivery_event(ei_event(event_id=None, schema_type="Exstream-Email-OPEN"))
    assert a.event_id == b.event_id
    assert a.event_id.startswith("ei-")
    assert c.event_id != a.event_id


def test_the_time_falls_back_to_the_creation_time() -> None:
    event = ei_event()
    del event["expctr"]["eventDate"]
    assert to_delivery_event(event).occurred_at % 1000 == 123
    del event["exstreamEmailStatistics"]["creationTime"]
    with pytest.raises(PayloadError) as info:
        to_delivery_event(event)
    assert info.value.code == "MISSING_FIELD"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda e: e.pop("expctr"), "MISSING_FIELD"),
        (lambda e: e.__setitem__("user", []), "BAD_TYPE"),
        (lambda e: e["expctr"].__setitem__("schemaType", "Other-Thing"), "UNKNOWN_STATUS"),
        (lambda e: e["expctr"].__setitem__("schemaType", "Exstream-Email-ZZZ"), "UNKNOWN_STATUS"),
        (lambda e: e["expctr"].__setitem__("schemaType", "Exstream-Fax"), "UNKNOWN_STATUS"),
        (lambda e: e["user"].__setitem__("AirChannel", "FAX"), "UNKNOWN_CHANNEL"),
        (lambda e: e["user"].pop("AirCommunicationId"), "MISSING_FIELD"),
        (lambda e: e["user"].__setitem__("CustomerId", 7), "BAD_TYPE"),
        (lambda e: e["user"].__setitem__("CustomerId", " "), "BAD_VALUE"),
        (lambda e: e["expctr"].__setitem__("eventDate", "yesterday"), "BAD_VALUE"),
        (lambda e: e["expctr"].__setitem__("eventDate", "2027-01-15T08:00:00"), "BAD_VALUE"),
        (lambda e: e["expctr"].__setitem__("eventId", 5), "BAD_TYPE"),
    ],
)
def test_invalid_events_raise_a_payload_error_with_a_code(mutate: Any, code: str) -> None:
    event = ei_event()
    mutate(event)
    with pytest.raises(PayloadError) as info:
        to_delivery_event(event)
    assert info.value.code == code


def test_error_messages_name_fields_but_never_quote_values() -> None:
    secret = "cust-PERSONAL-999"
    for mutate in (
        lambda e: e["user"].__setitem__("AirChannel", secret),
        lambda e: e["expctr"].__setitem__("schemaType", secret),
        lambda e: e["expctr"].__setitem__("eventDate", secret),
    ):
        event = ei_event()
        mutate(event)
        with pytest.raises(PayloadError) as info:
            parse_batch(batch(ei_event("ok"), event))
        assert secret not in str(info.value)
        assert str(info.value).startswith("event 1:")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\xff\xfe", "NOT_JSON"),
        (b'{"expctr": {}}', "NOT_ARRAY"),
        (b"[]", "EMPTY_BATCH"),
    ],
)
def test_invalid_batches(body: bytes, code: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_batch(body)
    assert info.value.code == code


def test_a_batch_is_bounded() -> None:
    events = [ei_event(f"ev-{i}") for i in range(3)]
    assert len(parse_batch(batch(*events), max_events=3)) == 3
    with pytest.raises(PayloadError) as info:
        parse_batch(batch(*events), max_events=2)
    assert info.value.code == "TOO_MANY_EVENTS"


def _events_or_error(body: bytes) -> None:
    """Either every element became a DeliveryEvent or a PayloadError with a known code: no other
    exception escapes."""
    try:
        events = parse_batch(body)
    except PayloadError as exc:
        error: PayloadError | None = exc
    else:
        error = None
    if error is not None:
        assert error.code.isupper()
        assert str(error)
        return
    assert len(events) == len(orjson.loads(body))
    assert all(isinstance(p.event, DeliveryEvent) for p in events)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_events_or_a_payload_error(raw: bytes) -> None:
    _events_or_error(raw)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_gives_events_or_a_payload_error(value: Any) -> None:
    _events_or_error(orjson.dumps([value]))


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(["expctr", "user", "exstreamJob", "exstreamEmailStatistics"]),
    key=st.sampled_from(
        [
            "schemaType",
            "eventId",
            "eventDate",
            "AirChannel",
            "CustomerId",
            "AirCommunicationId",
            "creationTime",
            "msg",
        ]
    ),
    value=JSON,
)
def test_near_valid_events_give_an_event_or_a_payload_error(
    path: str, key: str, value: Any
) -> None:
    event = ei_event()
    if isinstance(event.get(path), dict):
        event[path][key] = value
    _events_or_error(batch(event))


def test_customer_key_is_read_even_from_an_invalid_batch() -> None:
    assert customer_key(batch(ei_event(channel="FAX"))) == b"cust-000042"
    assert customer_key(b"garbage") is None
    assert customer_key(b"[]") is None


# --------------------------------------------------------------------------- replay rule


def test_a_new_event_then_its_identical_copy_is_a_duplicate() -> None:
    guard = ReplayGuard(retention_s=60)
    assert guard.begin("e", "d1", 0.0) is Decision.NEW
    assert guard.peek("e", "d1", 0.5) is Decision.IN_FLIGHT
    guard.commit("e", 1.0)
    assert guard.peek("e", "d1", 2.0) is Decision.DUPLICATE
    assert guard.begin("e", "d1", 2.0) is Decision.DUPLICATE


def test_the_same_event_id_with_other_content_is_a_conflict() -> None:
    guard = ReplayGuard(retention_s=60)
    guard.begin("e", "d1", 0.0)
    guard.commit("e", 0.0)
    assert guard.peek("e", "d2", 1.0) is Decision.CONFLICT
    assert guard.begin("e", "d2", 1.0) is Decision.CONFLICT


def test_a_failed_write_is_forgotten_so_that_the_retry_is_written() -> None:
    guard = ReplayGuard(retention_s=60)
    guard.begin("e", "d", 0.0)
    guard.abandon("e")
    assert guard.begin("e", "d", 1.0) is Decision.NEW


def test_abandon_never_forgets_a_committed_event() -> None:
    guard = ReplayGuard(retention_s=60)
    guard.begin("e", "d", 0.0)
    guard.commit("e", 0.0)
    guard.abandon("e")
    assert guard.committed("e")


def test_ids_are_forgotten_after_the_retention() -> None:
    guard = ReplayGuard(retention_s=10)
    guard.begin("e", "d", 0.0)
    guard.commit("e", 0.0)
    assert guard.peek("e", "x", 11.0) is Decision.NEW
    assert guard.begin("e", "x", 11.0) is Decision.NEW


def test_memory_is_bounded_oldest_first() -> None:
    guard = ReplayGuard(retention_s=60, max_entries=3)
    for i in range(5):
        guard.begin(f"e{i}", "d", float(i))
        guard.commit(f"e{i}", float(i))
    assert len(guard) == 3
    assert not guard.committed("e0")
    assert guard.committed("e4")


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayGuard(retention_s=0)
    with pytest.raises(ValueError, match="positive"):
        ReplayGuard(max_entries=0)
