"""Building dead-letter records and their headers: pure functions, no I/O.

Every rejected input record becomes one :class:`DeadLetter` on ``<source topic>.dlq``, keyed like
the original, carrying the original key, value and headers byte for byte, the source coordinates
(topic, partition, offset) and the reason. The reason also travels in the Kafka headers below so
that tools can filter without decoding the value.

Size bound: a dead letter must be writable wherever its original could be read. Kafka producers
refuse requests over about 1 MB by default (aiokafka's ``max_request_size`` is 1,048,576
bytes, the broker's limits ~1 MiB), and a letter is its original plus an envelope,
written keyed like the original (the key once more). So an original whose key, value and headers
come to more than :data:`MAX_COPIED_BYTES` is not copied whole: its value is left out (then its
headers, then its key, while still too large). The letter then says so, for a person in the reason
and for a machine in ``original_headers[H_OMITTED]`` (what was left out, its size and SHA-256); its
source coordinates still point at the original on the source topic. ``dlq replay`` refuses such a
letter instead of re-publishing a record without its value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

from streams.domain.records import DeadLetter

DLQ_SUFFIX = ".dlq"

H_REASON = "dlq-reason"
H_ERROR_TYPE = "dlq-error-type"
H_SOURCE_TOPIC = "dlq-source-topic"
H_SOURCE_PARTITION = "dlq-source-partition"
H_SOURCE_OFFSET = "dlq-source-offset"
H_REPLAY_OF = "dlq-replay-of"
"""Set on a record re-published by ``dlq replay``: ``<dlq topic>/<partition>/<offset>``."""

H_OMITTED = "dlq-omitted"
"""In ``original_headers`` of a letter that could not hold its whole original: what was left out
(``value``, ``headers``, ``key``: size and SHA-256 each). Never an original's own header: those
starting with ``dlq-`` are not copied."""

MAX_REASON_CHARS = 1000
MAX_COPIED_BYTES = 980_000
"""The most bytes of an original (twice its key, its value, its headers) a letter copies; the
margin below 1,000,000 leaves room for the envelope, the reason and the letter's own headers."""


def dlq_topic(source_topic: str) -> str:
    return source_topic + DLQ_SUFFIX


def source_of(dlq: str) -> str:
    if not dlq.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq!r} is not a dead-letter topic (no {DLQ_SUFFIX!r} suffix)")
    return dlq[: -len(DLQ_SUFFIX)]


def _text_headers(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers:
        if key.startswith("dlq-"):
            continue  # a replayed record's old dead-letter headers are not its own
        out[key] = "" if value is None else value.decode("utf-8", "backslashreplace")
    return out


def _copied_size(key: bytes | None, value: bytes | None, headers: dict[str, str]) -> int:
    header_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
    return 2 * len(key or b"") + len(value or b"") + header_bytes


def _fingerprint(what: str, raw: bytes) -> str:
    return f"{what} {len(raw)} bytes sha256 {hashlib.sha256(raw).hexdigest()}"


class ConsumedRecord(Protocol):
    """A record read from Kafka (aiokafka's ``ConsumerRecord``, the engine's ``Record``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Any: ...


def dead_letter_of(
    record: ConsumedRecord, *, error_type: str, reason: str, failed_at: int
) -> DeadLetter:
    """The dead letter for ``record``, rejected from the topic it was read from (see
    :func:`make_dead_letter`)."""
    return make_dead_letter(
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or ()),
        error_type=error_type,
        reason=reason,
        failed_at=failed_at,
    )


def make_dead_letter(
    *,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    error_type: str,
    reason: str,
    failed_at: int,
) -> DeadLetter:
    """The dead letter for one rejected record. ``reason`` must not contain personal data.

    The original is copied byte for byte unless it is larger than :data:`MAX_COPIED_BYTES` (see
    the module docstring): then the parts left out are named in the reason and in
    ``original_headers[H_OMITTED]``."""
    kept = _text_headers(headers)
    omitted: list[str] = []
    if _copied_size(key, value, kept) > MAX_COPIED_BYTES and value is not None:
        omitted.append(_fingerprint("value", value))
        value = None
    if _copied_size(key, value, kept) > MAX_COPIED_BYTES:
        omitted.append(f"headers {len(kept)}")
        kept = {}
    if _copied_size(key, value, kept) > MAX_COPIED_BYTES and key is not None:
        omitted.append(_fingerprint("key", key))
        key = None
    if omitted:
        what = "; ".join(omitted)
        note = (
            f" [original too large to copy into a dead letter (over {MAX_COPIED_BYTES} bytes): "
            f"{what}; it stays at {source_topic}/{partition}/{offset}]"
        )
        reason = reason[: max(0, MAX_REASON_CHARS - len(note))] + note
        kept[H_OMITTED] = what
    return DeadLetter(
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason[:MAX_REASON_CHARS],
        error_type=error_type,
        original_key=key,
        original_value=value,
        original_headers=kept,
        failed_at=failed_at,
    )


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    return [
        (H_REASON, letter.reason.encode()),
        (H_ERROR_TYPE, letter.error_type.encode()),
        (H_SOURCE_TOPIC, letter.source_topic.encode()),
        (H_SOURCE_PARTITION, str(letter.source_partition).encode()),
        (H_SOURCE_OFFSET, str(letter.source_offset).encode()),
    ]


def replay_headers(
    letter: DeadLetter, dlq: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers for re-publishing ``letter``'s original record to its source topic."""
    headers = [
        (k, v.encode()) for k, v in letter.original_headers.items() if not k.startswith("dlq-")
    ]
    headers.append((H_REPLAY_OF, f"{dlq}/{partition}/{offset}".encode()))
    return headers
