"""Encoding of the domain records: Avro (fastavro) with schemas from ``schemas/``, and JSON.

Every service builds one :class:`Codecs` from its settings and the topology and takes each
topic's codec from it (:mod:`streams.codec.codecs`). Wire formats written:
- Avro single-object encoding (``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body) when no
  schema registry is configured; the fingerprint names the writer's schema, so data written with
  an older released schema stays readable through Avro schema resolution;
- Confluent wire format (``00`` + 4-byte schema id + body) when a schema registry URL is
  configured (confluent-kafka's client; ``mock://`` serves tests).
Decoding recognises both framings whatever the process writes (:mod:`streams.codec.framing`),
and JSON (orjson) when the record's ``content-type`` header is ``application/json``: Air Inc.'s
platform teams publish all three. A Confluent record without a configured registry is a
``NO_SCHEMA_REGISTRY`` decode error; a registry that cannot answer raises
:class:`RegistryUnavailable` (retriable, never a dead letter).

Every decoding failure raises :class:`~streams.codec.errors.DecodeError` with a stable ``code``
and a message that never quotes field values (they may be personal data).

Speed: Avro bodies are written and read by Python code generated once per record class
(:mod:`streams.codec.compiled`), JSON records are schema-checked by generated code
(:mod:`streams.codec.json_check`); fastavro's path takes over for anything those do not handle,
so results and errors are those of fastavro. :mod:`streams.codec.state` holds the changelog
formats of the routing worker's state (suppression entries, audit chain heads).
"""

from streams.codec.codec import Codec, RegistryFormat, SingleObjectFormat, codec_for
from streams.codec.codecs import CodecMismatch, Codecs
from streams.codec.errors import CodecError, DecodeError, EncodeError, RegistryUnavailable

__all__ = [
    "Codec",
    "CodecError",
    "CodecMismatch",
    "Codecs",
    "DecodeError",
    "EncodeError",
    "RegistryFormat",
    "RegistryUnavailable",
    "SingleObjectFormat",
    "codec_for",
]
