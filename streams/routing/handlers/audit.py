"""The audit trail's writer: :class:`AuditChains` appends, :class:`AuditWriter` takes the intake.

Audit records are hash-chained per partition of ``audit.communications.v1``
(:func:`~streams.audit.chain.append`); the chain head of audit partition p is kept in the
``audit-chain-heads`` table under the key ``str(p)``. Partition p of every customer-partitioned
input shares one transactional id with intake partition p, so each chain has a single writer.

Per append, inside the transaction of the input record being handled:

1. the head of the chain of audit partition ``record.partition`` is read (none yet: the
   genesis head);
2. the chained record is sent to that audit partition, the new head put into the table;
3. with signing configured, a signed checkpoint of the new head may follow
   (:class:`~streams.audit.signing.AuditSigning`), in the same transaction.

Either all of it is committed with the input record's offset, or none: a crash or an abort
leaves the head and the chain as they were, and the input record is handled again.

Per record of ``audit.intake.v1`` (:class:`AuditWriter`): its value is decoded
(:func:`~streams.routing.handlers.decode.decode_or_dead_letter`: an undecodable record is
dead-lettered, and that dead letter's own audit record is chained instead) and appended to the
chain of the intake record's partition under the intake record's key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import orjson

from streams.audit.chain import ChainHead, append
from streams.domain.ids import audit_id
from streams.domain.records import AuditKind, AuditRecord
from streams.routing.handlers.decode import decode_or_dead_letter, key_text
from streams.routing.handlers.ports import DeadLetter, Decode, InputRecord, StateTable


class ChainedAudit(Protocol):
    """Where chained audit records go: ``audit.communications.v1``, in the handled record's
    transaction."""

    async def send(self, key: bytes, value: bytes, partition: int) -> None: ...


class Checkpoints(Protocol):
    """Signed checkpoints of the chain heads (the worker's
    :class:`~streams.audit.signing.AuditSigning` with its checkpoints topic)."""

    async def after_append(self, partition: int, head: ChainHead) -> None: ...


class AuditCounters(Protocol):
    """The worker's running totals (:class:`~streams.routing.app.Counters` is one)."""

    audit_written: int


def dead_letter_audit(
    record: InputRecord, error_type: str, reason: str, failed_at: int
) -> AuditRecord:
    """The DEAD_LETTER audit record of ``record`` dead-lettered for ``error_type``: its subject
    is the record's place (topic/partition/offset), so a replay audits it under the same id."""
    subject = f"{record.topic}/{record.partition}/{record.offset}"
    return AuditRecord(
        audit_id=audit_id(AuditKind.DEAD_LETTER, subject),
        kind=AuditKind.DEAD_LETTER,
        customer_id=key_text(record.key),
        occurred_at=failed_at,
        summary=f"record {subject} dead-lettered: {error_type}",
        details={"error_type": error_type, "source": subject, "reason": reason},
    )


def head_key(partition: int) -> bytes:
    """The ``audit-chain-heads`` key of the chain of audit ``partition``."""
    return str(partition).encode()


def encode_head(head: ChainHead) -> bytes:
    return orjson.dumps({"seq": head.seq, "hash": head.hash})


def decode_head(raw: bytes | None) -> ChainHead:
    """A stored chain head; the genesis head when none is stored."""
    return ChainHead(**orjson.loads(raw)) if raw else ChainHead()


class AuditChains:
    """Appends audit records to the chain of the handled record's partition (see the module
    docstring)."""

    def __init__(
        self,
        *,
        heads: StateTable,
        audit: ChainedAudit,
        encode: Callable[[AuditRecord], bytes],
        counters: AuditCounters,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self._heads = heads
        self._audit = audit
        self._encode = encode
        self._counters = counters
        self._checkpoints = checkpoints
        self._written: dict[bytes, tuple[bytes, ChainHead]] = {}
        """Per head key: the value last put and the head it encodes. The table handing back
        that very object means the head is unchanged since: not decoded again (any other
        value, e.g. one restored or read from disk, is decoded)."""

    def _head(self, head_at: bytes) -> ChainHead:
        raw = self._heads.get(head_at)
        written = self._written.get(head_at)
        if written is not None and raw is written[0]:
            return written[1]
        return decode_head(raw)

    async def append(self, record: InputRecord, key: bytes, audit: AuditRecord) -> None:
        """Append ``audit`` to the chain of audit partition ``record.partition`` while
        ``record`` is handled (its transaction holds the chained record and the new head)."""
        partition = record.partition
        head_at = head_key(partition)
        chained, head = append(self._head(head_at), audit)
        await self._audit.send(key, self._encode(chained), partition)
        value = encode_head(head)
        await self._heads.put(record, head_at, value)
        self._written[head_at] = (value, head)
        self._counters.audit_written += 1
        if self._checkpoints is not None:
            await self._checkpoints.after_append(partition, head)


class AuditWriter:
    """Chains the records of ``audit.intake.v1`` (see the module docstring)."""

    def __init__(
        self,
        *,
        chains: AuditChains,
        decode: Decode[AuditRecord],
        dead_letter: DeadLetter,
        registry_wait_s: float,
    ) -> None:
        self._chains = chains
        self._decode = decode
        self._dead_letter = dead_letter
        self._wait_s = registry_wait_s

    async def handle(self, record: InputRecord) -> None:
        """Chain ``record``'s audit record (or dead-letter ``record``)."""
        audit = await decode_or_dead_letter(
            self._decode, record, self._dead_letter, wait_s=self._wait_s
        )
        if audit is None:
            return
        await self._chains.append(record, record.key or b"", audit)
