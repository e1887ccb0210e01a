"""The audit chain's ``append`` as first written (the hash definition itself never changes)."""

from __future__ import annotations

import dataclasses
import hashlib

import orjson

from streams.audit.chain import ChainHead
from streams.domain.records import AuditRecord


def record_digest(record: AuditRecord, prev_hash: str, seq: int) -> str:
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
    seq = head.seq + 1
    digest = record_digest(record, head.hash, seq)
    chained = dataclasses.replace(record, seq=seq, prev_hash=head.hash, hash=digest)
    return chained, ChainHead(seq=seq, hash=digest)
