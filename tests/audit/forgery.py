"""Test support: audit records as the writer and as an attacker make them."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Producer

from streams.audit.chain import ChainHead, append
from streams.audit.checkpoints import Checkpoint, CheckpointSigner, encode
from streams.codec import codec_for
from streams.domain.records import AuditKind, AuditRecord

AUDIT_CODEC = codec_for(AuditRecord)


def status_record(i: int, *, customer: str = "c-1", status: str = "COMPOSED") -> AuditRecord:
    """An unchained ``STATUS_CHANGED`` record of communication ``com-<i>``."""
    return AuditRecord(
        audit_id=f"a-{i}-{status}",
        kind=AuditKind.STATUS_CHANGED,
        customer_id=customer,
        communication_id=f"com-{i}",
        occurred_at=1_780_000_000_000 + i,
        summary=f"communication com-{i} is {status}",
        details={"status": status, "channel": "PRINT"},
    )


def chained(n: int, *, head: ChainHead | None = None, first: int = 0) -> list[AuditRecord]:
    """``n`` records chained after ``head`` (genesis by default), as the writer chains them."""
    out = []
    current = head or ChainHead()
    for i in range(first, first + n):
        record, current = append(current, status_record(i))
        out.append(record)
    return out


def forged_delivery(after: AuditRecord, communication: str = "com-3") -> AuditRecord:
    """What an attacker with write access appends: a ``DELIVERED`` status for an existing
    communication, chained after ``after`` with the chain's own public algorithm."""
    forged = AuditRecord(
        audit_id=f"forged-{communication}",
        kind=AuditKind.STATUS_CHANGED,
        customer_id=after.customer_id,
        communication_id=communication,
        occurred_at=after.occurred_at + 1,
        summary=f"communication {communication} is DELIVERED",
        details={"status": "DELIVERED", "channel": "PRINT"},
    )
    record, _ = append(ChainHead(after.seq, after.hash), forged)
    return record


class TrailWriter:
    """The audit writer's real chaining and signing (``streams.audit``), producing to Kafka: the
    records to one audit partition, the checkpoints it signs to the checkpoints topic."""

    def __init__(
        self,
        client_config: dict[str, str],
        audit_topic: str,
        checkpoints_topic: str,
        signer: CheckpointSigner,
        partition: int = 0,
    ) -> None:
        self.producer = Producer({**client_config, "acks": "all", "enable.idempotence": True})
        self.audit_topic = audit_topic
        self.checkpoints_topic = checkpoints_topic
        self.signer = signer
        self.partition = partition
        self.head = ChainHead()
        self.written: list[AuditRecord] = []
        self.checkpoints: list[Checkpoint] = []

    def write(self, records: list[AuditRecord]) -> None:
        """Chain and append ``records``; sign as the policy says."""
        for record in records:
            chained_record, self.head = append(self.head, record)
            self.producer.produce(
                self.audit_topic,
                key=(record.customer_id or "").encode(),
                value=AUDIT_CODEC.encode(chained_record),
                partition=self.partition,
            )
            self.written.append(chained_record)
            self._send(self.signer.observe(self.partition, self.head, now_ms()))
        self.flush()

    def heartbeat(self) -> None:
        """What the writer's timer does while the partition is idle."""
        for checkpoint in self.signer.due(now_ms()):
            self._send(checkpoint)
        self.flush()

    def _send(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None:
            self.checkpoints.append(checkpoint)
            self.producer.produce(
                self.checkpoints_topic, key=checkpoint.key, value=encode(checkpoint)
            )

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def close(self) -> None:
        self.flush()
        self.producer.close()


def attacker_append(
    client_config: dict[str, str], topic: str, partition: int, records: list[AuditRecord]
) -> list[int]:
    """An ordinary client appending records to a partition of the audit topic; returns the
    offsets they got."""
    producer = Producer({**client_config, "acks": "all"})
    offsets: list[int] = []

    def delivered(err: object, msg: Any) -> None:
        assert err is None, err
        offsets.append(msg.offset())

    for record in records:
        producer.produce(
            topic,
            key=(record.customer_id or "").encode(),
            value=AUDIT_CODEC.encode(record),
            partition=partition,
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    return offsets


def rechain(records: list[AuditRecord], head: ChainHead | None = None) -> list[AuditRecord]:
    """``records`` chained again after ``head`` with the public algorithm (as an attacker
    recomputes a chain after editing it)."""
    out = []
    current = head or ChainHead()
    for record in records:
        chained_record, current = append(current, record)
        out.append(chained_record)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)
