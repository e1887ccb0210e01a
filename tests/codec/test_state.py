"""Changelog values of the routing state: the worker's format, byte for byte, both ways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.baseline.state import dump_head, dump_suppression, load_head, load_suppression
from streams.audit.chain import GENESIS, ChainHead
from streams.codec.errors import DecodeError
from streams.codec.state import (
    decode_chain_head,
    decode_suppression,
    encode_chain_head,
    encode_suppression,
)
from streams.domain.suppression import SuppressionEntry
from tests.codec.strategies import LONG, TEXT, records

pytestmark = pytest.mark.unit

states = st.dictionaries(TEXT, records(SuppressionEntry), max_size=5)


@given(states)
def test_suppression_round_trip_in_the_workers_format(state: dict[str, SuppressionEntry]) -> None:
    raw = encode_suppression(state)
    assert raw == dump_suppression(state)
    decoded = decode_suppression(raw)
    assert decoded == state
    assert list(decoded) == list(state)
    assert load_suppression(raw) == decoded


@given(st.builds(ChainHead, seq=LONG, hash=TEXT))
def test_chain_head_round_trip_in_the_workers_format(head: ChainHead) -> None:
    raw = encode_chain_head(head)
    assert raw == dump_head(head)
    assert decode_chain_head(raw) == head == load_head(raw)


def test_missing_values_are_empty_state() -> None:
    assert decode_suppression(None) == decode_suppression(b"") == {}
    assert decode_chain_head(None) == ChainHead(seq=0, hash=GENESIS)


@pytest.mark.parametrize(
    "raw", [b"nope", b"[]", b'{"k": 1}', b'{"k": {"communication_id": "c"}}', b'"x"']
)
def test_foreign_suppression_value_is_a_typed_error(raw: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_suppression(raw)
    assert caught.value.code == "STATE_ERROR"


@pytest.mark.parametrize("raw", [b"{", b"[1]", b'{"seq": 1}', b"3"])
def test_foreign_chain_head_is_a_typed_error(raw: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_chain_head(raw)
    assert caught.value.code == "STATE_ERROR"
