"""The routing decision per event on one core, without Kafka: ``python -m benchmarks decision``.

Workload: the routing benchmark's seeded dataset (``streams.simulator.generator``: seed 7, 1,000
customers, ``BENCH_DECISION_EVENTS`` events, 3 % invalid, 10 % of the valid ones as JSON, 5 %
repeats), each event as the exact bytes the simulator publishes (Avro single-object encoding,
JSON with its content-type header, random garbage, truncated Avro), with the key, topic and
partition it would have. Every record is processed as the routing worker processes it: decode
(or dead-letter), the customer's preference and suppression state, the decision, the commands,
alerts and dead letters encoded, every audit record chained on its partition and encoded, the
state written back when it changed.

Measured: the fast path as a worker keeping its state decoded in memory runs it: the codec of
``streams.codec`` (compiled Avro bodies, compiled JSON check), preferences held as decoded
``Preference`` objects (decoded once when a preference record arrives: reported per record,
not per event), suppression entries held as ``SuppressionEntry`` objects per customer,
``route_indexed`` with a ``ReferenceIndex`` built once, ``streams.audit.chain.append`` on chain
heads held as objects. The changelog values (``streams.codec.state``) are serialised for every
event that changes them, although a worker writing one changelog record per key per transaction
does it less often.

Baseline (same run, same records): the path the routing worker runs today with the code as first
written, frozen in ``benchmarks/baseline``: the first codec (fastavro ``schemaless_writer``/
``schemaless_reader`` through dicts, fastavro ``validate`` on JSON), the preference decoded from
its table's Avro bytes and the suppression state from its table's JSON for every event,
``route_event`` over every rule and template version, the chain head read from and written to its
table's JSON for every audit record.

Both sides must write byte-identical outputs (commands, alerts, dead letters, audit records, in
order, and the same suppression changelog values): the run fails otherwise. Figures: events per
CPU second (``time.process_time``) over the whole loop, median of ``BENCH_REPETITIONS`` runs,
sides alternating; then a per-stage breakdown from one instrumented run of each side
(``time.thread_time_ns``, CPU time, around each stage, the timer's own cost subtracted), in
microseconds per event. CPU time rather than wall-clock time, so that other processes on a
shared machine inflate neither.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import statistics
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from benchmarks.baseline.chain import append as baseline_append
from benchmarks.baseline.codec import BaselineCodec
from benchmarks.baseline.routing import route_event as baseline_route_event
from benchmarks.baseline.state import dump_head, dump_suppression, load_head, load_suppression
from benchmarks.common import machine
from streams.audit.chain import ChainHead, append
from streams.codec import CodecError, codec_for
from streams.codec.state import encode_chain_head, encode_suppression
from streams.deadletter.letters import make_dead_letter
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    AuditRecord,
    CaseEvent,
    CompositionCommand,
    DeadLetter,
    Preference,
    TemplateVersion,
)
from streams.domain.reference_index import ReferenceIndex
from streams.domain.routing import RoutingOutcome, route_indexed
from streams.domain.suppression import SuppressionEntry
from streams.simulator.generator import Dataset, Scenario, generate, template_key
from streams.simulator.publish import event_bytes

EVENTS = int(os.environ.get("BENCH_DECISION_EVENTS", "20000"))
REPETITIONS = int(os.environ.get("BENCH_REPETITIONS", "3"))
GOAL = 10_000.0
"""Events per CPU second the decision must reach (issue 14)."""
CUSTOMERS = 1_000  # as benchmarks/routing.py
INVALID_SHARE = 0.03  # as benchmarks/routing.py
SEED = 7  # as benchmarks/routing.py
PARTITIONS = 6  # customer_partitions in topology/topics.toml
GRACE_MS = 30 * 24 * 3_600_000
"""The routing worker's default ``suppression_grace_ms``: ``now_ms`` is the event time minus it."""
ACCOUNT_TOPIC = "air.account-events.v1"
CASE_TOPIC = "air.case-events.v1"
STAGES = ("decode", "state_in", "route", "encode_outputs", "audit", "state_out")
STAGE_TEXT = {
    "decode": "decode the event (or dead-letter it)",
    "state_in": "the customer's preference and suppression state",
    "route": "the decision (route_event / route_indexed)",
    "encode_outputs": "encode commands, alerts and dead letters",
    "audit": "chain and encode the audit records",
    "state_out": "store the suppression state (and chain heads)",
}


COUNTED = ("commands", "alerts", "audit", "dead_letters")


@dataclass(frozen=True, slots=True)
class Input:
    """One record as the worker receives it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes | None]] | None
    is_case: bool


@dataclass(slots=True)
class Output:
    """What one side wrote, in order."""

    records: list[bytes] = field(default_factory=list)
    changelog: list[bytes] = field(default_factory=list)
    """Suppression state values, one per event that changed a customer's entries."""
    heads: list[bytes] = field(default_factory=list)
    """Chain head values (the baseline writes one per audit record, the fast path per event)."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))

    def digest(self) -> str:
        h = hashlib.sha256()
        for record in self.records:
            h.update(len(record).to_bytes(4, "big"))
            h.update(record)
        return h.hexdigest()


def dataset(events: int = EVENTS) -> Dataset:
    return generate(
        Scenario(seed=SEED, customers=CUSTOMERS, events=events, invalid_share=INVALID_SHARE)
    )


def inputs(data: Dataset) -> list[Input]:
    """Each event's record as published (seeded corruption for the byte-level invalid ones)."""
    rng = random.Random(SEED)
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for sim in data.events:
        value, headers = event_bytes(sim, rng)
        key = sim.record.customer_id.encode()
        partition = zlib.crc32(key) % PARTITIONS
        out.append(
            Input(
                topic=CASE_TOPIC if isinstance(sim.record, CaseEvent) else ACCOUNT_TOPIC,
                partition=partition,
                offset=offsets[partition],
                key=key,
                value=value,
                headers=[(k, v if isinstance(v, bytes | None) else v.encode()) for k, v in headers]
                if headers
                else None,
                is_case=isinstance(sim.record, CaseEvent),
            )
        )
        offsets[partition] += 1
    return out


def dead_letter_for(inp: Input, error_type: str, reason: str) -> DeadLetter:
    return make_dead_letter(
        source_topic=inp.topic,
        partition=inp.partition,
        offset=inp.offset,
        key=inp.key,
        value=inp.value,
        headers=inp.headers or (),
        error_type=error_type,
        reason=reason,
        failed_at=0,
    )


class Timer:
    """Stage clock of the instrumented run (a no-op in the timed runs)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.ns = dict.fromkeys(STAGES, 0)
        self.laps = dict.fromkeys(STAGES, 0)
        self._last = 0

    def start(self) -> None:
        if self.enabled:
            self._last = time.thread_time_ns()

    def lap(self, stage: str) -> None:
        if self.enabled:
            now = time.thread_time_ns()
            self.ns[stage] += now - self._last
            self.laps[stage] += 1
            self._last = now


def _timer_cost_ns() -> float:
    """What one ``lap`` costs (subtracted from each stage)."""
    timer = Timer(enabled=True)
    n = 100_000
    timer.start()
    started = time.thread_time_ns()
    for _ in range(n):
        timer.lap("decode")
    return (time.thread_time_ns() - started) / n


# ----------------------------------------------------------------------------------- the sides


class Side:
    """One way to process the records; ``run`` processes them all from a fresh state."""

    name = ""

    def run(self, records: list[Input], timer: Timer) -> Output:
        raise NotImplementedError


class BaselineSide(Side):
    """The routing worker's per-event path with the code as first written."""

    name = "baseline"

    def __init__(self, data: Dataset) -> None:
        self.case_codec = BaselineCodec.for_class(CaseEvent)
        self.account_codec = BaselineCodec.for_class(AccountEvent)
        self.pref_codec = BaselineCodec.for_class(Preference)
        self.command_codec = BaselineCodec.for_class(CompositionCommand)
        self.alert_codec = BaselineCodec.for_class(AlignmentAlert)
        self.audit_codec = BaselineCodec.for_class(AuditRecord)
        self.letter_codec = BaselineCodec.for_class(DeadLetter)
        # the preferences table holds the Avro bytes of each customer's latest preference
        self.preference_bytes = {
            p.customer_id.encode(): self.pref_codec.encode(p) for p in data.preferences
        }
        self.rules = list({r.rule_id: r for r in data.rules}.values())
        self.templates_by_id: dict[str, list[TemplateVersion]] = {}
        for t in {template_key(t): t for t in data.templates}.values():
            self.templates_by_id.setdefault(t.template_id, []).append(t)

    def run(self, records: list[Input], timer: Timer) -> Output:
        out = Output()
        suppression: dict[bytes, bytes] = {}
        heads: dict[int, bytes] = {}
        counts = out.counts
        emit = out.records.append
        for inp in records:
            timer.start()
            codec = self.case_codec if inp.is_case else self.account_codec
            try:
                record = codec.decode(inp.value, inp.headers)
            except CodecError as exc:
                timer.lap("decode")
                emit(self.letter_codec.encode(dead_letter_for(inp, exc.code, str(exc))))
                counts["dead_letters"] += 1
                timer.lap("encode_outputs")
                continue
            key = record.customer_id.encode()
            timer.lap("decode")
            raw = self.preference_bytes.get(key)
            preference = self.pref_codec.decode(raw) if raw else None
            state = load_suppression(suppression.get(key))
            timer.lap("state_in")
            outcome = baseline_route_event(
                record,
                source_topic=inp.topic,
                preference=preference,
                rules=self.rules,
                templates_by_id=self.templates_by_id,
                suppression_state=state,
                now_ms=record.occurred_at - GRACE_MS,
            )
            timer.lap("route")
            if outcome.rejection is not None:
                letter = dead_letter_for(inp, outcome.rejection.code, outcome.rejection.reason)
                emit(self.letter_codec.encode(letter))
                counts["dead_letters"] += 1
                timer.lap("encode_outputs")
                continue
            for command in outcome.commands:
                emit(self.command_codec.encode(command))
            for alert in outcome.alerts:
                emit(self.alert_codec.encode(alert))
            counts["commands"] += len(outcome.commands)
            counts["alerts"] += len(outcome.alerts)
            timer.lap("encode_outputs")
            for entry in outcome.audit:
                head = load_head(heads.get(inp.partition))
                chained, head = baseline_append(head, entry)
                emit(self.audit_codec.encode(chained))
                heads[inp.partition] = dump_head(head)
                out.heads.append(heads[inp.partition])
            counts["audit"] += len(outcome.audit)
            timer.lap("audit")
            if outcome.suppression_updates or outcome.expired_keys:
                state.update(outcome.suppression_updates)
                for stale in outcome.expired_keys:
                    state.pop(stale, None)
                suppression[key] = dump_suppression(state)
                out.changelog.append(suppression[key])
            timer.lap("state_out")
        return out


class FastSide(Side):
    """The fast path, with the worker's state kept decoded in memory."""

    name = "measured"

    def __init__(self, data: Dataset) -> None:
        self.account_codec = codec_for(AccountEvent)
        self.case_codec = codec_for(CaseEvent)
        self.command_codec = codec_for(CompositionCommand)
        self.alert_codec = codec_for(AlignmentAlert)
        self.audit_codec = codec_for(AuditRecord)
        self.letter_codec = codec_for(DeadLetter)
        pref_codec = codec_for(Preference)
        encoded = [pref_codec.encode(p) for p in data.preferences]
        started = time.process_time()
        # preferences are decoded once, when their record arrives
        self.preferences = {p.customer_id.encode(): p for p in map(pref_codec.decode, encoded)}
        self.preference_decode_us = (time.process_time() - started) / len(encoded) * 1e6
        rules = list({r.rule_id: r for r in data.rules}.values())
        templates = list({template_key(t): t for t in data.templates}.values())
        started = time.process_time()
        self.index = ReferenceIndex.from_records(rules, templates)
        self.index_build_ms = (time.process_time() - started) * 1e3

    def run(self, records: list[Input], timer: Timer) -> Output:
        out = Output()
        suppression: dict[bytes, dict[str, SuppressionEntry]] = {}
        heads: dict[int, ChainHead] = {}
        counts = out.counts
        emit = out.records.append
        changelog = out.changelog.append
        index = self.index
        for inp in records:
            timer.start()
            codec = self.case_codec if inp.is_case else self.account_codec
            try:
                record = codec.decode(inp.value, inp.headers)
            except CodecError as exc:
                timer.lap("decode")
                emit(self.letter_codec.encode(dead_letter_for(inp, exc.code, str(exc))))
                counts["dead_letters"] += 1
                timer.lap("encode_outputs")
                continue
            key = record.customer_id.encode()
            timer.lap("decode")
            preference = self.preferences.get(key)
            state = suppression.get(key)
            if state is None:
                state = suppression[key] = {}
            timer.lap("state_in")
            outcome: RoutingOutcome = route_indexed(
                record,
                source_topic=inp.topic,
                preference=preference,
                index=index,
                suppression_state=state,
                now_ms=record.occurred_at - GRACE_MS,
            )
            timer.lap("route")
            if outcome.rejection is not None:
                letter = dead_letter_for(inp, outcome.rejection.code, outcome.rejection.reason)
                emit(self.letter_codec.encode(letter))
                counts["dead_letters"] += 1
                timer.lap("encode_outputs")
                continue
            for command in outcome.commands:
                emit(self.command_codec.encode(command))
            for alert in outcome.alerts:
                emit(self.alert_codec.encode(alert))
            counts["commands"] += len(outcome.commands)
            counts["alerts"] += len(outcome.alerts)
            timer.lap("encode_outputs")
            if outcome.audit:
                head = heads.get(inp.partition) or ChainHead()
                for entry in outcome.audit:
                    chained, head = append(head, entry)
                    emit(self.audit_codec.encode(chained))
                heads[inp.partition] = head
                counts["audit"] += len(outcome.audit)
            timer.lap("audit")
            if outcome.apply_to(state):
                changelog(encode_suppression(state))
            if outcome.audit:
                out.heads.append(encode_chain_head(head))
            timer.lap("state_out")
        return out


# ----------------------------------------------------------------------------------- the runs


def _timed(side: Side, records: list[Input]) -> tuple[float, Output]:
    started = time.process_time()
    output = side.run(records, Timer(enabled=False))
    return len(records) / (time.process_time() - started), output


def _stages(side: Side, records: list[Input], lap_ns: float) -> dict[str, float]:
    timer = Timer(enabled=True)
    gc.collect()
    side.run(records, timer)
    return {
        stage: max(0.0, (ns - lap_ns * timer.laps[stage]) / len(records) / 1e3)
        for stage, ns in timer.ns.items()
    }


def compare(records: list[Input], sides: tuple[Side, Side], repetitions: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {side.name: [] for side in sides}
    outputs: dict[str, Output] = {}
    for _ in range(repetitions):
        for side in sides:
            gc.collect()  # so that one side does not pay for the other's garbage
            rate, output = _timed(side, records)
            rates[side.name].append(rate)
            outputs[side.name] = output
    base, fast = outputs["baseline"], outputs["measured"]
    if (
        base.digest() != fast.digest()
        or base.counts != fast.counts
        or base.changelog != fast.changelog
        or base.heads[-1:] != fast.heads[-1:]
    ):
        raise RuntimeError(
            f"the fast path wrote other records than the baseline: {fast.counts} vs {base.counts}"
        )
    lap_ns = _timer_cost_ns()
    stages = {side.name: _stages(side, records, lap_ns) for side in sides}
    return {"rates": rates, "output": fast, "stages": stages}


def run(events: int = EVENTS, repetitions: int = REPETITIONS) -> dict[str, Any]:
    data = dataset(events)
    records = inputs(data)
    baseline, fast = BaselineSide(data), FastSide(data)
    result = compare(records, (baseline, fast), repetitions)
    rates: dict[str, list[float]] = result["rates"]
    m = statistics.median(rates["measured"])
    b = statistics.median(rates["baseline"])
    output: Output = result["output"]
    stages: dict[str, dict[str, float]] = result["stages"]
    return {
        "benchmark": "decision",
        "unit": "events/CPU-s",
        "measured": {
            "what": "fast path, state decoded in memory (route_indexed, compiled codec)",
            "value": m,
            "runs": rates["measured"],
        },
        "baseline": {
            "what": "the worker's per-event path as first written (benchmarks/baseline)",
            "value": b,
            "runs": rates["baseline"],
        },
        "ratio": m / b,
        "goal": {
            "what": f"the decision at >= {GOAL:,.0f} events per CPU-second (issue 14, goal 1)",
            "value": GOAL,
            "met": m >= GOAL,
        },
        "stages_us_per_event": {
            "what": {stage: STAGE_TEXT[stage] for stage in STAGES},
            "measured": _rounded(stages["measured"]),
            "baseline": _rounded(stages["baseline"]),
            "note": "one instrumented run per side, CPU time per stage, timer cost subtracted",
        },
        "preference_decode_us_per_record": round(fast.preference_decode_us, 2),
        "index_build_ms": round(fast.index_build_ms, 3),
        "outputs": {
            **output.counts,
            "changelog_values": len(output.changelog),
            "sha256": output.digest(),
            "identical_to_baseline": True,
        },
        "config": {
            "events": events,
            "customers": CUSTOMERS,
            "invalid_share": INVALID_SHARE,
            "seed": SEED,
            "repetitions": repetitions,
        },
        "machine": machine(),
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    out = {k: round(v, 2) for k, v in values.items()}
    out["total"] = round(sum(values.values()), 2)
    return out
