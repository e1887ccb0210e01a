"""Building dead-letter records and their headers: pure functions, no I/O.

Every rejected input record becomes one :class:`DeadLetter` on ``<source topic>.dlq``, keyed like
the original, carrying the original key, value and headers byte for byte, the source coordinates
(topic, partition, offset) and the reason. The reason also travels in the Kafka headers below so
that tools can filter without decoding the value.
"""

from __future__ import annotations

from collections.abc import Iterable

from streams.domain.records import DeadLetter

DLQ_SUFFIX = ".dlq"

H_REASON = "dlq-reason"
H_ERROR_TYPE = "dlq-error-type"
H_SOURCE_TOPIC = "dlq-source-topic"
H_SOURCE_PARTITION = "dlq-source-partition"
H_SOURCE_OFFSET = "dlq-source-offset"
H_REPLAY_OF = "dlq-replay-of"
"""Set on a record re-published by ``dlq replay``: ``<dlq topic>/<partition>/<offset>``."""

MAX_REASON_CHARS = 1000


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
    """The dead letter for one rejected record. ``reason`` must not contain personal data."""
    return DeadLetter(
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason[:MAX_REASON_CHARS],
        error_type=error_type,
        original_key=key,
        original_value=value,
        original_headers=_text_headers(headers),
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
    headers = [(k, v.encode()) for k, v in letter.original_headers.items()]
    headers.append((H_REPLAY_OF, f"{dlq}/{partition}/{offset}".encode()))
    return headers
