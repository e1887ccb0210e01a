"""Signed checkpoints of the audit chains: pure functions and a small signer, no I/O.

The hash chain (:mod:`streams.audit.chain`) makes every edit, deletion or reordering *inside* a
partition visible, but its algorithm is public: anyone who may write the audit topic can append a
record chained after the head, or rewrite a whole partition with a recomputed chain. A checkpoint
closes that gap. The audit writer signs each partition's chain head with an Ed25519 private key
that only it holds:

    partition, seq, hash (the head's), key id, signed_at_ms  ->  signature

and publishes it on ``audit.checkpoints.v1`` (compacted, keyed by partition). A verifier holding
the public key then knows that the writer's chain of that partition reached record ``seq`` with
``hash`` at ``signed_at_ms`` (the writer's clock): every record on the chain up to it is
*verified*, a record that does not fit a signed head is a *violation*
(:mod:`streams.audit.verify`).

**Signed bytes.** ``b"air-exstream audit checkpoint v1\\n"`` followed by the JSON object of the
five fields above with sorted keys and no white space (orjson ``OPT_SORT_KEYS``): ``hash`` and
``key_id`` as lower-case hex text, the numbers as JSON integers. The leading line keeps a
signature over these bytes from being valid for anything else signed with the same key.

**Record on Kafka** (:func:`encode`/:func:`decode`): key ``b"<partition>"``; value the same JSON
object with ``"v": 1`` and ``"signature"`` (base64 of the 64 signature bytes) added. A JSON
record rather than an Avro one: the checkpoint is read by auditors' tools as much as by this
project, it must be re-serialised byte for byte to check the signature, and the signed bytes are
defined above independently of any codec.

**Key id.** The first 16 hex digits of the SHA-256 of the public key's 32 raw bytes
(:func:`key_id_of`): derived, so a key and its id cannot disagree. Rotation: the writer signs with
the new key, verifiers accept several public keys and pick one by the checkpoint's key id.

**When the signer signs** (:class:`CheckpointPolicy`): after ``every_records`` appends to a
partition, or at the first append ``every_ms`` after its last checkpoint (:meth:`observe`, called
after each append, in the append's transaction); and for a partition idle for ``idle_ms`` whose
head is unsigned or was last signed ``heartbeat_ms`` ago (:meth:`due`, called from a timer).
Heartbeats matter: a checkpoint says "as of ``signed_at_ms`` my head was ``seq``", so a record
the broker appended before that time and beyond that seq was not written by the writer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from streams.audit.chain import ChainHead
from streams.errors import AirExstreamError

SIGNED_PREFIX = b"air-exstream audit checkpoint v1\n"
VERSION = 1
_HEX = frozenset("0123456789abcdef")
_FIELDS = ("partition", "seq", "hash", "key_id", "signed_at_ms")


class CheckpointError(AirExstreamError):
    """A checkpoint record that cannot be read (the message says what is wrong with it)."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """The key id of ``public_key``: 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The signed head of one audit partition's chain."""

    partition: int
    seq: int
    hash: str
    key_id: str
    signed_at_ms: int
    signature: bytes = field(repr=False)

    @property
    def key(self) -> bytes:
        """Its Kafka key: the partition, so that compaction keeps the latest per partition."""
        return str(self.partition).encode()

    @property
    def head(self) -> ChainHead:
        return ChainHead(seq=self.seq, hash=self.hash)

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.partition, self.seq, self.hash, self.key_id, self.signed_at_ms)


def signed_bytes(partition: int, seq: int, hash: str, key_id: str, signed_at_ms: int) -> bytes:
    """The exact bytes a checkpoint's signature covers (see the module docstring)."""
    body = {
        "partition": partition,
        "seq": seq,
        "hash": hash,
        "key_id": key_id,
        "signed_at_ms": signed_at_ms,
    }
    return SIGNED_PREFIX + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def sign(
    private_key: Ed25519PrivateKey, key_id: str, partition: int, head: ChainHead, now_ms: int
) -> Checkpoint:
    """A checkpoint of ``head`` of ``partition`` signed at ``now_ms``."""
    payload = signed_bytes(partition, head.seq, head.hash, key_id, now_ms)
    return Checkpoint(
        partition=partition,
        seq=head.seq,
        hash=head.hash,
        key_id=key_id,
        signed_at_ms=now_ms,
        signature=private_key.sign(payload),
    )


def signature_problem(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when ``checkpoint`` is signed by one of ``keys`` (key id -> public key), else what
    is wrong with it, for a person."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        known = ", ".join(sorted(keys)) or "none"
        return (
            f"signed with key id {checkpoint.key_id}, which is not an accepted public key "
            f"(accepted: {known})"
        )
    try:
        key.verify(checkpoint.signature, checkpoint.signed_bytes())
    except InvalidSignature:
        return f"its signature does not verify with key {checkpoint.key_id} (forged or altered)"
    return None


def encode(checkpoint: Checkpoint) -> bytes:
    """The Kafka record value of ``checkpoint`` (canonical JSON, see the module docstring)."""
    body: dict[str, Any] = {
        "v": VERSION,
        "partition": checkpoint.partition,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "key_id": checkpoint.key_id,
        "signed_at_ms": checkpoint.signed_at_ms,
        "signature": base64.b64encode(checkpoint.signature).decode("ascii"),
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def decode(value: bytes | None) -> Checkpoint:
    """The checkpoint in a record value; :class:`CheckpointError` naming what is wrong. A valid
    decoding says nothing about the signature (see :func:`signature_problem`)."""
    if value is None:
        raise CheckpointError("a tombstone (no value) where a checkpoint should be")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError("not a JSON object")
    if raw.get("v") != VERSION:
        raise CheckpointError(f"unknown checkpoint version {raw.get('v')!r}")
    missing = [f for f in (*_FIELDS, "signature") if f not in raw]
    if missing:
        raise CheckpointError(f"missing field(s) {', '.join(missing)}")
    for name in ("partition", "seq", "signed_at_ms"):
        value_ = raw[name]
        if not isinstance(value_, int) or isinstance(value_, bool) or value_ < 0:
            raise CheckpointError(f"{name} must be a non-negative integer")
    for name, length in (("hash", 64), ("key_id", 16)):
        text = raw[name]
        if not isinstance(text, str) or len(text) != length or not set(text) <= _HEX:
            raise CheckpointError(f"{name} must be {length} lower-case hex digits")
    try:
        signature = base64.b64decode(str(raw["signature"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError("signature is not base64") from exc
    if len(signature) != 64:
        raise CheckpointError("an Ed25519 signature has 64 bytes")
    return Checkpoint(
        partition=raw["partition"],
        seq=raw["seq"],
        hash=raw["hash"],
        key_id=raw["key_id"],
        signed_at_ms=raw["signed_at_ms"],
        signature=signature,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointPolicy:
    """How often the signer signs (see the module docstring). The defaults sign about one
    checkpoint per thousand audit records under load: a signature costs tens of microseconds."""

    every_records: int = 1000
    every_ms: int = 10_000
    idle_ms: int = 120_000
    """How long a partition has had no append before :meth:`CheckpointSigner.due` signs it.
    Checkpoints from ``due`` are written outside the transactions of the records they cover, so
    this must exceed the longest a writer's transaction can stay open (the routing worker's
    commit deadline, 90 s): a head is only signed from a timer once it is surely committed."""
    heartbeat_ms: int = 60_000
    """How often an idle partition's (already signed) head is signed again, with a new time."""

    def __post_init__(self) -> None:
        for name in ("every_records", "every_ms", "idle_ms", "heartbeat_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"checkpoint policy: {name} must be at least 1")


@dataclass(slots=True)
class _Partition:
    head: ChainHead
    last_append_ms: int
    last_signed_ms: int
    unsigned: int
    """Appends since the last checkpoint (0: the head is signed)."""


class CheckpointSigner:
    """Signs audit chain heads following a :class:`CheckpointPolicy`; holds no I/O.

    One signer per audit writer process; it knows only the partitions it saw appends to since
    it started (or since :meth:`forget`). Not thread-safe: call it from the writer's loop.
    """

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        key_id: str | None = None,
        policy: CheckpointPolicy | None = None,
    ) -> None:
        """``key_id`` defaults to the key's own (:func:`key_id_of`); another value is refused,
        as verifiers find a key by the id it derives to."""
        own = key_id_of(private_key.public_key())
        if key_id is not None and key_id != own:
            raise ValueError(f"key id {key_id} is not the key's own ({own})")
        self._key = private_key
        self.key_id = own
        self.policy = policy or CheckpointPolicy()
        self._partitions: dict[int, _Partition] = {}

    def sign(self, partition: int, head: ChainHead, now_ms: int) -> Checkpoint:
        """A checkpoint of ``head`` now, whatever the policy says."""
        checkpoint = sign(self._key, self.key_id, partition, head, now_ms)
        state = self._partitions.get(partition)
        if state is not None and state.head == head:
            state.unsigned = 0
            state.last_signed_ms = now_ms
        return checkpoint

    def observe(self, partition: int, head: ChainHead, now_ms: int) -> Checkpoint | None:
        """Record that ``head`` was just appended to ``partition``; a checkpoint of it when the
        policy says one is due (to be written in the same transaction as the record)."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition(head, now_ms, now_ms, 0)
        state.head = head
        state.last_append_ms = now_ms
        state.unsigned += 1
        policy = self.policy
        if state.unsigned >= policy.every_records or (
            now_ms - state.last_signed_ms >= policy.every_ms
        ):
            return self.sign(partition, head, now_ms)
        return None

    def due(self, now_ms: int) -> list[Checkpoint]:
        """Checkpoints of the idle partitions: no append for ``idle_ms``, and the head unsigned
        or last signed ``heartbeat_ms`` ago."""
        policy = self.policy
        out = []
        for partition, state in sorted(self._partitions.items()):
            if now_ms - state.last_append_ms < policy.idle_ms:
                continue
            if state.unsigned or now_ms - state.last_signed_ms >= policy.heartbeat_ms:
                out.append(self.sign(partition, state.head, now_ms))
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        """Stop signing ``partitions`` (this writer no longer owns them: another writer may
        append to them now, and a heartbeat of this one's stale head would contradict it)."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    @property
    def partitions(self) -> list[int]:
        return sorted(self._partitions)
