"""Audit verification: full and incremental, against signed checkpoints; and the writer's cost.

Setup (per repetition, fresh topics on one broker): ``BENCH_AUDIT_RECORDS`` audit records
(``STATUS_CHANGED``-shaped, as the worker writes most) chained over the 6 partitions of a copy
of the topology's audit topic, with the writer's default policy (a checkpoint every 1,000
records per partition, plus each partition's final head); then ``BENCH_AUDIT_NEW_RECORDS``
more, signed the same way.

``audit_verify`` (records/s, whole topic). Measured: ``verify_trail`` with the public key over
the whole trail (reading, decoding, hashing every record, checking every checkpoint). Baseline,
same run, same topic: the chain-only verification (``verify_topic``, what ``audit verify`` did
before checkpoints).

``audit_verify_incremental`` (seconds after the new records). Measured: ``verify_trail`` from the
trusted state saved by the full run (``--from-checkpoint``): it reads the new records and the
new checkpoints only. Baseline: the full verification of the grown trail, in the same run.
Records per second of each are reported too.

``audit_signing`` (microseconds per audit record, no broker). Measured: what the writer adds per
record, ``CheckpointSigner.observe`` with the default policy, an Ed25519 signature every 1,000
records included. Baseline: chaining the record (``chain.append``: the SHA-256 and the canonical
JSON), which the writer does anyway.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.common import broker, machine, median
from streams.audit.chain import ChainHead, append
from streams.audit.checkpoints import CheckpointPolicy, CheckpointSigner, encode, key_id_of
from streams.audit.reader import verify_topic
from streams.audit.trail import TrailReport, verify_trail
from streams.codec import codec_for
from streams.domain.records import AuditKind, AuditRecord
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

RECORDS = int(os.environ.get("BENCH_AUDIT_RECORDS", "60000"))
NEW_RECORDS = int(os.environ.get("BENCH_AUDIT_NEW_RECORDS", "3000"))
REPETITIONS = int(os.environ.get("BENCH_REPETITIONS", "3"))
SIGNING_RECORDS = int(os.environ.get("BENCH_AUDIT_SIGNING_RECORDS", "200000"))
PARTITIONS = 6
CODEC = codec_for(AuditRecord)


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        audit_id=f"bench-{i}",
        kind=AuditKind.STATUS_CHANGED,
        customer_id=f"c-{i % 997:05d}",
        communication_id=f"com-{i:08d}",
        occurred_at=1_780_000_000_000 + i,
        summary=f"communication com-{i:08d} is DELIVERED",
        details={"status": "DELIVERED", "channel": "EMAIL", "event_id": f"ev-{i}"},
    )


@dataclasses.dataclass
class _Writer:
    """The audit writer's chaining and signing, producing straight to the topics."""

    producer: Producer
    topology: Topology
    signer: CheckpointSigner
    heads: dict[int, ChainHead] = dataclasses.field(default_factory=dict)

    def write(self, first: int, count: int) -> None:
        audit = self.topology.name(names.AUDIT)
        checkpoints = self.topology.name(names.AUDIT_CHECKPOINTS)
        for i in range(first, first + count):
            partition = i % PARTITIONS
            chained, head = append(self.heads.get(partition, ChainHead()), _record(i))
            self.heads[partition] = head
            self.producer.produce(audit, value=CODEC.encode(chained), partition=partition)
            checkpoint = self.signer.observe(partition, head, i)
            if checkpoint is not None:
                self.producer.produce(checkpoints, key=checkpoint.key, value=encode(checkpoint))
            if i % 10_000 == 0:
                self.producer.poll(0)
        for partition, head in self.heads.items():  # the idle signing of the final heads
            checkpoint = self.signer.sign(partition, head, first + count)
            self.producer.produce(checkpoints, key=checkpoint.key, value=encode(checkpoint))
        if self.producer.flush(120) != 0:
            raise RuntimeError("the benchmark's records were not all written")


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _once(bootstrap: str) -> dict[str, float]:
    topology = load_topology("local", prefix=f"bench-audit-{uuid.uuid4().hex[:6]}.")
    trail = dataclasses.replace(
        topology, topics=(topology.topic(names.AUDIT), topology.topic(names.AUDIT_CHECKPOINTS))
    )
    apply_topology({"bootstrap.servers": bootstrap}, trail)
    key = Ed25519PrivateKey.generate()
    keys = {key_id_of(key.public_key()): key.public_key()}
    # idempotent, as the worker's transactional producers: retried batches keep their order
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "enable.idempotence": True}
    )
    writer = _Writer(producer, topology, CheckpointSigner(key, None, CheckpointPolicy()))
    writer.write(0, RECORDS)
    audit, checkpoints = topology.name(names.AUDIT), topology.name(names.AUDIT_CHECKPOINTS)

    def full() -> TrailReport:
        return verify_trail(bootstrap, audit, checkpoints, keys)

    full_s, report = _timed(full)
    if not report.ok or report.verified != RECORDS:
        raise RuntimeError(
            f"the full verification verified {report.verified} of {RECORDS} records; first "
            f"violations: {[str(v) for v in report.violations[:3]]}"
        )
    chain_s, chains = _timed(lambda: verify_topic(bootstrap, audit))
    if not all(c.ok for c in chains):
        raise RuntimeError("the chain-only verification failed")
    trusted = report.trusted_state()
    writer.write(RECORDS, NEW_RECORDS)
    inc_s, incremental = _timed(
        lambda: verify_trail(bootstrap, audit, checkpoints, keys, trusted=trusted)
    )
    if not incremental.ok or incremental.verified != NEW_RECORDS:
        raise RuntimeError(f"the incremental verification verified {incremental.verified}")
    grown_s, grown = _timed(full)
    if not grown.ok or grown.verified != RECORDS + NEW_RECORDS:
        raise RuntimeError("the full verification of the grown trail failed")
    return {
        "full_rps": RECORDS / full_s,
        "chain_rps": RECORDS / chain_s,
        "incremental_s": inc_s,
        "incremental_rps": incremental.records / inc_s,
        "incremental_records_read": float(incremental.records),
        "grown_full_s": grown_s,
        "grown_full_rps": (RECORDS + NEW_RECORDS) / grown_s,
    }


def run_all() -> list[dict[str, Any]]:
    runs: list[dict[str, float]] = []
    with broker() as bootstrap:
        for _ in range(REPETITIONS):
            runs.append(_once(bootstrap))

    def m(name: str) -> float:
        return median([r[name] for r in runs])

    config = {
        "records": RECORDS,
        "new_records": NEW_RECORDS,
        "partitions": PARTITIONS,
        "checkpoint_every_records": CheckpointPolicy().every_records,
        "repetitions": REPETITIONS,
    }
    verify = {
        "benchmark": "audit_verify",
        "unit": "records/s",
        "measured": {
            "what": "audit verify with the public key, whole trail (checkpoints checked)",
            "value": m("full_rps"),
            "runs": [r["full_rps"] for r in runs],
        },
        "baseline": {
            "what": "chain-only audit verify of the same trail (before checkpoints)",
            "value": m("chain_rps"),
            "runs": [r["chain_rps"] for r in runs],
        },
        "ratio": m("full_rps") / m("chain_rps"),
        "config": config,
        "machine": machine(),
    }
    incremental = {
        "benchmark": "audit_verify_incremental",
        "unit": "s",
        "measured": {
            "what": f"audit verify --from-checkpoint after {NEW_RECORDS} new records",
            "value": m("incremental_s"),
            "runs": [r["incremental_s"] for r in runs],
            "records_per_second": m("incremental_rps"),
            "records_read": m("incremental_records_read"),
        },
        "baseline": {
            "what": f"full audit verify of the grown trail ({RECORDS + NEW_RECORDS} records)",
            "value": m("grown_full_s"),
            "runs": [r["grown_full_s"] for r in runs],
            "records_per_second": m("grown_full_rps"),
        },
        "ratio": m("incremental_s") / m("grown_full_s"),
        "config": config,
        "machine": machine(),
    }
    return [verify, incremental, run_signing()]


def run_signing() -> dict[str, Any]:
    """The writer's cost per audit record: observing (and now and then signing) vs chaining."""
    records = [_record(i) for i in range(SIGNING_RECORDS)]
    chain_runs, sign_runs = [], []
    for _ in range(REPETITIONS):
        head = ChainHead()
        heads = []
        started = time.perf_counter()
        for record in records:
            _, head = append(head, record)
            heads.append(head)
        chain_runs.append((time.perf_counter() - started) / len(records) * 1e6)
        signer = CheckpointSigner(Ed25519PrivateKey.generate(), None, CheckpointPolicy())
        started = time.perf_counter()
        for i, h in enumerate(heads):
            signer.observe(i % PARTITIONS, h, 0)
        sign_runs.append((time.perf_counter() - started) / len(heads) * 1e6)
    return {
        "benchmark": "audit_signing",
        "unit": "µs/record",
        "measured": {
            "what": "CheckpointSigner.observe per audit record, default policy (a signature "
            "per 1,000 records per partition)",
            "value": median(sign_runs),
            "runs": sign_runs,
        },
        "baseline": {
            "what": "chaining the same record (chain.append), which the writer does anyway",
            "value": median(chain_runs),
            "runs": chain_runs,
        },
        "ratio": median(sign_runs) / median(chain_runs),
        "config": {"records": SIGNING_RECORDS, "repetitions": REPETITIONS},
        "machine": machine(),
    }
