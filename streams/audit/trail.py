"""Verifying the audit trail on Kafka against its signed checkpoints, fully or incrementally.

:func:`verify_trail` reads the checkpoints topic and the audit topic and verifies each partition
(:mod:`streams.audit.verify`). With a :class:`TrustedState` (written by an earlier run, see
:meth:`TrailReport.trusted_state`) it reads only what came after: each partition from the record
of its last verified checkpoint, the checkpoints topic from where the last run stopped, so the
cost grows with the new records, not with the whole topic. The state file holds the signed
checkpoints themselves; they are verified again with the accepted keys when it is loaded, and the
record each one signs is read again and must still be there, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from streams.audit.checkpoints import CheckpointError, decode, encode, signature_problem
from streams.audit.reader import read_partitions, seen_checkpoints, trail_records
from streams.audit.verify import (
    DEFAULT_CLOCK_SKEW_MS,
    PartitionVerdict,
    TrustedStart,
    Violation,
    checkpoint_violations,
    verify_partition,
)
from streams.errors import AirExstreamError

STATE_VERSION = 1


class TrustedStateError(AirExstreamError):
    """A trusted checkpoint file that cannot be used (unreadable, another topic, bad signature)."""


@dataclass(frozen=True, slots=True)
class TrustedState:
    """Where the last clean verification ended: per audit partition its last signed head (and
    that record's offset), and the next offset of each checkpoints topic partition."""

    audit_topic: str
    checkpoints_topic: str
    starts: dict[int, TrustedStart]
    checkpoint_offsets: dict[int, int]

    def to_json(self) -> bytes:
        doc = {
            "version": STATE_VERSION,
            "audit_topic": self.audit_topic,
            "checkpoints_topic": self.checkpoints_topic,
            "partitions": {
                str(p): {"offset": s.offset, "checkpoint": orjson.loads(encode(s.checkpoint))}
                for p, s in sorted(self.starts.items())
            },
            "checkpoint_offsets": {str(p): o for p, o in sorted(self.checkpoint_offsets.items())},
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"

    @classmethod
    def load(cls, path: Path, keys: Mapping[str, Ed25519PublicKey]) -> TrustedState:
        """The state in ``path``, each checkpoint's signature checked with ``keys``."""
        try:
            doc = orjson.loads(path.read_bytes())
            if doc.get("version") != STATE_VERSION:
                raise TrustedStateError(f"{path}: unknown version {doc.get('version')!r}")
            starts = {}
            for p, entry in doc["partitions"].items():
                checkpoint = decode(orjson.dumps(entry["checkpoint"]))
                problem = signature_problem(checkpoint, keys)
                if problem is not None:
                    raise TrustedStateError(f"{path}: the checkpoint of partition {p}: {problem}")
                starts[int(p)] = TrustedStart(checkpoint, int(entry["offset"]))
            return cls(
                audit_topic=str(doc["audit_topic"]),
                checkpoints_topic=str(doc["checkpoints_topic"]),
                starts=starts,
                checkpoint_offsets={int(p): int(o) for p, o in doc["checkpoint_offsets"].items()},
            )
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TrustedStateError(
                f"cannot read the trusted checkpoint file {path}: {exc}"
            ) from exc
        except CheckpointError as exc:
            raise TrustedStateError(f"{path}: a checkpoint in it is unreadable: {exc}") from exc

    def save(self, path: Path) -> None:
        """Replace ``path`` atomically."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_json())
        tmp.replace(path)


@dataclass(frozen=True, slots=True)
class TrailReport:
    audit_topic: str
    checkpoints_topic: str
    verdicts: tuple[PartitionVerdict, ...]
    checkpoint_violations: tuple[Violation, ...]
    checkpoints_read: int
    checkpoint_ends: dict[int, int]
    incremental: bool

    @property
    def violations(self) -> list[Violation]:
        return [*self.checkpoint_violations, *(v for r in self.verdicts for v in r.violations)]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def records(self) -> int:
        return sum(r.records for r in self.verdicts)

    @property
    def verified(self) -> int:
        return sum(r.verified for r in self.verdicts)

    @property
    def unconfirmed(self) -> int:
        return sum(r.unconfirmed for r in self.verdicts)

    def trusted_state(self, previous: TrustedState | None = None) -> TrustedState:
        """Where the next incremental run starts: each partition's anchor (or the previous
        start where nothing newer was signed)."""
        starts = dict(previous.starts) if previous else {}
        for verdict in self.verdicts:
            if verdict.anchor is not None:
                starts[verdict.partition] = TrustedStart(
                    verdict.anchor.checkpoint, verdict.anchor.offset
                )
        return TrustedState(self.audit_topic, self.checkpoints_topic, starts, self.checkpoint_ends)


def verify_trail(
    bootstrap_servers: str,
    audit_topic: str,
    checkpoints_topic: str,
    keys: Mapping[str, Ed25519PublicKey],
    client_config: Mapping[str, str] | None = None,
    *,
    trusted: TrustedState | None = None,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
) -> TrailReport:
    """Verify every partition of ``audit_topic`` against the checkpoints on
    ``checkpoints_topic`` signed by ``keys`` (key id -> public key), from ``trusted`` on."""
    if trusted is not None and (trusted.audit_topic, trusted.checkpoints_topic) != (
        audit_topic,
        checkpoints_topic,
    ):
        raise TrustedStateError(
            f"the trusted checkpoint file is of {trusted.audit_topic} and "
            f"{trusted.checkpoints_topic}, not of {audit_topic} and {checkpoints_topic}"
        )
    read = read_partitions(
        bootstrap_servers,
        checkpoints_topic,
        client_config,
        starts=trusted.checkpoint_offsets if trusted else None,
    )
    seen, unreadable = seen_checkpoints(checkpoints_topic, read.messages)
    valid, forged = checkpoint_violations(seen, keys)
    starts = trusted.starts if trusted else {}
    audit = read_partitions(
        bootstrap_servers,
        audit_topic,
        client_config,
        starts={p: s.offset for p, s in starts.items()},
    )
    verdicts = [
        verify_partition(
            audit_topic,
            partition,
            trail_records(audit.messages.get(partition, [])),
            valid,
            start=starts.get(partition),
            clock_skew_ms=clock_skew_ms,
        )
        for partition in audit.partitions
    ]
    missing = sorted({c.checkpoint.partition for c in valid} - set(audit.partitions))
    gone = [
        Violation(
            audit_topic,
            p,
            0,
            None,
            f"partition {p} has signed checkpoints but does not exist: the topic was recreated "
            "with fewer partitions",
        )
        for p in missing
    ]
    return TrailReport(
        audit_topic=audit_topic,
        checkpoints_topic=checkpoints_topic,
        verdicts=tuple(verdicts),
        checkpoint_violations=(*unreadable, *forged, *gone),
        checkpoints_read=len(seen) + len(unreadable),
        checkpoint_ends=read.ends,
        incremental=trusted is not None,
    )
