"""Codec errors. Messages name schemas and fields, never field values."""

from __future__ import annotations

from streams.errors import AirExstreamError


class CodecError(AirExstreamError):
    """A record could not be encoded or decoded."""

    code = "CODEC_ERROR"


class DecodeError(CodecError):
    """Bytes that are not a valid record of the expected type.

    ``code`` is stable for machines: DECODE_ERROR (corrupt or truncated body), UNKNOWN_SCHEMA
    (fingerprint or schema id not known), SCHEMA_MISMATCH (a valid record of another type),
    INVALID_JSON, MISSING_FIELD, BAD_MAGIC (neither single-object nor Confluent framing), EMPTY,
    NO_SCHEMA_REGISTRY (a Confluent wire-format record where no registry is configured).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EncodeError(CodecError):
    code = "ENCODE_ERROR"


class SchemaNotFound(CodecError):
    code = "SCHEMA_NOT_FOUND"


class RegistryUnavailable(AirExstreamError):
    """The schema registry could not answer (unreachable, timing out, 5xx, refusing the
    credentials). Not a :class:`CodecError`: the record is not at fault, so it must not be
    dead-lettered; the consumer waits and tries again (or stops for its supervisor)."""

    retriable = True
