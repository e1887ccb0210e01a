"""The codec's per-record path as first written: dataclass -> dict -> fastavro
``schemaless_writer`` (and back through ``schemaless_reader``), JSON validated by fastavro."""

from __future__ import annotations

import dataclasses
import io
import types
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson
from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from streams.codec.codec import Headers, SingleObjectFormat, WireFormat, _content_type
from streams.codec.errors import DecodeError, EncodeError
from streams.codec.schemas import SchemaInfo, default_store

T = TypeVar("T")

ToDict = Callable[[Any], dict[str, Any]]
FromDict = Callable[[dict[str, Any]], Any]


def _nested_class(tp: Any) -> tuple[type | None, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _nested_class(inner[0]) if len(inner) == 1 else (None, False)
    if origin is list:
        cls, _ = _nested_class(typing.get_args(tp)[0])
        return cls, cls is not None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp, False
    return None, False


_TO_DICT: dict[type, ToDict] = {}
_FROM_DICT: dict[type, FromDict] = {}


def to_dict_fn(cls: type) -> ToDict:
    fn = _TO_DICT.get(cls)
    if fn is None:
        fn = _TO_DICT[cls] = _compile_to_dict(cls)
    return fn


def from_dict_fn(cls: type) -> FromDict:
    fn = _FROM_DICT.get(cls)
    if fn is None:
        fn = _FROM_DICT[cls] = _compile_from_dict(cls)
    return fn


def _compile_to_dict(cls: type) -> ToDict:
    hints = typing.get_type_hints(cls)
    plain: list[str] = []
    nested: list[tuple[str, ToDict, bool]] = []
    for f in dataclasses.fields(cls):
        inner, is_list = _nested_class(hints[f.name])
        if inner is None:
            plain.append(f.name)
        else:
            nested.append((f.name, to_dict_fn(inner), is_list))

    def convert(obj: Any) -> dict[str, Any]:
        out = {name: getattr(obj, name) for name in plain}
        for name, fn, is_list in nested:
            value = getattr(obj, name)
            if value is None:
                out[name] = None
            elif is_list:
                out[name] = [fn(v) for v in value]
            else:
                out[name] = fn(value)
        return out

    return convert


def _compile_from_dict(cls: type) -> FromDict:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    nested: list[tuple[str, FromDict, bool]] = []
    for f in dataclasses.fields(cls):
        inner, is_list = _nested_class(hints[f.name])
        if inner is not None:
            nested.append((f.name, from_dict_fn(inner), is_list))

    def convert(data: dict[str, Any]) -> Any:
        kwargs = {name: data[name] for name in names if name in data}
        for name, fn, is_list in nested:
            value = kwargs.get(name)
            if value is None:
                continue
            kwargs[name] = [fn(v) for v in value] if is_list else fn(value)
        return cls(**kwargs)

    return convert


class BaselineCodec(Generic[T]):
    """``streams.codec.Codec`` as first written (single-object encoding only)."""

    def __init__(self, cls: type[T], info: SchemaInfo, wire: WireFormat) -> None:
        self.cls = cls
        self.info = info
        self._wire = wire
        self._schema = info.parsed
        self._to_dict = to_dict_fn(cls)
        self._from_dict = from_dict_fn(cls)
        self._defaults = {f["name"]: f["default"] for f in info.raw["fields"] if "default" in f}
        self._required = [f["name"] for f in info.raw["fields"] if "default" not in f]

    @classmethod
    def for_class(cls, record_cls: type[T]) -> BaselineCodec[T]:
        store = default_store()
        info = store.for_name(record_cls.__name__)
        return cls(record_cls, info, SingleObjectFormat(store, info))

    def encode(self, obj: T) -> bytes:
        buf = io.BytesIO()
        buf.write(self._wire.header())
        try:
            schemaless_writer(buf, self._schema, self._to_dict(obj))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EncodeError(
                f"a {self.info.name} could not be encoded: {type(exc).__name__}"
            ) from exc
        return buf.getvalue()

    def decode(self, data: bytes | None, headers: Headers = None) -> T:
        if not data:
            raise DecodeError("EMPTY", f"empty value where a {self.info.name} was expected")
        content_type = _content_type(headers)
        if content_type is not None and content_type.startswith("application/json"):
            return self.decode_json(data)
        writer, writer_name, offset = self._wire.writer_schema(data)
        if writer_name != self.info.name:
            raise DecodeError(
                "SCHEMA_MISMATCH",
                f"record is a {writer_name or 'unnamed record'}, expected a {self.info.name}",
            )
        buf = io.BytesIO(data)
        buf.seek(offset)
        try:
            if writer is self._schema:
                raw = schemaless_reader(buf, writer, None)
            else:
                raw = schemaless_reader(buf, writer, self._schema)
        except Exception as exc:
            raise DecodeError(
                "DECODE_ERROR",
                f"corrupt or truncated {self.info.name} body ({type(exc).__name__})",
            ) from exc
        if buf.tell() != len(data):
            raise DecodeError(
                "DECODE_ERROR",
                f"{len(data) - buf.tell()} unexpected trailing bytes after a {self.info.name}",
            )
        if not isinstance(raw, dict):
            raise DecodeError("DECODE_ERROR", f"{self.info.name} body is not a record")
        try:
            return self._from_dict(raw)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            raise DecodeError(
                "DECODE_ERROR", f"decoded {self.info.name} is not valid: {type(exc).__name__}"
            ) from exc

    def decode_json(self, data: bytes) -> T:
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(
                "INVALID_JSON", f"value is not valid JSON (at character {exc.pos})"
            ) from None
        if not isinstance(raw, dict):
            raise DecodeError(
                "INVALID_JSON",
                f"a {self.info.name} must be a JSON object, got {type(raw).__name__}",
            )
        for name in self._required:
            if name not in raw or raw[name] is None:
                raise DecodeError(
                    "MISSING_FIELD", f"required field {name!r} of {self.info.name} is missing"
                )
        for name, default in self._defaults.items():
            if name not in raw:
                raw[name] = default() if callable(default) else _copy_default(default)
        try:
            validate(raw, self._schema, raise_errors=True)
        except ValidationError as exc:
            fields = sorted({str(e.field) for e in exc.errors if getattr(e, "field", None)})
            where = ", ".join(f.rsplit(".", 1)[-1] for f in fields) or "unknown field"
            raise DecodeError(
                "SCHEMA_MISMATCH",
                f"JSON {self.info.name} does not match its schema at: {where}",
            ) from None
        try:
            return self._from_dict(raw)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            raise DecodeError(
                "SCHEMA_MISMATCH", f"JSON {self.info.name} is not valid: {type(exc).__name__}"
            ) from None


def _copy_default(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
