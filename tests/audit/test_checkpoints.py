"""Signed checkpoints: the signer's policy, the signed bytes, the record format."""

from __future__ import annotations

import base64
import dataclasses

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from streams.audit.chain import ChainHead
from streams.audit.checkpoints import (
    SIGNED_PREFIX,
    Checkpoint,
    CheckpointError,
    CheckpointPolicy,
    CheckpointSigner,
    decode,
    encode,
    key_id_of,
    sign,
    signature_problem,
)

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.generate()
KEYS = {key_id_of(KEY.public_key()): KEY.public_key()}


def head(seq: int) -> ChainHead:
    return ChainHead(seq=seq, hash=f"{seq:064x}")


def signer(**policy: int) -> CheckpointSigner:
    return CheckpointSigner(KEY, None, CheckpointPolicy(**policy))


def test_the_key_id_is_derived_from_the_public_key() -> None:
    kid = key_id_of(KEY.public_key())
    assert len(kid) == 16
    assert kid == key_id_of(KEY.public_key())
    assert kid != key_id_of(Ed25519PrivateKey.generate().public_key())
    assert CheckpointSigner(KEY, kid).key_id == kid
    with pytest.raises(ValueError, match="not the key's own"):
        CheckpointSigner(KEY, "0" * 16)


def test_signed_bytes_are_the_documented_canonical_form() -> None:
    cp = sign(KEY, "abcdef0123456789", 3, head(7), 1_700_000_000_000)
    expected = SIGNED_PREFIX + (
        b'{"hash":"' + f"{7:064x}".encode() + b'","key_id":"abcdef0123456789",'
        b'"partition":3,"seq":7,"signed_at_ms":1700000000000}'
    )
    assert cp.signed_bytes() == expected
    KEY.public_key().verify(cp.signature, expected)
    assert cp.key == b"3"


def test_every_records_and_every_ms_decide_when_observe_signs() -> None:
    s = signer(every_records=3, every_ms=1_000)
    assert s.observe(0, head(1), 0) is None
    assert s.observe(0, head(2), 10) is None
    third = s.observe(0, head(3), 20)
    assert third is not None
    assert (third.partition, third.seq, third.signed_at_ms) == (0, 3, 20)
    assert s.observe(0, head(4), 30) is None
    timed = s.observe(0, head(5), 1_020)  # a second after the last checkpoint
    assert timed is not None
    assert timed.seq == 5
    # partitions are counted apart
    assert s.observe(1, head(1), 1_030) is None


def test_due_signs_idle_unsigned_heads_then_heartbeats() -> None:
    s = signer(every_records=100, every_ms=100_000, idle_ms=5_000, heartbeat_ms=60_000)
    s.observe(0, head(1), 0)
    s.observe(0, head(2), 1_000)
    assert s.due(5_999) == []  # not idle long enough
    (idle,) = s.due(6_000)
    assert (idle.seq, idle.signed_at_ms) == (2, 6_000)
    assert s.due(7_000) == []  # signed, heartbeat not due
    (beat,) = s.due(66_000)
    assert (beat.seq, beat.hash, beat.signed_at_ms) == (2, head(2).hash, 66_000)
    assert s.due(67_000) == []


def test_a_forgotten_partition_is_never_signed_again() -> None:
    s = signer(idle_ms=1, heartbeat_ms=1)
    s.observe(0, head(1), 0)
    s.observe(4, head(9), 0)
    s.forget([4])
    assert [c.partition for c in s.due(10)] == [0]
    assert s.partitions == [0]


def test_a_policy_value_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="idle_ms"):
        CheckpointPolicy(idle_ms=0)


def test_encode_decode_round_trip_and_signature_check() -> None:
    cp = sign(KEY, key_id_of(KEY.public_key()), 2, head(10), 123)
    raw = encode(cp)
    assert orjson.loads(raw)["v"] == 1
    back = decode(raw)
    assert back == cp
    assert signature_problem(back, KEYS) is None


@given(st.sampled_from(["partition", "seq", "hash", "signed_at_ms"]))
def test_any_altered_field_breaks_the_signature(name: str) -> None:
    cp = sign(KEY, key_id_of(KEY.public_key()), 2, head(10), 123)
    changed = {"partition": 3, "seq": 11, "hash": f"{11:064x}", "signed_at_ms": 124}[name]
    forged = dataclasses.replace(cp, **{name: changed})
    problem = signature_problem(forged, KEYS)
    assert problem is not None
    assert "does not verify" in problem


def test_a_checkpoint_signed_by_another_key_names_its_key_id() -> None:
    other = Ed25519PrivateKey.generate()
    cp = sign(other, key_id_of(other.public_key()), 0, head(1), 1)
    problem = signature_problem(cp, KEYS)
    assert problem is not None
    assert key_id_of(other.public_key()) in problem
    assert "not an accepted public key" in problem
    # claiming the accepted key's id does not help
    claimed = dataclasses.replace(cp, key_id=key_id_of(KEY.public_key()))
    assert "does not verify" in (signature_problem(claimed, KEYS) or "")


def test_rotation_accepts_several_keys() -> None:
    new = Ed25519PrivateKey.generate()
    keys = {**KEYS, key_id_of(new.public_key()): new.public_key()}
    old_cp = sign(KEY, key_id_of(KEY.public_key()), 0, head(1), 1)
    new_cp = sign(new, key_id_of(new.public_key()), 0, head(2), 2)
    assert signature_problem(old_cp, keys) is None
    assert signature_problem(new_cp, keys) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "tombstone"),
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v": 2}', "unknown checkpoint version"),
        (b'{"v": 1, "seq": 1}', "missing field"),
    ],
)
def test_unreadable_records_are_named(value: bytes | None, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        decode(value)


def test_malformed_fields_are_named() -> None:
    good = orjson.loads(encode(sign(KEY, key_id_of(KEY.public_key()), 0, head(1), 1)))
    for name, bad, message in (
        ("seq", -1, "seq must be a non-negative integer"),
        ("partition", True, "partition must be a non-negative integer"),
        ("hash", "ABC", "hash must be 64 lower-case hex digits"),
        ("key_id", "x" * 16, "key_id must be 16 lower-case hex digits"),
        ("signature", "!!", "not base64"),
        ("signature", base64.b64encode(b"short").decode(), "64 bytes"),
    ):
        with pytest.raises(CheckpointError, match=message):
            decode(orjson.dumps({**good, name: bad}))


def test_a_checkpoint_repr_never_shows_the_signature() -> None:
    cp = sign(KEY, key_id_of(KEY.public_key()), 0, head(1), 1)
    assert "signature" not in repr(cp)
    assert isinstance(cp, Checkpoint)
