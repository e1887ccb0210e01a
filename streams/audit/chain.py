"""Hash chaining of audit records, per partition: pure functions, no I/O.

Each partition of the audit topic is one chain. Record ``n`` carries ``seq = n`` (starting at 1),
``prev_hash`` (the hash of record ``n - 1``, or :data:`GENESIS` for the first) and ``hash``, the
SHA-256 of ``prev_hash`` and a canonical serialisation of every other field. Any edit of a record
changes its hash; a deletion, insertion or reordering breaks the ``seq``/``prev_hash`` links. The
chain does not protect against truncation of the newest records by itself: :func:`verify_chain`
reports the head (last seq and hash) so that operators can compare it with an anchored copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from streams.domain.records import AuditRecord

GENESIS = "0" * 64
"""``prev_hash`` of the first record of every partition."""


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a partition's chain ends: the next record gets ``seq + 1`` and ``prev_hash = hash``."""

    seq: int = 0
    hash: str = GENESIS


def record_digest(record: AuditRecord, prev_hash: str, seq: int) -> str:
    """The hash of ``record`` at position ``seq`` after ``prev_hash`` (own hash ignored)."""
    body = {
        "audit_id": record.audit_id,
        "kind": record.kind,
        "customer_id": record.customer_id,
        "case_id": record.case_id,
        "communication_id": record.communication_id,
        "source_event_id": record.source_event_id,
        "occurred_at": record.occurred_at,
        "summary": record.summary,
        "details": record.details,
        "seq": seq,
        "prev_hash": prev_hash,
    }
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


def append(head: ChainHead, record: AuditRecord) -> tuple[AuditRecord, ChainHead]:
    """Chain ``record`` after ``head``; returns the chained record and the new head."""
    seq = head.seq + 1
    prev_hash = head.hash
    digest = record_digest(record, prev_hash, seq)
    # the constructor, not dataclasses.replace: same record, a third of the cost per audit record
    chained = AuditRecord(
        audit_id=record.audit_id,
        kind=record.kind,
        customer_id=record.customer_id,
        case_id=record.case_id,
        communication_id=record.communication_id,
        source_event_id=record.source_event_id,
        occurred_at=record.occurred_at,
        summary=record.summary,
        details=record.details,
        seq=seq,
        prev_hash=prev_hash,
        hash=digest,
    )
    return chained, ChainHead(seq=seq, hash=digest)


@dataclass(frozen=True, slots=True)
class ChainViolation:
    """One place where a partition's chain is broken, described for a person."""

    partition: int
    offset: int
    seq: int
    problem: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    partition: int
    records: int
    head: ChainHead
    violations: tuple[ChainViolation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations


def verify_chain(partition: int, records: Iterable[tuple[int, AuditRecord]]) -> ChainReport:
    """Check one partition's records, given in offset order as ``(offset, record)`` pairs.

    Every record must have the next ``seq``, link to the previous hash and carry its own correct
    hash. Verification continues after a violation (re-anchoring on the record as stored) so that
    one report lists every broken place.
    """
    head = ChainHead()
    violations: list[ChainViolation] = []
    count = 0
    for offset, record in records:
        count += 1
        expected_seq = head.seq + 1
        if record.seq != expected_seq:
            violations.append(
                ChainViolation(
                    partition,
                    offset,
                    record.seq,
                    f"sequence gap: expected seq {expected_seq}, found {record.seq} "
                    "(a record was deleted, inserted or reordered)",
                )
            )
        if record.prev_hash != head.hash:
            violations.append(
                ChainViolation(
                    partition,
                    offset,
                    record.seq,
                    "broken link: prev_hash does not match the previous record's hash",
                )
            )
        if record_digest(record, record.prev_hash, record.seq) != record.hash:
            violations.append(
                ChainViolation(
                    partition,
                    offset,
                    record.seq,
                    "content altered: the record's hash does not match its fields",
                )
            )
        head = ChainHead(seq=record.seq, hash=record.hash)
    return ChainReport(partition, count, head, tuple(violations))
