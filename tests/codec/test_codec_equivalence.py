"""The codec's compiled fast path writes and reads exactly what the codec as first written did.

The oracle is ``benchmarks/baseline/codec.py`` (fastavro ``schemaless_writer``/``reader``
through dicts, fastavro ``validate`` on JSON). Equal means: the same bytes when encoding; when
decoding, the same record (compared by ``repr``, so map order too) or the same error (code and
message). Inputs: generated records of every type, records with a field of the wrong type,
valid encodings with bytes changed, inserted or cut, and JSON objects with fields changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.baseline.codec import BaselineCodec
from streams.codec import CodecError, codec_for
from streams.codec.json_check import compile_checker
from tests.codec.strategies import records
from tests.codec.test_codec import ALL, JSON_HEADERS

pytestmark = pytest.mark.unit

SOME = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
ODD_VALUES = [None, 0, -1, 2**63, -(2**63) - 1, 1.5, True, "", "text", b"raw", [], {}, ["x"]]


def outcome(action: Any) -> Any:
    """What ``action()`` gave: ``repr`` of the result, or the error's type, code and message."""
    try:
        return ("ok", repr(action()))
    except CodecError as exc:
        return ("error", type(exc).__name__, getattr(exc, "code", None), str(exc))
    except Exception as exc:  # noqa: BLE001 - any other failure must match too
        return ("raised", type(exc).__name__)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_fast_codec_writes_and_reads_as_first_written(cls: type) -> None:
    fast, first = codec_for(cls), BaselineCodec.for_class(cls)
    assert fast._fast_encode is not None  # every project schema compiles
    assert fast._fast_decode is not None

    @SOME
    @given(records(cls))
    def run(obj: Any) -> None:
        data = first.encode(obj)
        assert fast.encode(obj) == data
        assert outcome(lambda: fast.decode(data)) == outcome(lambda: first.decode(data))

    run()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_ill_typed_records_encode_or_fail_as_first_written(cls: type) -> None:
    fast, first = codec_for(cls), BaselineCodec.for_class(cls)
    names = [f.name for f in dataclasses.fields(cls)]

    @SOME
    @given(records(cls), st.sampled_from(names), st.sampled_from(ODD_VALUES))
    def run(obj: Any, name: str, odd: Any) -> None:
        broken = dataclasses.replace(obj, **{name: odd})
        assert outcome(lambda: fast.encode(broken)) == outcome(lambda: first.encode(broken))

    run()


@st.composite
def damaged(draw: st.DrawFn, encoded: bytes) -> bytes:
    """``encoded`` (header kept) with a byte changed, inserted or removed, or cut short."""
    body = bytearray(encoded)
    where = draw(st.integers(10, max(10, len(body) - 1)))
    how = draw(st.sampled_from(["change", "insert", "delete", "cut", "append"]))
    if how == "change" and where < len(body):
        body[where] = draw(st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x04, 0x7F, 0x80, 0xFF]))
    elif how == "insert":
        body.insert(where, draw(st.integers(0, 255)))
    elif how == "delete" and where < len(body):
        del body[where]
    elif how == "cut":
        del body[where:]
    else:
        body += draw(st.binary(min_size=1, max_size=3))
    return bytes(body)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_damaged_bytes_decode_or_fail_as_first_written(cls: type) -> None:
    fast, first = codec_for(cls), BaselineCodec.for_class(cls)

    @SOME
    @given(records(cls), st.data())
    def run(obj: Any, data: st.DataObject) -> None:
        raw = data.draw(damaged(first.encode(obj)))
        assert outcome(lambda: fast.decode(raw)) == outcome(lambda: first.decode(raw))

    run()


JSON_SHAPES = [None, 1, -(2**63), 2**63, 1.5, True, False, "x", [], ["x"], [1], {}, {"k": 1}]
"""Values of every JSON shape, right for some fields and wrong for others."""
FEW = settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def variants(raw: dict[str, Any], cls_name: str) -> list[dict[str, Any]]:
    """``raw`` with each field in turn set to each shape or dropped, a nested field changed,
    an extra field, and fastavro's ``-type`` key."""
    out = [raw, {**raw, "unexpected": 1}, {**raw, "-type": "x"}]
    out.append({**raw, "-type": f"com.airinc.exstream.v1.{cls_name}"})
    for name, value in raw.items():
        out.append({k: v for k, v in raw.items() if k != name})
        out += [{**raw, name: shape} for shape in JSON_SHAPES]
        if isinstance(value, dict) and value:
            inner = next(iter(value))
            out += [{**raw, name: {**value, inner: shape}} for shape in JSON_SHAPES]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            inner = next(iter(value[0]))
            out += [{**raw, name: [{**value[0], inner: shape}]} for shape in JSON_SHAPES]
    return out


@pytest.mark.parametrize("cls", [c for c in ALL if c.__name__ != "DeadLetter"], ids=str)
def test_json_records_decode_or_fail_as_first_written(cls: type) -> None:
    fast, first = codec_for(cls), BaselineCodec.for_class(cls)

    @FEW
    @given(records(cls))
    def run(obj: Any) -> None:
        for raw in variants(orjson.loads(fast.encode_json(obj)), cls.__name__):
            text = orjson.dumps(raw)
            assert outcome(lambda t=text: fast.decode(t, JSON_HEADERS)) == outcome(
                lambda t=text: first.decode(t, JSON_HEADERS)
            )

    run()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_quick_json_check_passes_only_what_fastavro_passes(cls: type) -> None:
    info = codec_for(cls).info
    check = compile_checker(info.raw)
    assert check is not None
    passed = 0

    @FEW
    @given(records(cls))
    def run(obj: Any) -> None:
        nonlocal passed
        raw = orjson.loads(orjson.dumps(obj, default=_bytes_as_text))
        for variant in variants(raw, cls.__name__):
            if check(variant):
                passed += 1
                assert validate(variant, info.parsed, raise_errors=False)

    run()
    assert passed > 0


def _bytes_as_text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(type(value).__name__)
