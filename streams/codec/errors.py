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
    INVALID_JSON, MISSING_FIELD, BAD_MAGIC (neither single-object nor Confluent framing), EMPTY.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EncodeError(CodecError):
    code = "ENCODE_ERROR"


class SchemaNotFound(CodecError):
    code = "SCHEMA_NOT_FOUND"
