"""What the generated Avro and JSON code declines to handle, it leaves to fastavro."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from streams.codec import codec_for
from streams.codec.compiled import compile_decoder, compile_encoder
from streams.codec.json_check import compile_checker
from tests.codec.test_codec import ALL

pytestmark = pytest.mark.unit


@dataclass
class Point:
    x: Any
    y: Any = None


def _schema(x: Any, y: Any = "string") -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Point",
        "fields": [{"name": "x", "type": x}, {"name": "y", "type": y}],
    }


@pytest.mark.parametrize(
    "x",
    [
        {"type": "long", "logicalType": "timestamp-millis"},  # fastavro reads a datetime
        {"type": "enum", "name": "E", "symbols": ["A"]},
        "double",
        {"type": "fixed", "name": "F", "size": 2},
        ["null", "string", "long"],
        ["string", "null"],
    ],
    ids=str,
)
def test_schemas_beyond_the_generator_compile_to_none(x: Any) -> None:
    schema = _schema(x)
    assert compile_encoder(schema, Point) is None
    assert compile_decoder(schema, Point) is None
    assert compile_checker(schema) is None


def test_a_dataclass_that_does_not_mirror_its_schema_is_not_compiled() -> None:
    schema = {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "long"}]}
    assert compile_encoder(schema, Point) is None
    assert compile_decoder(schema, Point) is None


def test_every_project_schema_compiles() -> None:
    for cls in ALL:
        codec = codec_for(cls)
        assert compile_encoder(codec.info.raw, cls) is not None, cls
        assert compile_decoder(codec.info.raw, cls) is not None, cls
        assert compile_checker(codec.info.raw) is not None, cls
