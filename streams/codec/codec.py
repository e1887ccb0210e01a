"""The codec of one record type: encode to, and decode from, Kafka record values."""

from __future__ import annotations

import io
import struct
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Generic, Protocol, TypeVar

import orjson
from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from streams.codec.compiled import Fallback, compile_decoder, compile_encoder
from streams.codec.convert import from_dict_fn, to_dict_fn
from streams.codec.errors import DecodeError, EncodeError, RegistryUnavailable
from streams.codec.framing import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MAGIC,
    Framings,
    RegistrySchemas,
    WriterSchema,
)
from streams.codec.json_check import compile_checker
from streams.codec.schemas import SchemaInfo, SchemaStore, default_store

T = TypeVar("T")

CONTENT_TYPE = "content-type"
JSON_CONTENT_TYPES = frozenset({"application/json", "application/json; charset=utf-8"})
_FAST_PATH_ERRORS = (Fallback, AttributeError, TypeError, ValueError, IndexError, KeyError)
"""What the compiled fast path raises when it does not handle a value (see ``compiled.py``)."""

Headers = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | str | None] | None


class WireFormat(Protocol):
    """How the Avro body is framed when written; reading recognises every framing."""

    def header(self) -> bytes: ...

    def writer_schema(self, data: bytes) -> WriterSchema:
        """(parsed writer schema, its record name, offset where the body starts)."""
        ...


class SingleObjectFormat:
    """Writes Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body.
    Reads every framing (:class:`~streams.codec.framing.Framings`); Confluent-framed records
    only when given the ``registry``."""

    def __init__(
        self, store: SchemaStore, info: SchemaInfo, registry: RegistrySchemas | None = None
    ) -> None:
        self._framings = Framings(store, registry)
        self._header = SINGLE_OBJECT_MAGIC + info.fingerprint

    def header(self) -> bytes:
        return self._header

    def writer_schema(self, data: bytes) -> WriterSchema:
        return self._framings.writer_schema(data)


class RegistryFormat:
    """Writes the Confluent wire format: ``00`` + 4-byte big-endian schema id + body.

    The schema is registered under ``subject`` (TopicNameStrategy: ``<topic>-value``) on first
    use and its id kept, so there is no registry round trip per record. Reads every framing.
    """

    def __init__(
        self,
        client: Any,
        subject: str,
        info: SchemaInfo,
        *,
        store: SchemaStore | None = None,
        registry: RegistrySchemas | None = None,
    ) -> None:
        self._client = client
        self._subject = subject
        self._info = info
        self._header: bytes | None = None
        self._lock = threading.Lock()
        store = store or default_store()
        self._framings = Framings(store, registry or RegistrySchemas(client, store))

    def header(self) -> bytes:
        if self._header is None:
            from confluent_kafka.schema_registry import Schema

            with self._lock:
                try:
                    schema_id = self._client.register_schema(
                        self._subject, Schema(orjson.dumps(self._info.raw).decode(), "AVRO")
                    )
                except Exception as exc:  # httpx, OS and registry errors alike
                    status = getattr(exc, "http_status_code", None)
                    raise RegistryUnavailable(
                        f"the schema registry did not register {self._info.name} under "
                        f"{self._subject}: "
                        + (f"HTTP {status}" if status is not None else type(exc).__name__)
                    ) from exc
                self._header = struct.pack(">bI", CONFLUENT_MAGIC, schema_id)
        return self._header

    def writer_schema(self, data: bytes) -> WriterSchema:
        return self._framings.writer_schema(data)


def _content_type(headers: Headers) -> str | None:
    if headers is None:
        return None
    items: Iterable[tuple[str, Any]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == CONTENT_TYPE and value is not None:
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return text.strip().lower()
    return None


class Codec(Generic[T]):
    """Encodes and decodes one record type. Thread-safe; cheap per record.

    Avro bodies are written and read by code compiled for the record class
    (:mod:`streams.codec.compiled`) when the record is well typed and the bytes are in canonical
    form (written with the current schema); anything else takes fastavro's path, which encodes,
    decodes or fails exactly as the codec always has. JSON records are checked against the
    schema by generated code (:mod:`streams.codec.json_check`) and by fastavro's ``validate``
    only when that check does not pass them.
    """

    def __init__(self, cls: type[T], info: SchemaInfo, wire: WireFormat) -> None:
        self.cls = cls
        self.info = info
        self._wire = wire
        self._schema = info.parsed
        self._fast_encode = compile_encoder(info.raw, cls)
        self._fast_decode = compile_decoder(info.raw, cls)
        self._surely_valid_json = compile_checker(info.raw)
        self._to_dict = to_dict_fn(cls)
        self._from_dict = from_dict_fn(cls)
        self._defaults = {f["name"]: f["default"] for f in info.raw["fields"] if "default" in f}
        self._required = [f["name"] for f in info.raw["fields"] if "default" not in f]

    # ------------------------------------------------------------------ encode

    def prepare(self) -> None:
        """Do now what the first ``encode`` would (register the schema with the registry), so
        that a registry that does not answer stops a service at start, not mid-stream."""
        self._wire.header()

    def encode(self, obj: T) -> bytes:
        if self._fast_encode is not None:
            try:
                return self._wire.header() + self._fast_encode(obj)
            except _FAST_PATH_ERRORS:
                pass  # fastavro's path decides: it encodes, or says why not
        buf = io.BytesIO()
        buf.write(self._wire.header())
        try:
            schemaless_writer(buf, self._schema, self._to_dict(obj))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise EncodeError(
                f"a {self.info.name} could not be encoded: {type(exc).__name__}"
            ) from exc
        return buf.getvalue()

    def encode_json(self, obj: T) -> bytes:
        """JSON as Air Inc. publishes it (bytes fields are not supported in JSON)."""
        return orjson.dumps(self._to_dict(obj))

    # ------------------------------------------------------------------ decode

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
        if writer is self._schema and self._fast_decode is not None and type(data) is bytes:
            try:
                return self._fast_decode(data, offset)  # type: ignore[no-any-return]
            except _FAST_PATH_ERRORS:
                pass  # fastavro's path decides: it reads the record, or says why not
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
            if self._surely_valid_json is None or not self._surely_valid_json(raw):
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


@cache
def registry_client(url: str) -> Any:
    """One confluent-kafka registry client per URL and process (``mock://`` serves tests)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient.new_client({"url": url})


def codec_for(
    cls: type[T],
    topic: str | None = None,
    *,
    registry_url: str | None = None,
    store: SchemaStore | None = None,
) -> Codec[T]:
    """The codec of ``cls``: Confluent wire format when ``registry_url`` is set (subject
    ``<topic>-value``), Avro single-object encoding otherwise. Cached per arguments."""
    key = (cls, topic, registry_url, id(store))
    cached = _CODECS.get(key)
    if cached is None:
        cached = _CODECS[key] = _build_codec(cls, topic, registry_url, store)
    return cached


_CODECS: dict[tuple[type, str | None, str | None, int], Codec[Any]] = {}


def _build_codec(
    cls: type[T], topic: str | None, registry_url: str | None, store: SchemaStore | None
) -> Codec[T]:
    schemas = store or default_store()
    info = schemas.for_name(cls.__name__)
    wire: WireFormat
    if registry_url:
        if topic is None:
            raise ValueError("the Confluent wire format needs the topic (subject <topic>-value)")
        wire = RegistryFormat(registry_client(registry_url), f"{topic}-value", info, store=schemas)
    else:
        wire = SingleObjectFormat(schemas, info)
    return Codec(cls, info, wire)
