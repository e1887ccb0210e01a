"""The whole system as separate processes on a real Kafka cluster, for the fault tests.

:class:`System` applies an isolated copy of the topology (a topic prefix), publishes the
simulator's reference data and runs the routing worker, the Exstream emulator, the bulk sink and
(when delivery callbacks are on) the webhook receiver as processes, the way ``air-exstream demo``
does; a test kills and restarts whatever it likes in between. :meth:`System.sample` records how
far routing, composition and callbacks got (:class:`Progress` turns the samples into throughput
and stall figures). The ``check_*`` functions read back what came out (read_committed), assert
the system's guarantees and return the figures a test reports.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition

from streams.audit.cli import audit as audit_cli
from streams.codec import codec_for
from streams.demo.processes import (
    ProcessFailed,
    ServiceProcess,
    WorkerProcess,
    committed,
    end_offsets,
    free_port,
    scrape_counters,
    wait_http,
)
from streams.domain import delivery
from streams.domain.ids import audit_id
from streams.domain.records import (
    AccountEvent,
    AuditKind,
    AuditRecord,
    CommunicationStatus,
    CompositionCommand,
    DeadLetter,
    DeliveryEvent,
)
from streams.routing.watchdog import EXIT_STUCK
from streams.simulator.generator import Dataset, SimEvent
from streams.simulator.publish import PublishReport, publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.e2e.helpers import event_id_of, ledger_of
from tests.e2e.reference import Expected, expected_outcome
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

STALL_S = 180.0
"""How long nothing may move before a wait fails."""
CONFIRMED = frozenset(
    {"MAILED", "EMAIL_DELIVERED", "EMAIL_OPENED", "WEB_POSTED", "SMS_DELIVERED", "PUSH_DELIVERED"}
)
DUMP_WAIT_S = 3.0
"""How long a stuck worker is given to write its task stacks after SIGUSR1."""
DUMP_LINES = 400


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback)
        result: dict[str, Any] = orjson.loads(response.read())
        return result


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Seconds since the progress log started."""
    routed: int
    """Input events whose offsets the worker committed (so routed, exactly once)."""
    documents: int
    """Documents the emulator composed."""
    callbacks: int
    """Delivery callbacks the emulator got a 2xx for."""


@dataclass
class Progress:
    """Samples over time, and the rates and stalls read from them."""

    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    slow_emulator_reads: int = 0
    """Samples skipped because the emulator did not answer within its read timeout."""

    def now(self) -> float:
        return time.monotonic() - self.started

    def routed_at(self, moment: float) -> int:
        """Events routed by ``moment`` (the last sample taken at or before it)."""
        return max((s.routed for s in self.samples if s.at <= moment), default=0)

    def rate(self, start: float, end: float) -> float:
        """Events routed per second between two moments."""
        span = end - start
        return (self.routed_at(end) - self.routed_at(start)) / span if span > 0 else 0.0

    def stall_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` until a commit moved routing past where it stood then
        (None when it never did)."""
        before = self.routed_at(moment)
        return next((s.at - moment for s in self.samples if s.at > moment and s.routed > before),
                    None)  # fmt: skip

    def timeline(self, every_s: float = 15.0) -> str:
        """One ``t=..s routed=.. documents=..`` entry per ``every_s`` seconds."""
        shown: list[str] = []
        next_at = 0.0
        for s in self.samples:
            if s.at >= next_at:
                shown.append(f"t={s.at:.0f}s routed={s.routed} documents={s.documents}")
                next_at = s.at + every_s
        return "; ".join(shown)


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL of a process and its restart."""

    process: str
    at_s: float
    """Seconds since the progress log started."""
    sample: Sample
    """Progress at the moment of the kill."""
    down_s: float
    in_hand: int | None
    """Work the process held when it died (batches in flight, callbacks queued), if asked."""


class System:
    """One isolated copy of the system (its own topic prefix, groups and ports) on ``bootstrap``.

    ``profile`` picks the topology's replication (``production``: 3 replicas, min ISR 2);
    ``worker_env`` adds worker settings; ``emulator_args`` are the Exstream side's weather.
    Without ``callbacks`` the emulator posts no delivery callbacks and no webhook receiver runs.
    Per-run secrets are generated here and never printed. A context manager: every process it
    started is stopped on exit.
    """

    def __init__(
        self,
        bootstrap: str,
        workdir: Path,
        *,
        profile: str = "local",
        worker_env: Mapping[str, str] | None = None,
        emulator_args: Sequence[str] = (),
        callbacks: bool = True,
        supervise: bool = False,
    ) -> None:
        self.bootstrap = bootstrap
        self.supervise = supervise
        """Restart a worker that exits after a missed commit deadline (status ``EXIT_STUCK``), as
        its supervisor would in production; any other exit still fails the test."""
        self.worker_restarts: list[float] = []
        """``time.monotonic()`` of each such restart."""
        self.prefix = f"f{uuid.uuid4().hex[:6]}."
        self.topology: Topology = load_topology(profile, prefix=self.prefix)
        self.conf = {"bootstrap.servers": bootstrap}
        self.inputs = [
            self.topology.name(names.ACCOUNT_EVENTS),
            self.topology.name(names.CASE_EVENTS),
        ]
        env = {"AIR_EXSTREAM_TOPOLOGY_PROFILE": profile}
        self.workdir = workdir
        self._worker_env = {**env, **(worker_env or {})}
        self.worker = WorkerProcess(
            bootstrap, self.prefix, f"router-{uuid.uuid4().hex[:6]}", workdir,
            env=self._worker_env,
        )  # fmt: skip
        self.extra_workers: list[WorkerProcess] = []
        """Routing workers added with :meth:`add_worker` (same group as :attr:`worker`)."""
        self.retired: list[ServiceProcess] = []
        """Processes stopped on purpose (:meth:`retire`): no longer expected to run."""
        client_secret, hook_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        port, hook_port = free_port(), free_port()
        self.emulator_url = f"http://127.0.0.1:{port}"
        self.hook_url = f"http://127.0.0.1:{hook_port}"
        hook = ["--events-url", f"{self.hook_url}/hooks/exstream"] if callbacks else []
        self.emulator = ServiceProcess(
            "emulator",
            ["exstream-emulator", "--port", str(port), *hook, *emulator_args],
            workdir,
            {"EXSTREAM_CLIENT_SECRET": client_secret, "EXSTREAM_WEBHOOK_SECRET": hook_secret},
        )
        self.receiver: ServiceProcess | None = None
        if callbacks:
            self.receiver = ServiceProcess(
                "receiver",
                ["webhook", "--port", str(hook_port), "--prefix", self.prefix,
                 "--no-apply-topology"],
                workdir,
                {**env, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                 "EXSTREAM_WEBHOOK_SECRET": hook_secret},
            )  # fmt: skip
        self.sink_group = f"sink-{uuid.uuid4().hex[:6]}"
        sink_port = free_port()
        self.sink_metrics_url = f"http://127.0.0.1:{sink_port}/metrics"
        self.sink = ServiceProcess(
            "sink",
            ["sink", "--prefix", self.prefix, "--exstream-url", self.emulator_url,
             "--group-id", self.sink_group, "--metrics-port", str(sink_port)],
            workdir,
            {**env, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_CLIENT_SECRET": client_secret},
        )  # fmt: skip
        self._probe: Consumer | None = None
        self._input_tps: list[TopicPartition] = []

    @property
    def processes(self) -> list[ServiceProcess]:
        """The processes expected to be running (those retired on purpose aside)."""
        services = [self.worker, *self.extra_workers, self.emulator, self.sink]
        services += [self.receiver] if self.receiver is not None else []
        return [p for p in services if not any(p is r for r in self.retired)]

    def name(self, logical: str) -> str:
        return self.topology.name(logical)

    # ------------------------------------------------------------------ lifecycle

    def start(self, dataset: Dataset) -> None:
        """Topics, reference data, then every process; returns once the worker holds the
        preferences (events published after that are joined with them) and the Exstream side
        answers."""
        apply_topology(self.conf, self.topology)
        publish_reference(dataset, self.topology, self.conf)
        publish_synced_templates(dataset.templates, self.topology, self.conf)
        self.worker.start()
        self.emulator.start()
        wait_http(f"{self.emulator_url}/_emulator/healthz", self.emulator, timeout_s=60)
        if self.receiver is not None:
            self.receiver.start()
            wait_http(f"{self.hook_url}/healthz", self.receiver, timeout_s=60)
        self.sink.start()
        self._input_tps = list(end_offsets(self.bootstrap, self.inputs))
        # log_level 0: a coordinator that vanishes mid-test is expected, and asked again
        self._probe = Consumer({**self.conf, "group.id": self.worker.app_id, "log_level": 0})
        preferences = end_offsets(self.bootstrap, [self.name(names.PREFERENCES)])
        deadline = time.monotonic() + 180
        while not self._committed_all(preferences):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ProcessFailed(f"no preferences loaded:\n{self.worker.tail()}")
            time.sleep(0.5)

    def add_worker(self, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Start one more routing worker in the group of :attr:`worker` (same app id, settings
        plus ``env``), with its own data dir and log under ``<workdir>/worker-<n>``."""
        workdir = self.workdir / f"worker-{len(self.extra_workers) + 2}"
        workdir.mkdir(parents=True, exist_ok=True)
        worker = WorkerProcess(
            self.bootstrap, self.prefix, self.worker.app_id, workdir,
            env={**self._worker_env, **(env or {})},
        )  # fmt: skip
        self.extra_workers.append(worker)
        worker.start()
        return worker

    def retire(self, process: ServiceProcess, *, kill: bool, wait_s: float = 120.0) -> int | None:
        """Take ``process`` out of the run for good: SIGKILL, or SIGTERM and wait up to
        ``wait_s`` for it to exit by itself. Returns its exit status (None: it did not exit in
        time after SIGTERM, and was then SIGKILLed)."""
        self.retired.append(process)
        proc = process.proc
        assert proc is not None, f"{process.name} never started"
        assert proc.poll() is None, f"{process.name} is not running"
        if kill:
            process.kill()
            return proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return None

    def publish(self, events: list[SimEvent], *, seed: int) -> PublishReport:
        return publish_events(events, self.topology, self.conf, seed=seed)

    def restart(self, process: ServiceProcess) -> None:
        process.start()
        if process is self.receiver:
            wait_http(f"{self.hook_url}/healthz", process, timeout_s=60)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.alive():
                continue
            if process is self.worker and self.supervise and self.worker_exit() == EXIT_STUCK:
                self.worker_restarts.append(time.monotonic())
                process.start()
                continue
            raise ProcessFailed(f"{process.name} exited:\n{process.tail()}")

    def worker_exit(self) -> int | None:
        """The worker's exit status, None while it runs."""
        proc = self.worker.proc
        return None if proc is None else proc.poll()

    def stop(self) -> None:
        for process in (self.sink, self.receiver, self.emulator, *self.extra_workers, self.worker):
            if process is not None:
                process.stop()
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def __enter__(self) -> System:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ progress

    def _committed_all(self, ends: Mapping[TopicPartition, int]) -> bool:
        assert self._probe is not None
        done = committed(self._probe, list(ends))
        return all(done.get(tp, -1) >= end for tp, end in ends.items() if end > 0)

    def consumed(self, topics: list[str]) -> bool:
        """True when the routing workers' group committed every record of ``topics`` written so
        far (False too while the coordinator cannot say)."""
        return self._committed_all(end_offsets(self.bootstrap, topics))

    def routed(self) -> int | None:
        """Input events the worker committed, or None while the group coordinator cannot say."""
        assert self._probe is not None, "start() first"
        done = committed(self._probe, self._input_tps)
        if not done:
            return None
        return sum(max(done.get(tp, 0), 0) for tp in self._input_tps)

    def emulator_stats(self) -> dict[str, Any]:
        return get_json(f"{self.emulator_url}/_emulator/stats")

    def sink_inflight(self) -> int:
        """Batches the sink has submitted and not yet committed (0 when it cannot say)."""
        counters = scrape_counters(self.sink_metrics_url, "air_exstream_sink_")
        return int(counters.get("inflight_batches", 0))

    def callbacks_queued(self) -> int:
        """Delivery callbacks the emulator still has to post."""
        return int(self.emulator_stats()["events_queued"])

    def sample(self, progress: Progress) -> Sample | None:
        """Record the current progress (None when the broker or the emulator could not answer
        in time: on two cores shared by three brokers, the worker, the sink and the emulator
        composing dozens of batches at once, a ledger read once took over 10 s; a process that
        died is :meth:`check_alive`'s, one that stays stuck :meth:`run_until`'s stall check)."""
        routed = self.routed()
        if routed is None:
            return None
        try:
            documents = int(ledger_of(self.emulator_url)["documents"])
            callbacks = int(self.emulator_stats().get("events_delivered", 0))
        except TimeoutError:
            progress.slow_emulator_reads += 1
            return None
        s = Sample(progress.now(), routed, documents, callbacks)
        progress.samples.append(s)
        return s

    def run_until(
        self,
        progress: Progress,
        done: Callable[[Sample], bool],
        *,
        what: str,
        every_s: float = 0.5,
        stall_s: float = STALL_S,
    ) -> Sample:
        """Sample until ``done(sample)``. Fails when a process died, or when nothing moved
        (routing, composition, callbacks) for ``stall_s``: on a busy machine slow is fine,
        stuck is not."""
        last: Sample | None = None
        moved = time.monotonic()
        while True:
            self.check_alive()
            s = self.sample(progress)
            if s is not None:
                if last is None or (s.routed, s.documents, s.callbacks) != (
                    last.routed, last.documents, last.callbacks
                ):  # fmt: skip
                    moved = time.monotonic()
                last = s
                if done(s):
                    return s
            if time.monotonic() - moved > stall_s:
                raise ProcessFailed(
                    f"waiting for {what}: no progress for {stall_s:.0f} s (last: {last}); "
                    f"the worker's and the sink's tasks:\n{self._dump_tasks()}"
                )
            time.sleep(every_s)

    def _dump_tasks(self) -> str:
        """Ask the stuck worker and sink for the stack of every asyncio task (SIGUSR1: each
        writes them to its log) and return the end of both logs, so a stall in CI shows where
        each is stuck."""
        asked = [
            p for p in (self.worker, self.sink) if p.proc is not None and p.proc.poll() is None
        ]
        for p in asked:
            assert p.proc is not None
            p.proc.send_signal(signal.SIGUSR1)
        if asked:
            time.sleep(DUMP_WAIT_S)
        return "\n".join(
            f"---- {p.name} ({p.log}):\n{p.tail(DUMP_LINES)}" for p in (self.worker, self.sink)
        )

    def kill_and_restart(
        self,
        process: ServiceProcess,
        progress: Progress,
        when: Callable[[Sample], bool],
        *,
        down_s: float,
        in_hand: Callable[[], int] | None = None,
    ) -> Kill:
        """SIGKILL ``process`` at the first sample satisfying ``when`` (and, with ``in_hand``,
        as soon as that reports work the process holds, polled every 10 ms for up to 30 s);
        restart it ``down_s`` later."""
        moment = self.run_until(progress, when, every_s=0.2, what=f"killing {process.name}")
        held = None if in_hand is None else in_hand()
        deadline = time.monotonic() + 30.0
        while in_hand is not None and not held and time.monotonic() < deadline:
            time.sleep(0.01)
            held = in_hand()
        process.kill()
        at = progress.now()
        time.sleep(down_s)
        self.restart(process)
        return Kill(process.name, at, moment, down_s, held)

    def wait_settled(self, progress: Progress, *, events: int) -> float:
        """Until every event is routed, every command (fallbacks too) is a document, every
        callback was answered, the worker consumed every delivery event and the statuses stopped
        changing; fails when none of that moved for :data:`STALL_S`. Returns the moment
        (progress clock) it settled."""
        self.run_until(progress, lambda s: s.routed >= events, what="routing of every event")
        delivery_topic = [self.name(names.DELIVERY_EVENTS)]
        seen: tuple[Any, ...] = ()
        moved = time.monotonic()
        stable = 0
        while stable < 3:
            self.check_alive()
            time.sleep(2.0)
            commands = sum(1 for _ in read_topic(self.bootstrap, self.name(names.COMMANDS)))
            statuses = sum(
                1 for _ in read_topic(self.bootstrap, self.name(names.COMMUNICATION_STATUS))
            )
            stats = self.emulator_stats()
            consumed = self._committed_all(end_offsets(self.bootstrap, delivery_topic))
            state = (self.sample(progress), commands, statuses, consumed, stats)
            settled = (
                state[0] is not None
                and ledger_of(self.emulator_url)["communications"] >= commands
                and consumed
                and stats.get("events_delivered", 0) + stats.get("events_abandoned", 0)
                >= stats.get("events_enqueued", 0)
                and not stats["events_queued"]
            )
            stable = stable + 1 if settled and state[1:3] == seen[1:3] else 0
            if state[1:] != seen[1:]:
                moved = time.monotonic()
            elif time.monotonic() - moved > STALL_S:
                raise ProcessFailed(f"the system stopped short of settling: {state}")
            seen = state
        return progress.now()


# ---------------------------------------------------------------------- the expected outcome


def expected_for(dataset: Dataset, system: System) -> Expected:
    """What routing must emit for ``dataset`` (the independent reference model)."""
    account, case = system.inputs
    return expected_outcome(
        dataset, source_topics=lambda e: account if isinstance(e, AccountEvent) else case
    )


# ---------------------------------------------------------------------- checks


def check_documents(system: System, expected_ids: set[str]) -> dict[str, int]:
    """The emulator composed exactly ``expected_ids``, each once (it composes whatever it is sent:
    once is the sink's doing)."""
    ledger = get_json(f"{system.emulator_url}/_emulator/ledger?entries=1")
    per_id = Counter(str(e["communication_id"]) for e in ledger["entries"])
    twice = sorted(i for i, n in per_id.items() if n > 1)
    missing = sorted(expected_ids - set(per_id))
    unexpected = sorted(set(per_id) - expected_ids)
    assert twice == [], f"{len(twice)} communications composed more than once, e.g. {twice[:3]}"
    assert missing == [], f"{len(missing)} communications never composed, e.g. {missing[:3]}"
    assert unexpected == [], f"{len(unexpected)} unexpected documents, e.g. {unexpected[:3]}"
    return {
        "documents": int(ledger["documents"]),
        "lost": len(missing),
        "duplicated": len(twice),
    }


def check_commands(system: System, expected: Expected) -> tuple[set[str], int]:
    """Routing's commands on the commands topic are exactly the reference's, record for record,
    each once; returns every
    command id on the topic (routing's, and the fallbacks tracking made after email bounces) and
    the fallback count."""
    codec = codec_for(CompositionCommand)
    commands = [
        codec.decode(r.value or b"")
        for r in read_topic(system.bootstrap, system.name(names.COMMANDS))
    ]
    ids = Counter(c.communication_id for c in commands)
    twice = [i for i, n in ids.items() if n > 1]
    assert twice == [], f"{len(twice)} commands written twice, e.g. {twice[:3]}"
    missing = set(expected.commands) - set(ids)
    assert missing == set(), f"{len(missing)} expected commands missing"
    differing = [
        c.communication_id
        for c in commands
        if c.communication_id in expected.commands and c != expected.commands[c.communication_id]
    ]
    assert differing == [], f"commands differ from the reference, e.g. {differing[:3]}"
    fallbacks = set(ids) - set(expected.commands)
    possible = {
        delivery.fallback_communication_id(c.communication_id, channel)
        for c in expected.commands.values()
        if c.channel == "EMAIL"
        for channel in ("PRINT", "WEB")
    }
    assert fallbacks <= possible, "a command that is neither routing's nor a bounce's fallback"
    return set(ids), len(fallbacks)


def check_dead_letters(system: System, dataset: Dataset, expected: Expected) -> list[DeadLetter]:
    """Every invalid event, and nothing else, is dead-lettered once with its reason."""
    account = system.inputs[0]
    codec = codec_for(DeadLetter)
    dead = [
        codec.decode(r.value or b"")
        for topic in system.inputs
        for r in read_topic(system.bootstrap, names.dlq(topic))
    ]
    assert all(d.reason and d.error_type for d in dead)
    semantic = Counter(i for i in (event_id_of(d, account) for d in dead) if i is not None)
    assert [i for i, n in semantic.items() if n > 1] == [], "an event dead-lettered twice"
    assert set(semantic) == expected.dead_lettered_event_ids
    assert len(dead) == len(expected.dead_lettered_event_ids) + expected.byte_level_invalid
    assert len(dead) == len(dataset.invalid_events)
    return dead


def check_audit(
    system: System,
    *,
    commands: Iterable[str],
    dead_letters: Iterable[DeadLetter],
    composed: Iterable[str] = (),
) -> int:
    """The audit trail holds, once each, a COMMAND_EMITTED record per command, a DEAD_LETTER
    record per dead letter, a DOCUMENT_PRODUCED record per ``composed`` communication and every
    record that went through the intake topic (waiting while the worker catches up); and
    ``audit verify`` passes. Returns the number of audit records."""
    codec = codec_for(AuditRecord)
    wanted = {audit_id(AuditKind.COMMAND_EMITTED, c) for c in commands}
    wanted |= {audit_id(AuditKind.DOCUMENT_PRODUCED, c) for c in composed}
    wanted |= {
        audit_id(AuditKind.DEAD_LETTER, f"{d.source_topic}/{d.source_partition}/{d.source_offset}")
        for d in dead_letters
    }
    intake = system.name(names.AUDIT_INTAKE)
    wanted |= {codec.decode(r.value or b"").audit_id for r in read_topic(system.bootstrap, intake)}
    ids = _audit_ids(system, wanted)
    absent = wanted - set(ids)
    assert absent == set(), f"{len(absent)} audit records missing, e.g. {sorted(absent)[:3]}"
    twice = [i for i, n in ids.items() if n > 1]
    assert twice == [], f"{len(twice)} audit records written twice, e.g. {twice[:3]}"
    result = CliRunner().invoke(
        audit_cli, ["verify", "--bootstrap-servers", system.bootstrap, "--prefix", system.prefix]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    return sum(ids.values())


def _audit_ids(system: System, wanted: set[str]) -> Counter[str]:
    """The audit ids on the audit topic (committed), read in one pass as they arrive: until every
    ``wanted`` id was seen and nothing more came for a few seconds, or nothing at all came for
    :data:`STALL_S`."""
    codec = codec_for(AuditRecord)
    consumer = Consumer(
        {
            **system.conf,
            "group.id": f"fault-audit-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    ids: Counter[str] = Counter()
    missing = set(wanted)
    moved = time.monotonic()
    try:
        consumer.subscribe([system.name(names.AUDIT)])
        while time.monotonic() - moved < (5.0 if not missing else STALL_S):
            system.check_alive()
            got = [m for m in consumer.consume(5_000, timeout=1.0) if m.error() is None]
            for m in got:
                audit = codec.decode(m.value() or b"").audit_id
                ids[audit] += 1
                missing.discard(audit)
            if got:
                moved = time.monotonic()
    finally:
        consumer.close()
    return ids


def check_delivery(system: System, composed_ids: set[str]) -> dict[str, int]:
    """Every delivery event the emulator emitted is on the delivery-events topic (written twice
    at most when its answer was lost); Air Inc.'s status topic repeats no status of a
    communication, and each communication's final status is the furthest its delivery events
    went."""
    stats = system.emulator_stats()
    event_codec = codec_for(DeliveryEvent)
    events: dict[str, list[DeliveryEvent]] = defaultdict(list)
    copies: Counter[str] = Counter()
    for r in read_topic(system.bootstrap, system.name(names.DELIVERY_EVENTS)):
        e = event_codec.decode(r.value or b"")
        if copies[e.event_id] == 0:
            events[e.communication_id].append(e)
        copies[e.event_id] += 1
    assert stats.get("events_abandoned", 0) == 0, stats
    assert len(copies) == stats["events_enqueued"], "every delivery event reached Kafka"
    assert set(events) == composed_ids, "every composed communication reported its delivery"

    status_codec = codec_for(CommunicationStatus)
    statuses: dict[str, list[str]] = defaultdict(list)
    total = 0
    for r in read_topic(system.bootstrap, system.name(names.COMMUNICATION_STATUS)):
        s = status_codec.decode(r.value or b"")
        total += 1
        if s.exception_code != "SLA_BREACHED":  # at-least-once by design (a timer)
            statuses[s.communication_id].append(s.status)
    repeated = {c: ss for c, ss in statuses.items() if len(ss) != len(set(ss))}
    assert repeated == {}, f"{len(repeated)} communications with a repeated status"
    wrong = {}
    for com_id, evs in events.items():
        furthest = max((e.status for e in evs), key=delivery.rank)
        final = statuses.get(com_id, [])
        if not final or final[-1] != furthest:
            wrong[com_id] = ([e.status for e in evs], final)
    assert wrong == {}, f"{len(wrong)} final statuses differ, e.g. {list(wrong.items())[:2]}"
    return {
        "delivery_events": len(copies),
        "written_twice": sum(1 for n in copies.values() if n > 1),
        "statuses": total,
        "confirmed": sum(1 for ss in statuses.values() if ss and ss[-1] in CONFIRMED),
        "bounced": sum(1 for ss in statuses.values() if "EMAIL_BOUNCED" in ss),
    }
