from __future__ import annotations

import pytest

from streams.codec import codec_for
from streams.deadletter.letters import (
    H_REASON,
    H_REPLAY_OF,
    MAX_REASON_CHARS,
    dead_letter_headers,
    dlq_topic,
    make_dead_letter,
    replay_headers,
    source_of,
)
from streams.domain.records import DeadLetter

pytestmark = pytest.mark.unit


def _letter(reason: str = "bad") -> DeadLetter:
    return make_dead_letter(
        source_topic="air.account-events.v1",
        partition=3,
        offset=42,
        key=b"cust-1",
        value=b"\xff\x00garbage",
        headers=[("content-type", b"application/json"), ("dlq-reason", b"old"), ("x", None)],
        error_type="DECODE_ERROR",
        reason=reason,
        failed_at=5,
    )


def test_keeps_the_original_bytes_and_coordinates() -> None:
    letter = _letter()
    assert letter.original_value == b"\xff\x00garbage"
    assert letter.original_key == b"cust-1"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "air.account-events.v1",
        3,
        42,
    )
    assert codec_for(DeadLetter).decode(codec_for(DeadLetter).encode(letter)) == letter


def test_previous_dead_letter_headers_are_dropped_and_others_kept() -> None:
    assert _letter().original_headers == {"content-type": "application/json", "x": ""}


def test_reason_travels_in_headers_and_is_bounded() -> None:
    headers = dict(dead_letter_headers(_letter("r" * 5000)))
    assert len(headers[H_REASON]) == MAX_REASON_CHARS
    assert headers["dlq-source-offset"] == b"42"
    assert headers["dlq-error-type"] == b"DECODE_ERROR"


def test_replay_headers_restore_originals_and_name_the_letter() -> None:
    headers = dict(replay_headers(_letter(), "air.account-events.v1.dlq", 0, 9))
    assert headers["content-type"] == b"application/json"
    assert headers[H_REPLAY_OF] == b"air.account-events.v1.dlq/0/9"


def test_topic_names() -> None:
    assert dlq_topic("a.v1") == "a.v1.dlq"
    assert source_of("a.v1.dlq") == "a.v1"
    with pytest.raises(ValueError, match="not a dead-letter topic"):
        source_of("a.v1")
