"""Callback payloads -> DeliveryEvent (valid, invalid, garbage) and the replay rule."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.records import DeliveryEvent, DeliveryStatus
from streams.webhook.events import (
    CHANNELS,
    Decision,
    PayloadError,
    ReplayGuard,
    body_digest,
    customer_key,
    parse_callback,
)

pytestmark = pytest.mark.unit


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": "dev-1",
        "communicationId": "com-1",
        "customerId": "cust-000001",
        "jobId": "job-1",
        "documentId": "doc-1",
        "channel": "EMAIL",
        "status": "EMAIL_BOUNCED",
        "occurredAt": 1_800_000_000_000,
        "bounceType": "HARD",
        "exceptionCode": None,
        "exceptionText": None,
    }
    return base | overrides


def body(**overrides: Any) -> bytes:
    return orjson.dumps(payload(**overrides))


def without(key: str) -> bytes:
    data = payload()
    del data[key]
    return orjson.dumps(data)


# --------------------------------------------------------------------------- valid payloads


def test_a_valid_callback_becomes_a_delivery_event() -> None:
    event = parse_callback(body(), "dev-1")
    assert event == DeliveryEvent(
        event_id="dev-1",
        communication_id="com-1",
        customer_id="cust-000001",
        job_id="job-1",
        document_id="doc-1",
        channel="EMAIL",
        status="EMAIL_BOUNCED",
        occurred_at=1_800_000_000_000,
        bounce_type="HARD",
    )


def test_optional_fields_may_be_null_missing_or_empty_and_become_none() -> None:
    data = {
        "eventId": "e",
        "communicationId": "c",
        "customerId": "k",
        "channel": "PRINT",
        "status": "FAILED",
        "occurredAt": 0,
        "jobId": "",
        "exceptionCode": "PRINTER_JAM",
    }
    event = parse_callback(orjson.dumps(data))
    assert event.job_id is None
    assert event.document_id is None
    assert event.bounce_type is None
    assert event.exception_code == "PRINTER_JAM"


def test_unknown_extra_fields_are_ignored() -> None:
    assert parse_callback(body(newField={"x": 1})).event_id == "dev-1"


@pytest.mark.parametrize("status", [s.value for s in DeliveryStatus if s != "EMAIL_BOUNCED"])
@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_every_status_and_channel_is_accepted(status: str, channel: str) -> None:
    event = parse_callback(body(status=status, channel=channel, bounceType=None))
    assert (event.status, event.channel) == (status, channel)


# --------------------------------------------------------------------------- invalid payloads


@pytest.mark.parametrize(
    ("raw", "header", "code"),
    [
        (b"", None, "NOT_JSON"),
        (b"{not json", None, "NOT_JSON"),
        (b"\xff\xfe", None, "NOT_JSON"),
        (b"[1, 2]", None, "NOT_OBJECT"),
        (b"null", None, "NOT_OBJECT"),
        (without("eventId"), None, "MISSING_FIELD"),
        (without("customerId"), None, "MISSING_FIELD"),
        (without("communicationId"), None, "MISSING_FIELD"),
        (without("occurredAt"), None, "MISSING_FIELD"),
        (without("status"), None, "MISSING_FIELD"),
        (without("channel"), None, "MISSING_FIELD"),
        (body(customerId=None), None, "MISSING_FIELD"),
        (body(customerId=42), None, "BAD_TYPE"),
        (body(customerId="  "), None, "BAD_VALUE"),
        (body(jobId=7), None, "BAD_TYPE"),
        (body(occurredAt="2026-01-01"), None, "BAD_TYPE"),
        (body(occurredAt=1.5), None, "BAD_TYPE"),
        (body(occurredAt=True), None, "BAD_TYPE"),
        (body(occurredAt=-1), None, "BAD_VALUE"),
        (body().replace(b"1800000000000", b"99999999999999999999999"), None, "BAD_TYPE"),
        (body(status="DELIVERED"), None, "UNKNOWN_STATUS"),
        (body(status="accepted"), None, "UNKNOWN_STATUS"),
        (body(channel="FAX"), None, "UNKNOWN_CHANNEL"),
        (body(bounceType="MAYBE"), None, "BAD_VALUE"),
        (body(bounceType=None), None, "MISSING_FIELD"),
        (body(), "dev-other", "EVENT_ID_MISMATCH"),
    ],
)
def test_invalid_payloads_raise_a_payload_error_with_a_code(
    raw: bytes, header: str | None, code: str
) -> None:
    with pytest.raises(PayloadError) as info:
        parse_callback(raw, header)
    assert info.value.code == code


def test_error_messages_name_fields_but_never_quote_values() -> None:
    with pytest.raises(PayloadError) as info:
        parse_callback(body(customerId=["secret-personal-value"]))
    assert "customerId" in str(info.value)
    assert "secret-personal-value" not in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
field_values = st.one_of(
    json_values,
    st.sampled_from([s.value for s in DeliveryStatus]),
    st.sampled_from(sorted(CHANNELS)),
    st.integers(min_value=-(2**70), max_value=2**70),
)
FIELDS = (
    "eventId",
    "communicationId",
    "customerId",
    "jobId",
    "documentId",
    "channel",
    "status",
    "occurredAt",
    "bounceType",
    "exceptionCode",
    "exceptionText",
)
near_valid = st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, field_values))


def _parse_or_error(raw: bytes, header: str | None = None) -> DeliveryEvent | PayloadError:
    try:
        return parse_callback(raw, header)
    except PayloadError as exc:
        error = exc
    assert error.code
    assert str(error)
    return error


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_an_event_or_a_payload_error(raw: bytes) -> None:
    _parse_or_error(raw)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_gives_an_event_or_a_payload_error(value: Any) -> None:
    _parse_or_error(json.dumps(value).encode())  # stdlib: integers beyond 64 bits too


@settings(max_examples=500, deadline=None)
@given(near_valid, st.none() | st.text(max_size=5))
def test_near_valid_objects_give_an_event_or_a_payload_error(
    data: dict[str, Any], header: str | None
) -> None:
    result = _parse_or_error(json.dumps(data).encode(), header)
    if isinstance(result, DeliveryEvent):
        assert result.status in {s.value for s in DeliveryStatus}
        assert result.channel in CHANNELS
        assert 0 <= result.occurred_at < 2**63
        assert result.event_id == data["eventId"]


def test_customer_key_is_read_even_from_an_invalid_body() -> None:
    assert customer_key(body(status="NOPE")) == b"cust-000001"
    assert customer_key(b"[]") is None
    assert customer_key(b"\x00garbage") is None
    assert customer_key(body(customerId=3)) is None


# --------------------------------------------------------------------------- replay rule


def test_a_new_event_then_its_identical_copy_is_a_duplicate() -> None:
    guard = ReplayGuard()
    digest = body_digest(b"a")
    assert guard.begin("e1", digest, now=0) is Decision.NEW
    guard.commit("e1", now=1)
    assert guard.begin("e1", digest, now=2) is Decision.DUPLICATE
    assert guard.begin("e1", digest, now=3) is Decision.DUPLICATE


def test_the_same_event_id_with_another_body_is_a_conflict() -> None:
    guard = ReplayGuard()
    assert guard.begin("e1", body_digest(b"a"), now=0) is Decision.NEW
    guard.commit("e1", now=0)
    assert guard.begin("e1", body_digest(b"b"), now=1) is Decision.CONFLICT
    # the conflict did not replace what was written: the original is still a duplicate
    assert guard.begin("e1", body_digest(b"a"), now=1) is Decision.DUPLICATE


def test_a_copy_arriving_while_the_first_is_written_waits_for_it() -> None:
    guard = ReplayGuard()
    digest = body_digest(b"a")
    assert guard.begin("e1", digest, now=0) is Decision.NEW
    assert guard.begin("e1", digest, now=0) is Decision.IN_FLIGHT
    assert guard.begin("e1", body_digest(b"b"), now=0) is Decision.CONFLICT
    assert not guard.committed("e1")
    guard.commit("e1", now=0)
    assert guard.committed("e1")


def test_a_failed_write_is_forgotten_so_that_the_retry_is_written() -> None:
    guard = ReplayGuard()
    digest = body_digest(b"a")
    assert guard.begin("e1", digest, now=0) is Decision.NEW
    guard.abandon("e1")
    assert guard.begin("e1", digest, now=1) is Decision.NEW


def test_abandon_never_forgets_a_committed_event() -> None:
    guard = ReplayGuard()
    guard.begin("e1", "d", now=0)
    guard.commit("e1", now=0)
    guard.abandon("e1")
    assert guard.begin("e1", "d", now=0) is Decision.DUPLICATE


def test_ids_are_forgotten_after_the_retention() -> None:
    guard = ReplayGuard(retention_s=10)
    guard.begin("e1", "d", now=0)
    guard.commit("e1", now=0)
    assert guard.begin("e1", "d", now=10) is Decision.DUPLICATE
    assert guard.begin("e1", "d", now=10.5) is Decision.NEW
    assert len(guard) == 1


def test_memory_is_bounded_oldest_first() -> None:
    guard = ReplayGuard(max_entries=3)
    for i in range(5):
        guard.begin(f"e{i}", "d", now=i)
        guard.commit(f"e{i}", now=i)
    assert len(guard) == 3
    assert guard.begin("e4", "d", now=5) is Decision.DUPLICATE
    assert guard.begin("e0", "d", now=5) is Decision.NEW


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayGuard(retention_s=0)
    with pytest.raises(ValueError, match="positive"):
        ReplayGuard(max_entries=0)
