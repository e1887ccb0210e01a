from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codec import DecodeError, codec_for
from streams.codec.codec import Codec, SingleObjectFormat
from streams.codec.schemas import SchemaStore, schemas_dir
from streams.domain import records as R  # noqa: N812 - short alias for many record types
from tests.codec.strategies import records

pytestmark = pytest.mark.unit

ALL = [
    R.AccountEvent,
    R.CaseEvent,
    R.Preference,
    R.CommRule,
    R.DocumentRequest,
    R.TemplateVersion,
    R.DeliveryEvent,
    R.CompositionCommand,
    R.AlignmentAlert,
    R.CommunicationStatus,
    R.DocumentMetadata,
    R.AuditRecord,
    R.DeadLetter,
    R.Submission,
]
JSON_HEADERS = [("content-type", b"application/json")]
FAST = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_record_has_a_schema_with_the_same_fields(cls: type) -> None:
    import dataclasses

    codec = codec_for(cls)
    schema_fields = [f["name"] for f in codec.info.raw["fields"]]
    assert schema_fields == [f.name for f in dataclasses.fields(cls)]
    assert all(f.get("doc") for f in codec.info.raw["fields"]), "every field is documented"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_single_object_round_trip(cls: type) -> None:
    codec = codec_for(cls)

    @FAST
    @given(records(cls))
    def run(obj: Any) -> None:
        data = codec.encode(obj)
        assert data[:2] == b"\xc3\x01"
        assert codec.decode(data) == obj

    run()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_registry_wire_format_round_trip(cls: type) -> None:
    codec = codec_for(cls, f"topic.{cls.__name__}", registry_url="mock://codec-tests")

    @FAST
    @given(records(cls))
    def run(obj: Any) -> None:
        data = codec.encode(obj)
        assert data[0] == 0
        assert codec.decode(data) == obj

    run()


@pytest.mark.parametrize("cls", [c for c in ALL if c is not R.DeadLetter], ids=lambda c: c.__name__)
def test_json_round_trip(cls: type) -> None:
    codec = codec_for(cls)

    @FAST
    @given(records(cls))
    def run(obj: Any) -> None:
        assert codec.decode(codec.encode_json(obj), JSON_HEADERS) == obj

    run()


@FAST
@given(st.binary(max_size=200))
def test_garbage_raises_one_typed_error(data: bytes) -> None:
    codec = codec_for(R.CompositionCommand)
    with pytest.raises(DecodeError) as err:
        codec.decode(data)
    assert err.value.code in {
        "EMPTY",
        "BAD_MAGIC",
        "UNKNOWN_SCHEMA",
        "DECODE_ERROR",
        "NO_SCHEMA_REGISTRY",
    }


@FAST
@given(records(R.Preference), st.data())
def test_truncated_or_extended_records_are_rejected(obj: R.Preference, data: st.DataObject) -> None:
    codec = codec_for(R.Preference)
    encoded = codec.encode(obj)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(DecodeError):
        codec.decode(encoded[:cut])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(encoded + b"\x00")


@FAST
@given(st.binary(max_size=100))
def test_json_garbage_raises_typed_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        codec_for(R.AccountEvent).decode(data or b"x", JSON_HEADERS)


def test_record_of_another_type_is_a_schema_mismatch() -> None:
    pref = R.Preference(customer_id="c", language="en", updated_at=1)
    data = codec_for(R.Preference).encode(pref)
    with pytest.raises(DecodeError) as err:
        codec_for(R.AccountEvent).decode(data)
    assert err.value.code == "SCHEMA_MISMATCH"


def test_unknown_fingerprint_is_reported() -> None:
    data = b"\xc3\x01" + b"\x01" * 8 + b"\x00"
    with pytest.raises(DecodeError) as err:
        codec_for(R.AccountEvent).decode(data)
    assert err.value.code == "UNKNOWN_SCHEMA"


def test_json_missing_required_field_names_the_field_not_values() -> None:
    body = orjson.dumps({"event_id": "e", "customer_id": "secret@example.com"})
    with pytest.raises(DecodeError) as err:
        codec_for(R.AccountEvent).decode(body, JSON_HEADERS)
    assert err.value.code == "MISSING_FIELD"
    assert "event_type" in str(err.value)
    assert "secret@example.com" not in str(err.value)


def test_json_wrong_type_is_a_schema_mismatch_without_values() -> None:
    body = orjson.dumps(
        {
            "event_id": "e",
            "event_type": "BILLING_CYCLE_CLOSED",
            "customer_id": "c",
            "account_id": "a",
            "occurred_at": "not-a-number-secret",
        }
    )
    with pytest.raises(DecodeError) as err:
        codec_for(R.AccountEvent).decode(body, {"Content-Type": "application/json"})
    assert err.value.code == "SCHEMA_MISMATCH"
    assert "occurred_at" in str(err.value)
    assert "secret" not in str(err.value)


def test_avro_is_decoded_when_the_header_says_avro() -> None:
    ev = R.AccountEvent(
        event_id="e", event_type="T", customer_id="c", account_id="a", occurred_at=1
    )
    codec = codec_for(R.AccountEvent)
    assert codec.decode(codec.encode(ev), [("content-type", b"avro/binary")]) == ev


def test_data_written_with_an_older_schema_is_read_with_the_new_one(tmp_path: Path) -> None:
    """Evolution: v1 lacked `segment`; the current reader fills its default."""
    root = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), root)
    old = json.loads((root / "account_event.avsc").read_text())
    old["fields"] = [f for f in old["fields"] if f["name"] != "segment"]
    (root / "released" / "0").mkdir(parents=True)
    (root / "released" / "0" / "account_event.avsc").write_text(json.dumps(old))
    store = SchemaStore(root)
    old_info = next(i for i in store.by_fingerprint.values() if i.path.parent.name == "0")

    import io

    from fastavro import schemaless_writer

    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + old_info.fingerprint)
    schemaless_writer(
        buf,
        old_info.parsed,
        {
            "event_id": "e1",
            "event_type": "POLICY_RENEWED",
            "customer_id": "c1",
            "account_id": "a1",
            "occurred_at": 5,
            "attributes": {"policy_number": "P-1"},
        },
    )
    codec = Codec(
        R.AccountEvent,
        store.for_name("AccountEvent"),
        SingleObjectFormat(store, store.for_name("AccountEvent")),
    )
    ev = codec.decode(buf.getvalue())
    assert ev.segment is None
    assert ev.attributes == {"policy_number": "P-1"}


def test_registry_unknown_schema_id_is_reported() -> None:
    codec = codec_for(R.AccountEvent, "t", registry_url="mock://codec-tests")
    with pytest.raises(DecodeError) as err:
        codec.decode(struct.pack(">bI", 0, 987654) + b"\x00")
    assert err.value.code == "UNKNOWN_SCHEMA"
