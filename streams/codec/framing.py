"""Recognising how a record value is framed, whatever the project itself writes.

A platform team may publish with the project's codec (Avro single-object encoding), with a
Confluent serializer (Java ``KafkaAvroSerializer``, confluent-kafka's ``AvroSerializer``: magic
byte 0 + 4-byte schema id), or as JSON with a ``content-type`` header (handled by the codec
before framing is looked at). :class:`Framings` tells the Avro framings apart by their first
bytes and finds the writer's schema:

- ``C3 01`` + 8-byte CRC-64-AVRO fingerprint: the project's current or released schemas;
- ``00`` + schema id: the schema registry's Confluent-compatible API (``GET /schemas/ids/{id}``)
  through :class:`RegistrySchemas`, which keeps the schemas it has resolved (a small LRU), so
  there is one registry round trip per schema id, not per record.

Failures say which party is at fault. A record that cannot be read is a
:class:`~streams.codec.errors.DecodeError` (dead-letter it: ``BAD_MAGIC``, ``UNKNOWN_SCHEMA``,
``NO_SCHEMA_REGISTRY``); a registry that cannot answer is
:class:`~streams.codec.errors.RegistryUnavailable` (retriable: the record is fine).
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from typing import Any

import orjson
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from streams.codec.errors import DecodeError, RegistryUnavailable
from streams.codec.schemas import SchemaStore

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0
NOT_FOUND = 404

WriterSchema = tuple[Any, str, int]
"""(parsed writer schema, its short record name, offset where the Avro body starts)."""


class RegistrySchemas:
    """Writer schemas by Confluent schema id, resolved through a registry client and cached.

    A schema whose parsing canonical form is one of the project's (current or released) is
    answered with the project's parsed schema, so records written by a Confluent serializer
    with the project's schema take the codec's compiled fast path like its own records.
    """

    def __init__(self, client: Any, store: SchemaStore, *, capacity: int = 256) -> None:
        self._client = client
        self._store = store
        self._capacity = capacity
        self._by_id: OrderedDict[int, tuple[Any, str]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self._client

    def writer(self, schema_id: int) -> tuple[Any, str]:
        with self._lock:
            cached = self._by_id.get(schema_id)
            if cached is not None:
                self._by_id.move_to_end(schema_id)
                return cached
        resolved = self._resolve(schema_id)
        with self._lock:
            self._by_id[schema_id] = resolved
            while len(self._by_id) > self._capacity:
                self._by_id.popitem(last=False)
        return resolved

    def _resolve(self, schema_id: int) -> tuple[Any, str]:
        try:
            schema = self._client.get_schema(schema_id)
        except Exception as exc:  # the client raises httpx, OS and registry errors
            if getattr(exc, "http_status_code", None) == NOT_FOUND:
                raise DecodeError(
                    "UNKNOWN_SCHEMA", f"schema id {schema_id} is not known to the registry"
                ) from exc
            raise RegistryUnavailable(
                f"the schema registry could not resolve schema id {schema_id}: "
                f"{_failure(exc)}; the record is kept and read again once it answers"
            ) from exc
        if (getattr(schema, "schema_type", None) or "AVRO") != "AVRO":
            raise DecodeError(
                "UNKNOWN_SCHEMA",
                f"schema id {schema_id} is a {schema.schema_type} schema, not Avro",
            )
        try:
            raw = orjson.loads(schema.schema_str)
            parsed = parse_schema(raw)
        except Exception as exc:  # fastavro raises several types for an unusable schema
            raise DecodeError(
                "UNKNOWN_SCHEMA",
                f"schema id {schema_id} is not a usable Avro schema ({type(exc).__name__})",
            ) from exc
        canonical = to_parsing_canonical_form(parsed)
        fp = struct.pack("<Q", int(fingerprint(canonical, "CRC-64-AVRO"), 16))
        known = self._store.by_fingerprint.get(fp)
        if known is not None:
            return known.parsed, known.name
        name = raw.get("name", "") if isinstance(raw, dict) else ""
        return parsed, str(name).rsplit(".", 1)[-1]


def _failure(exc: Exception) -> str:
    status = getattr(exc, "http_status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return type(exc).__name__


class Framings:
    """Finds the writer schema of an Avro record in any framing the project reads."""

    def __init__(self, store: SchemaStore, registry: RegistrySchemas | None = None) -> None:
        self.store = store
        self.registry = registry

    def writer_schema(self, data: bytes) -> WriterSchema:
        if data[:2] == SINGLE_OBJECT_MAGIC and len(data) >= 10:
            writer = self.store.by_fingerprint.get(data[2:10])
            if writer is None:
                raise DecodeError(
                    "UNKNOWN_SCHEMA",
                    f"record written with an unknown schema (fingerprint {data[2:10].hex()}); "
                    "it is neither a current nor a released schema of this project",
                )
            return writer.parsed, writer.name, 10
        if data[0] == CONFLUENT_MAGIC and len(data) >= 5:
            schema_id = struct.unpack(">I", data[1:5])[0]
            if self.registry is None:
                raise DecodeError(
                    "NO_SCHEMA_REGISTRY",
                    f"a Confluent wire-format record (schema id {schema_id}) but no schema "
                    "registry is configured: set KAFKA_SCHEMA_REGISTRY_URL",
                )
            parsed, name = self.registry.writer(schema_id)
            return parsed, name, 5
        raise DecodeError(
            "BAD_MAGIC",
            "neither Avro single-object encoding (C3 01) nor the Confluent wire format "
            "(magic byte 0); was it written as JSON without a content-type header?",
        )
