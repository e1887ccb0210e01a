"""Verifying an audit partition against its signed checkpoints: pure functions, no I/O.

Input: one partition's records in offset order (with the broker's append time when the topic
stamps records itself, ``message.timestamp.type=LogAppendTime``), the checkpoints claiming that
partition, the accepted public keys, and optionally a trusted start (an earlier verified
checkpoint, for incremental verification). Output: each record is *verified*, *unconfirmed* or a
*violation*, and every violation names the partition and the offset.

1. **Checkpoints.** One whose signature does not verify with an accepted key (by its key id) is
   a violation: forged, altered, or signed with a key nobody accepts.
2. **Anchor.** The valid checkpoint with the highest seq whose (seq, hash) is the (seq, hash) of
   a record with a correct hash. No one can make a record fit a signed hash without the writer's
   exact record (SHA-256), so the anchor record is the writer's.
3. **Verified.** From the anchor, the chain is followed backwards through ``prev_hash`` down to
   seq 1 (or to the trusted start): those records are verified. A predecessor that is missing
   is a violation (records deleted). Every other record before the anchor is a violation: not
   part of the chain the writer signed (a forged append between checkpoints, an inserted or
   duplicated record, an altered one). Every other valid checkpoint must fit the verified chain;
   one above the anchor that fits no record means the signed head was deleted or rewritten (a
   rewritten tail, a partition recreated from scratch): a violation.
4. **Unconfirmed.** Records after the anchor that continue its chain are unconfirmed, counted
   and shown: the writer has not signed past them yet. Two records continuing the same
   predecessor (a fork), a record that does not continue the chain, or one whose hash does not
   match its fields are violations. So is a record the broker appended (by its own clock) before
   the anchor's latest signing time, less ``clock_skew_ms``: the writer's head was then still the
   anchor, so the writer did not write it (a forged append after the head, caught by the
   writer's next checkpoint or heartbeat). With producer-set timestamps (``CreateTime``) this
   last check is impossible and is skipped; the verdict says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from streams.audit.chain import GENESIS, ChainHead, record_digest
from streams.audit.checkpoints import Checkpoint, signature_problem
from streams.domain.records import AuditRecord

DEFAULT_CLOCK_SKEW_MS = 30_000
"""How far the audit writer's clock may be ahead of the brokers' before its own records could
look older than its checkpoints. Hosts kept by NTP are within milliseconds."""


@dataclass(frozen=True, slots=True)
class TrailRecord:
    """One record of an audit partition as read from Kafka."""

    offset: int
    record: AuditRecord | None
    """None: the value could not be decoded."""
    timestamp_ms: int
    broker_time: bool
    """True when ``timestamp_ms`` is the broker's append time (``LogAppendTime``)."""


@dataclass(frozen=True, slots=True)
class SeenCheckpoint:
    """A checkpoint as read from the checkpoints topic (where it is, and what it says)."""

    topic: str
    partition: int
    offset: int
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class TrustedStart:
    """Where incremental verification starts: a checkpoint verified earlier, and the offset of
    the record it signs (that record is read again and must still be the same)."""

    checkpoint: Checkpoint
    offset: int


@dataclass(frozen=True, slots=True)
class Violation:
    """A record or checkpoint that does not fit a signed head, for a person."""

    topic: str
    partition: int
    offset: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.topic} partition {self.partition} offset {self.offset}{seq}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Anchor:
    """The highest signed head found on the partition."""

    seq: int
    hash: str
    offset: int
    signed_at_ms: int
    """The latest signing time of this head (heartbeats sign it again)."""
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class PartitionVerdict:
    topic: str
    partition: int
    records: int
    verified: int
    unconfirmed: int
    unconfirmed_offsets: tuple[int, ...]
    anchor: Anchor | None
    head: ChainHead
    """The last record's seq and hash (as stored)."""
    violations: tuple[Violation, ...]
    broker_time: bool
    """Whether every record carries the broker's append time (the tail time check applies)."""
    checkpoints: int
    """Valid checkpoints of this partition that were checked."""

    @property
    def ok(self) -> bool:
        return not self.violations


def checkpoint_violations(
    seen: Iterable[SeenCheckpoint], keys: Mapping[str, Ed25519PublicKey]
) -> tuple[list[SeenCheckpoint], list[Violation]]:
    """``(valid, violations)``: the checkpoints signed by an accepted key, and one violation per
    other checkpoint (naming the checkpoints topic's partition and offset)."""
    valid: list[SeenCheckpoint] = []
    violations: list[Violation] = []
    for item in seen:
        problem = signature_problem(item.checkpoint, keys)
        if problem is None:
            valid.append(item)
        else:
            violations.append(
                Violation(
                    item.topic,
                    item.partition,
                    item.offset,
                    None,
                    f"checkpoint of audit partition {item.checkpoint.partition} at seq "
                    f"{item.checkpoint.seq}: {problem}",
                )
            )
    return valid, violations


def verify_partition(
    topic: str,
    partition: int,
    records: Sequence[TrailRecord],
    checkpoints: Iterable[SeenCheckpoint],
    *,
    start: TrustedStart | None = None,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
) -> PartitionVerdict:
    """Verify one partition (``records`` in offset order; with ``start``, beginning with the
    record at ``start.offset``). ``checkpoints`` must be this partition's *valid* ones (see
    :func:`checkpoint_violations`)."""
    check = _Check(topic, partition, records)
    valid = [c.checkpoint for c in checkpoints if c.checkpoint.partition == partition]
    if start is not None and not check.holds(start):
        check.violation(
            start.offset,
            start.checkpoint.seq,
            "the record of the trusted checkpoint is gone or changed: the partition was "
            "truncated, deleted and recreated, or rewritten",
        )
        return check.verdict(anchor=None, verified=0, unconfirmed=[], checkpoints=len(valid))
    base_seq = start.checkpoint.seq if start is not None else 0
    # checkpoints below a trusted start sign records that were not read again
    relevant = [c for c in valid if c.seq > base_seq]
    if start is not None:
        relevant.append(start.checkpoint)

    anchor = check.anchor(relevant)
    on_chain = check.signed_chain(anchor, base_seq) if anchor is not None else {}
    check.outside_chain(anchor, on_chain)
    check.unfitting(relevant, anchor, on_chain)
    unconfirmed = check.tail(anchor, clock_skew_ms)
    verified = sum(1 for i in on_chain.values() if check.intact[i])
    verified -= 1 if start is not None else 0  # the trusted record was verified before
    return check.verdict(
        anchor=anchor, verified=verified, unconfirmed=unconfirmed, checkpoints=len(valid)
    )


class _Check:
    """One partition's verification, step by step (see the module docstring)."""

    def __init__(self, topic: str, partition: int, records: Sequence[TrailRecord]) -> None:
        self.topic = topic
        self.partition = partition
        self.records = records
        self.intact = [_intact(r) for r in records]
        self.violations: list[Violation] = []
        self.by_hash: dict[str, list[int]] = {}
        """stored hash -> indexes of the decodable records carrying it (intact or not)"""
        for i, item in enumerate(records):
            if item.record is not None:
                self.by_hash.setdefault(item.record.hash, []).append(i)

    def violation(self, offset: int, seq: int | None, problem: str) -> None:
        self.violations.append(Violation(self.topic, self.partition, offset, seq, problem))

    def record(self, index: int) -> AuditRecord:
        rec = self.records[index].record
        if rec is None:  # only decodable records are looked up by index
            raise ValueError(f"no record at index {index}")
        return rec

    def holds(self, start: TrustedStart) -> bool:
        """Whether the first record read is the trusted start's, unchanged."""
        if not self.records or self.records[0].offset != start.offset or not self.intact[0]:
            return False
        rec = self.record(0)
        return (rec.seq, rec.hash) == (start.checkpoint.seq, start.checkpoint.hash)

    def find(self, seq: int, hash_: str) -> int | None:
        """The index of the first intact record with ``seq`` and ``hash_``."""
        for i in self.by_hash.get(hash_, ()):
            if self.intact[i] and self.record(i).seq == seq:
                return i
        return None

    def anchor(self, relevant: list[Checkpoint]) -> _Found | None:
        """The highest signed head held by a record, with its latest signing time."""
        for cp in sorted(relevant, key=lambda c: (c.seq, c.signed_at_ms), reverse=True):
            index = self.find(cp.seq, cp.hash)
            if index is not None:
                latest = max(
                    (c for c in relevant if (c.seq, c.hash) == (cp.seq, cp.hash)),
                    key=lambda c: c.signed_at_ms,
                )
                return _Found(index, latest, latest.signed_at_ms)
        return None

    def signed_chain(self, anchor: _Found, base_seq: int) -> dict[int, int]:
        """seq -> index of each record on the chain from the anchor back to seq 1 (or to the
        trusted start at ``base_seq``), through the stored hashes: the signed hash commits to
        each of them. A missing predecessor is a violation, and so is a record on the way whose
        fields no longer match its stored hash (altered in place)."""
        on_chain: dict[int, int] = {}
        index: int | None = anchor.index
        while index is not None:
            rec = self.record(index)
            on_chain[rec.seq] = index
            if not self.intact[index]:
                self.violation(self.records[index].offset, rec.seq, _altered(self.records[index]))
            if rec.seq == base_seq:
                break
            if rec.seq == 1:
                if rec.prev_hash != GENESIS:
                    self.violation(self.records[index].offset, 1, "seq 1 does not start at genesis")
                break
            previous = self.predecessor(index)
            if previous is None:
                self.violation(
                    self.records[index].offset,
                    rec.seq,
                    f"the record before it (seq {rec.seq - 1}) is missing: records below the "
                    "signed head were deleted",
                )
            index = previous
        return on_chain

    def predecessor(self, index: int) -> int | None:
        """The first record before ``index`` that it links to."""
        rec = self.record(index)
        for i in self.by_hash.get(rec.prev_hash, ()):
            if i < index and self.record(i).seq == rec.seq - 1:
                return i
        return None

    def outside_chain(self, anchor: _Found | None, on_chain: Mapping[int, int]) -> None:
        """Every record up to the anchor that is not on the signed chain is a violation."""
        if anchor is None:
            return
        chain = set(on_chain.values())
        for i in range(anchor.index):
            if i not in chain:
                item = self.records[i]
                self.violation(item.offset, _seq(item), self.outside_problem(i, on_chain))

    def outside_problem(self, index: int, on_chain: Mapping[int, int]) -> str:
        item = self.records[index]
        if not self.intact[index]:
            return _altered(item)
        rec = self.record(index)
        genuine = on_chain.get(rec.seq)
        if genuine is not None and self.records[genuine].record == rec:
            return f"a copy of the record at offset {self.records[genuine].offset}: duplicated"
        where = (
            f"; the writer's record at seq {rec.seq} is at offset {self.records[genuine].offset}"
            if genuine is not None
            else ""
        )
        return f"not part of the chain the audit writer signed (forged or inserted){where}"

    def unfitting(
        self, relevant: list[Checkpoint], anchor: _Found | None, on_chain: Mapping[int, int]
    ) -> None:
        """Every signed head must be on the signed chain; one above the anchor fits no record
        (or it would be the anchor): the partition was rewritten or recreated."""
        heads = {(c.seq, c.hash): c for c in sorted(relevant, key=lambda c: c.signed_at_ms)}
        top = anchor.checkpoint.seq if anchor is not None else 0
        for (seq, hash_), cp in sorted(heads.items()):
            mine = on_chain.get(seq)
            if mine is not None:
                if self.record(mine).hash != hash_:
                    self.violation(
                        self.records[mine].offset,
                        seq,
                        f"a checkpoint signed hash {hash_[:16]}… for seq {seq}; the chain "
                        f"holds {self.record(mine).hash[:16]}… (rewritten)",
                    )
                continue
            if seq <= top:
                continue  # below the anchor where the chain broke: reported with the records
            claim = next(
                (r for r in self.records if r.record is not None and r.record.seq == seq), None
            )
            if claim is not None:
                self.violation(
                    claim.offset,
                    seq,
                    f"does not fit the signed head: the writer signed hash {hash_[:16]}… for "
                    f"seq {seq} at {utc(cp.signed_at_ms)} (rewritten from here on)",
                )
            else:
                end = self.records[-1].offset + 1 if self.records else 0
                last = self.records[-1].record if self.records else None
                self.violation(
                    end,
                    seq,
                    f"the signed head seq {seq} (signed at {utc(cp.signed_at_ms)}) is not in the "
                    f"partition, which ends at seq {last.seq if last else 0}: records were "
                    "deleted, or the partition was recreated",
                )

    def tail(self, anchor: _Found | None, clock_skew_ms: int) -> list[int]:
        """The records after the anchor: the offsets of those continuing its chain
        (unconfirmed); the others are violations."""
        start_index = anchor.index + 1 if anchor is not None else 0
        if anchor is not None:
            tips = {anchor.checkpoint.hash: (anchor.checkpoint.seq, -1)}
        else:
            tips = {GENESIS: (0, -1)}
        # hash -> (seq, offset of the first record continuing it, -1 while none does)
        broker_time = all(r.broker_time for r in self.records)
        limit = anchor.signed_at_ms - clock_skew_ms if anchor and broker_time else None
        unconfirmed: list[int] = []
        for i in range(start_index, len(self.records)):
            item = self.records[i]
            if not self.intact[i]:
                self.violation(item.offset, _seq(item), _altered(item))
                if item.record is not None:  # go on from it as stored, as verify_chain does
                    tips[item.record.hash] = (item.record.seq, -1)
                continue
            rec = self.record(i)
            if limit is not None and anchor is not None and item.timestamp_ms < limit:
                self.violation(
                    item.offset,
                    rec.seq,
                    f"appended at {utc(item.timestamp_ms)} (broker time), before the audit "
                    f"writer signed its head at seq {anchor.checkpoint.seq} at "
                    f"{utc(anchor.signed_at_ms)}: not written by the audit writer",
                )
                continue
            tip = tips.get(rec.prev_hash)
            if tip is None or tip[0] != rec.seq - 1:
                self.violation(item.offset, rec.seq, "does not continue the chain (broken link)")
                tips[rec.hash] = (rec.seq, -1)  # go on from it as stored
                continue
            if tip[1] >= 0:
                self.violation(
                    item.offset,
                    rec.seq,
                    f"a fork: the record at offset {tip[1]} also follows seq {rec.seq - 1}; at "
                    "most one of them was written by the audit writer",
                )
                tips[rec.hash] = (rec.seq, -1)  # either branch may be the writer's: follow both
                continue
            tips[rec.prev_hash] = (tip[0], item.offset)
            tips[rec.hash] = (rec.seq, -1)
            unconfirmed.append(item.offset)
        return unconfirmed

    def verdict(
        self, *, anchor: _Found | None, verified: int, unconfirmed: list[int], checkpoints: int
    ) -> PartitionVerdict:
        last = self.records[-1].record if self.records else None
        found = None
        if anchor is not None:
            cp = anchor.checkpoint
            offset = self.records[anchor.index].offset
            found = Anchor(cp.seq, cp.hash, offset, anchor.signed_at_ms, cp)
        return PartitionVerdict(
            topic=self.topic,
            partition=self.partition,
            records=len(self.records),
            verified=verified,
            unconfirmed=len(unconfirmed),
            unconfirmed_offsets=tuple(unconfirmed),
            anchor=found,
            head=ChainHead(last.seq, last.hash) if last is not None else ChainHead(),
            violations=tuple(sorted(self.violations, key=lambda v: (v.topic, v.offset))),
            broker_time=all(r.broker_time for r in self.records),
            checkpoints=checkpoints,
        )


@dataclass(frozen=True, slots=True)
class _Found:
    index: int
    checkpoint: Checkpoint
    """The latest checkpoint of the anchor's head."""
    signed_at_ms: int


def utc(ms: int) -> str:
    """A time in milliseconds since the epoch, for a person (UTC, to the millisecond)."""
    stamp = datetime.fromtimestamp(ms / 1000, UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"


def _intact(item: TrailRecord) -> bool:
    rec = item.record
    return rec is not None and record_digest(rec, rec.prev_hash, rec.seq) == rec.hash


def _seq(item: TrailRecord) -> int | None:
    return item.record.seq if item.record is not None else None


def _altered(item: TrailRecord) -> str:
    if item.record is None:
        return "undecodable: not an audit record"
    return "content altered: the record's hash does not match its fields"
