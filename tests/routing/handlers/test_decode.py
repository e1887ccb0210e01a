"""The one decoding step of every handler: decode, or dead-letter with the codec's code."""

from __future__ import annotations

import pytest

from streams.codec import RegistryUnavailable, codec_for
from streams.domain.records import AccountEvent
from streams.routing.handlers.decode import decode_or_dead_letter, key_mismatch, key_text
from tests.domain.factories import billing_event
from tests.routing.handlers.fakes import Outputs, Record

pytestmark = pytest.mark.unit

codec = codec_for(AccountEvent)


def record(value: bytes | None, headers: object = None) -> Record:
    return Record(topic="t", partition=0, offset=3, key=b"k", value=value, headers=headers)


async def test_a_record_that_decodes_is_returned_and_nothing_is_dead_lettered() -> None:
    outputs = Outputs()
    event = billing_event()
    decoded = await decode_or_dead_letter(
        codec.decode, record(codec.encode(event)), outputs.dead_letter, wait_s=1.0
    )
    assert decoded == event
    assert outputs.sent == []


async def test_json_is_read_by_its_content_type_header() -> None:
    outputs = Outputs()
    event = billing_event()
    headers = [("content-type", b"application/json")]
    decoded = await decode_or_dead_letter(
        codec.decode, record(codec.encode_json(event), headers), outputs.dead_letter, wait_s=1.0
    )
    assert decoded == event


@pytest.mark.parametrize(
    ("value", "code"),
    [(b"not avro", "BAD_MAGIC"), (None, "EMPTY"), (b"", "EMPTY")],
)
async def test_a_record_that_does_not_decode_is_dead_lettered_with_the_codec_code(
    value: bytes | None, code: str
) -> None:
    outputs = Outputs()
    decoded = await decode_or_dead_letter(
        codec.decode, record(value), outputs.dead_letter, wait_s=1.0
    )
    assert decoded is None
    [(offset, error_type, reason)] = outputs.of("dead_letter")
    assert (offset, error_type) == (3, code)
    assert reason


async def test_a_registry_that_does_not_answer_is_waited_for_not_dead_lettered() -> None:
    outputs = Outputs()
    event = billing_event()
    calls = 0

    def decode(data: bytes | None, headers: object = None) -> AccountEvent:
        nonlocal calls
        calls += 1
        if calls <= 2:  # the first try, and the first try again at once
            raise RegistryUnavailable("the schema registry did not answer")
        return codec.decode(data, headers)

    decoded = await decode_or_dead_letter(
        decode, record(codec.encode(event)), outputs.dead_letter, wait_s=5.0
    )
    assert (decoded, calls) == (event, 3)
    assert outputs.sent == []


def test_key_reasons_name_the_key_and_the_fix() -> None:
    assert key_text(None) is None
    assert key_text(b"cust-\xff") == "cust-\ufffd"
    reason = key_mismatch(b"cust-2", "cust-1")
    assert "'cust-2'" in reason
    assert "'cust-1'" in reason
    assert "key each record by its customer_id" in reason
