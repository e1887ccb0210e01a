"""The engine on the real local broker, with a counting app (input -> per-key count store ->
output, :mod:`tests.engine.counting_app`):

1. a child process running it is SIGKILLed mid-stream and restarted: the output, read
   read_committed, holds each input exactly once and the counts are right (restored from the
   changelog);
2. two processes in one group, the second joining mid-stream (the first keeping the state of
   the partitions it keeps), then the first stopping: nothing lost, nothing doubled, the state
   right on the new owner;
3. alignment: backlogs of two co-partitioned inputs are handed over in timestamp order per
   partition;
4. a handler that raises aborts its transaction: nothing it sent is visible, no offset is
   committed, and ``run`` raises;
5. stores on disk (``state_dir``): restored, written and closed as in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from rocksdict import Rdict

from streams.engine import checkpoint
from streams.engine.api import Record
from streams.engine.engine import Engine, EngineConfig
from streams.engine.errors import HandlerFailed, NotInTransaction
from streams.engine.rocksdb import rocksdb_options
from streams.routing.partitioning import murmur2_partition
from tests.conftest import KafkaCluster, consume, unique
from tests.engine.rocksdb_files import read_closed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3
KEYS = 40


def _produce_inputs(producer: Producer, topic: str, start: int, count: int) -> None:
    """Records ``start..start+count-1``: key ``k<i % KEYS>`` (partitioned by the producer's
    hash), value ``v<i>``."""
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i % KEYS}".encode(), value=f"v{i}".encode())
    producer.flush(30)


def _numbered_input(
    topic_factory: Callable[..., str], producer_factory: Callable[..., Producer], count: int
) -> tuple[str, str]:
    """A one-partition input holding ``count`` records (key ``k``, values ``0``, ``1``...) and an
    empty one-partition output: (input, output)."""
    source = topic_factory("engine-in", partitions=1)
    sink = topic_factory("engine-out", partitions=1)
    producer = producer_factory()
    for i in range(count):
        producer.produce(source, key=b"k", value=str(i).encode())
    producer.flush(30)
    return source, sink


def _numbers(count: int) -> list[bytes]:
    """The values of the first ``count`` records of :func:`_numbered_input`."""
    return [str(i).encode() for i in range(count)]


def _visible(
    consumer_factory: Callable[..., Consumer], topic: str, timeout_s: float
) -> list[bytes]:
    """The values on ``topic``, read_committed, whatever arrives within ``timeout_s``."""
    return [m.value() for m in consume(consumer_factory(topic), 1_000_000, timeout_s=timeout_s)]


def _committed(consumer_factory: Callable[..., Consumer], app_id: str, source: str) -> int:
    """The group ``app_id``'s committed offset of ``source``[0] (negative: none)."""
    check = consumer_factory(**{"group.id": app_id})
    offset: int = check.committed([TopicPartition(source, 0)], timeout=10)[0].offset
    return offset


class _Output:
    """The output topic read read_committed as it grows."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.records: list[tuple[bytes, bytes]] = []

    def read_until(self, count: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while len(self.records) < count and time.monotonic() < deadline:
            self.drain(0.5)
        return len(self.records)

    def drain(self, timeout_s: float) -> None:
        for msg in self.consumer.consume(1000, timeout=timeout_s):
            assert msg.error() is None, msg.error()
            self.records.append((msg.key(), msg.value()))


def _check_exactly_once(records: list[tuple[bytes, bytes]], total: int) -> None:
    """Each input ``v<i>`` once; per key, the counts 1..n in order (the state never lost or
    doubled a record, across restarts and owners)."""
    values = Counter(value.split(b"|")[0] for _key, value in records)
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(total))
    assert [v for v, n in values.items() if n > 1] == []
    counts: dict[bytes, list[int]] = defaultdict(list)
    for key, value in records:
        counts[key].append(int(value.split(b"|")[1]))
    for key, seen in counts.items():
        assert seen == list(range(1, len(seen) + 1)), key


def _expected_counts(total: int) -> dict[str, int]:
    return dict(Counter(f"k{i % KEYS}" for i in range(total)))


class _Apps:
    """Counting-app child processes; each killed at the end of the test."""

    def __init__(self, kafka: KafkaCluster, tmp_path: Path, topics: dict[str, str]) -> None:
        self.kafka = kafka
        self.tmp_path = tmp_path
        self.topics = topics
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, instance: str, *, delay_ms: float = 0.0) -> subprocess.Popen[bytes]:
        log_path = self.tmp_path / f"{instance}-{len(self.procs)}.log"
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.engine.counting_app",
                    "--bootstrap",
                    self.kafka.bootstrap_servers,
                    "--app-id",
                    self.topics["app"],
                    "--instance-id",
                    instance,
                    "--input",
                    self.topics["input"],
                    "--output",
                    self.topics["output"],
                    "--changelog",
                    self.topics["changelog"],
                    "--partitions",
                    str(PARTITIONS),
                    "--state-file",
                    str(self.state_file(instance)),
                    "--delay-ms",
                    str(delay_ms),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def state_file(self, instance: str) -> Path:
        return self.tmp_path / f"{instance}.state.json"

    def state_of(self, instance: str) -> dict[str, int]:
        """The counts the instance last wrote, all partitions merged."""
        path = self.state_file(instance)
        if not path.exists():
            return {}
        state: dict[str, dict[str, int]] = json.loads(path.read_text())
        return {k: v for part in state.values() for k, v in part.items()}

    def wait_state(self, instance: str, expected: dict[str, int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.state_of(instance) != expected and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.state_of(instance) == expected

    def wait_logged(self, instance: str, text: str, timeout_s: float) -> None:
        """Wait until the log of ``instance``'s first process says ``text``."""
        path = self.tmp_path / f"{instance}-0.log"
        deadline = time.monotonic() + timeout_s
        while text not in (path.read_text() if path.exists() else ""):
            assert time.monotonic() < deadline, f"{instance} never logged {text!r}: {self.logs()}"
            time.sleep(0.2)

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        proc.send_signal(signal.SIGTERM)
        return proc.wait(60)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.tmp_path.glob("*.log")))

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)


@pytest.fixture
def apps(kafka: KafkaCluster, tmp_path: Path, topic_factory: Callable[..., str]) -> Iterator[_Apps]:
    topics = {
        "app": unique("engine-count"),
        "input": topic_factory("engine-in", partitions=PARTITIONS),
        "output": topic_factory("engine-out", partitions=PARTITIONS),
        "changelog": unique("engine-counts-changelog"),
    }
    running = _Apps(kafka, tmp_path, topics)
    yield running
    running.kill_all()


def _output(consumer_factory: Callable[..., Consumer], apps: _Apps) -> _Output:
    return _Output(consumer_factory(apps.topics["output"]))


@pytest.mark.parametrize("restarted_as", ["slot-0", "slot-1"])
def test_sigkill_mid_stream_then_restart_is_exactly_once(
    apps: _Apps,
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    restarted_as: str,
) -> None:
    """Restarted in the same slot, its ``init_transactions`` aborts the dead one's open
    transaction at once; under another instance id, that transaction times out (10 s here)
    while the new one restores to the last stable offset and handles the same records again."""
    total = 2000
    _produce_inputs(producer_factory(), apps.topics["input"], 0, total)
    output = _output(consumer_factory, apps)
    first = apps.start("slot-0", delay_ms=2)
    assert output.read_until(300, 90) >= 300, apps.logs()
    first.kill()  # SIGKILL: an open transaction, handled records not committed
    first.wait(30)
    assert len(output.records) < total  # it really died mid-stream
    second = apps.start(restarted_as)
    assert output.read_until(total, 120) >= total, apps.logs()
    apps.wait_state(restarted_as, _expected_counts(total), 30)  # restored, then counted on
    assert apps.stop(second) == 0, apps.logs()
    output.drain(2.0)  # anything doubled would be here by now
    _check_exactly_once(output.records, total)


def test_a_member_joins_mid_stream_then_the_first_stops(
    apps: _Apps,
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    producer = producer_factory()
    output = _output(consumer_factory, apps)
    _produce_inputs(producer, apps.topics["input"], 0, 600)
    first = apps.start("a", delay_ms=5)
    assert output.read_until(200, 90) >= 200, apps.logs()
    apps.start("b", delay_ms=5)  # joins while "a" is mid-stream
    _produce_inputs(producer, apps.topics["input"], 600, 600)
    assert output.read_until(900, 90) >= 900, apps.logs()
    # "a" kept the state of the partitions the rebalance left it rather than replay their
    # changelog (the counts checked below say the kept state was right)
    apps.wait_logged("a", "kept through the rebalance", 60)
    assert apps.stop(first) == 0, apps.logs()  # "b" takes every partition over
    _produce_inputs(producer, apps.topics["input"], 1200, 600)
    assert output.read_until(1800, 120) >= 1800, apps.logs()
    apps.wait_state("b", _expected_counts(1800), 30)  # restored from what "a" committed
    output.drain(2.0)
    _check_exactly_once(output.records, 1800)


async def _run_until(
    engine: Engine, done: Callable[[], bool], timeout_s: float
) -> asyncio.Task[None]:
    """Run the engine until ``done()`` or the deadline; returns the finished task."""
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    deadline = time.monotonic() + timeout_s
    while not done() and not task.done() and time.monotonic() < deadline:
        await asyncio.wait({task}, timeout=0.05)
    stop.set()
    finished, _ = await asyncio.wait({task}, timeout=60)
    assert finished, "the engine did not stop within 60 s"
    return task


async def test_co_partitioned_backlogs_are_handed_over_in_timestamp_order(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
) -> None:
    preferences = topic_factory("engine-prefs", partitions=2)
    events = topic_factory("engine-events", partitions=2)
    producer = producer_factory()
    base = int(time.time() * 1000) - 60_000  # recent: retention never deletes them
    # events first on the broker (offset order says nothing), stamped between preferences
    per_partition = 300
    for p in range(2):
        for i in range(per_partition):
            producer.produce(events, value=b"e", partition=p, timestamp=base + 10 * i + 5)
    for p in range(2):
        for i in range(per_partition):
            producer.produce(preferences, value=b"p", partition=p, timestamp=base + 10 * i)
    producer.flush(30)

    engine = Engine(
        EngineConfig(
            app_id=unique("engine-align"),
            kafka=kafka.client_config(),
            instance_id="0",
            max_batch=50,
            max_task_idle_ms=30_000,  # never reached here: a lagging input is waited for
        )
    )
    handled: list[Record] = []

    async def keep(record: Record) -> None:
        handled.append(record)

    engine.input(preferences, keep)
    engine.input(events, keep)
    caught_up = {(t, p): per_partition for t in (preferences, events) for p in range(2)}
    seen_ends: list[dict[tuple[str, int], int]] = []

    def done() -> bool:
        if len(handled) < 4 * per_partition or engine.positions() != caught_up:
            return False
        seen_ends.append(engine.end_offsets())
        return True

    task = await _run_until(engine, done, 90)
    assert task.exception() is None
    assert len(handled) == 4 * per_partition
    assert seen_ends == [caught_up]  # positions and ends agree once everything is handled
    for p in range(2):
        seen = [r for r in handled if r.partition == p]
        stamps = [r.timestamp_ms for r in seen]
        assert stamps == sorted(stamps)  # every event after every earlier preference
        offsets = {t: [r.offset for r in seen if r.topic == t] for t in (preferences, events)}
        assert offsets == {t: list(range(per_partition)) for t in (preferences, events)}


async def test_a_handler_that_raises_aborts_its_transaction(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    source, sink = _numbered_input(topic_factory, producer_factory, 100)
    app_id = unique("engine-raise")
    engine = Engine(
        EngineConfig(app_id=app_id, kafka=kafka.client_config(), instance_id="0", max_batch=500)
    )
    counts = engine.store("c", changelog_topic=unique("engine-raise-changelog"), partitions=1)
    seen: list[int] = []

    async def fail_at_50(record: Record) -> None:
        counts.put(0, b"k", record.value)
        engine.outputs.send(sink, record.value, key=record.key)
        seen.append(record.offset)
        if record.offset == 50:
            raise ValueError("boom")

    engine.input(source, fail_at_50)
    task = await _run_until(engine, lambda: False, 60)
    error = task.exception()
    assert isinstance(error, HandlerFailed)
    assert isinstance(error.__cause__, ValueError)
    assert 50 in seen  # the handler ran and sent before raising

    # transactions committed before the failing one (records fetched in several polls may
    # be): their outputs and offsets agree; nothing of the aborted one is visible
    committed_offset = _committed(consumer_factory, app_id, source)
    assert committed_offset <= 50
    assert _visible(consumer_factory, sink, timeout_s=5) == _numbers(max(committed_offset, 0))


async def test_the_next_batch_is_handled_while_the_last_commit_is_in_flight(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    total = 3000
    source, sink = _numbered_input(topic_factory, producer_factory, total)
    commits: list[tuple[float, float]] = []  # the commit calls running: (began, ended)

    @contextlib.asynccontextmanager
    async def guard(what: str) -> AsyncIterator[None]:
        began = time.monotonic()  # entered where the call into Kafka begins
        yield
        if what == "commit_transaction":
            commits.append((began, time.monotonic()))

    engine = Engine(
        EngineConfig(
            app_id=unique("engine-ahead"), kafka=kafka.client_config(), instance_id="0",
            max_batch=200, commit_interval_ms=10_000,
        ),
        call_guard=guard,
    )  # fmt: skip
    handled_at: list[float] = []

    async def copy(record: Record) -> None:
        handled_at.append(time.monotonic())
        engine.outputs.send(sink, record.value, key=record.key)

    engine.input(source, copy)
    task = await _run_until(engine, lambda: len(handled_at) >= total and len(commits) > 1, 120)
    assert task.exception() is None

    # records were handled while an earlier batch's commit call was running (a loop that
    # starts the commit only when it waits for it has none)
    ahead = [t for t in handled_at if any(began < t < ended for began, ended in commits)]
    assert ahead, f"{len(commits)} commits, none overlapped by handling"
    assert _visible(consumer_factory, sink, timeout_s=10) == _numbers(total)


async def test_a_failed_commit_takes_the_batch_handled_ahead_of_it_along(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    """The engine's producer is fenced (another producer with its transactional id) mid-run:
    the commit in flight fails, and the batch handled ahead of it never reaches Kafka: what is
    visible is exactly the records below the committed offset."""
    total = 5000
    source, sink = _numbered_input(topic_factory, producer_factory, total)
    app_id = unique("engine-fenced")
    engine = Engine(
        EngineConfig(
            app_id=app_id, kafka=kafka.client_config(), instance_id="0", max_batch=100,
            commit_interval_ms=10_000,
        )
    )  # fmt: skip
    commits: list[float] = []
    fenced = False

    async def copy(record: Record) -> None:
        nonlocal fenced
        engine.outputs.send(sink, record.value, key=record.key)
        if len(commits) >= 3 and not fenced:
            fenced = True  # the next commit started is the one that fails
            zombie_killer = Producer({**kafka.client_config(), "transactional.id": f"{app_id}-0"})
            await asyncio.to_thread(zombie_killer.init_transactions, 30)

    engine.input(source, copy)
    engine.on_committed(commits.append)
    task = await _run_until(engine, lambda: False, 120)
    assert fenced
    assert task.exception() is not None, "the fenced engine went on"

    committed_offset = _committed(consumer_factory, app_id, source)
    assert 0 < committed_offset < total
    assert _visible(consumer_factory, sink, timeout_s=5) == _numbers(committed_offset)


async def test_a_handler_waiting_past_the_transaction_timeout_commits(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    """A handler's wait (the registry, the reference views) runs outside any Kafka transaction:
    a batch whose handler waits longer than the transaction timeout, after the batch's earlier
    records were sent, still commits (the broker aborts a transaction open that long: it checks
    every 10 s by default, hence the 12 s wait)."""
    source, sink = _numbered_input(topic_factory, producer_factory, 10)
    engine = Engine(
        EngineConfig(
            app_id=unique("engine-wait"), kafka=kafka.client_config(), instance_id="0",
            transaction_timeout_ms=1_000,
        )
    )  # fmt: skip
    handled: list[int] = []

    async def slow_at_5(record: Record) -> None:
        engine.outputs.send(sink, record.value, key=record.key)
        if record.offset == 5:
            await asyncio.sleep(12.0)
        handled.append(record.offset)

    engine.input(source, slow_at_5)
    commits: list[float] = []
    engine.on_committed(commits.append)
    task = await _run_until(engine, lambda: len(handled) == 10 and bool(commits), 60)
    assert task.exception() is None, task.exception()
    assert _visible(consumer_factory, sink, timeout_s=10) == _numbers(10)


async def test_timers_and_partition_callbacks(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    """Stores are restored before ``on_assigned``; a timer's sends and puts commit in a
    transaction of its own (with the positions handled: a zombie's would be fenced); sends
    outside handlers and timers are refused; ``on_revoked`` gets the partition numbers when the
    engine stops."""
    source = topic_factory("engine-in", partitions=2)
    ticks = topic_factory("engine-ticks", partitions=1)
    changelog = topic_factory("engine-cl", partitions=2, config={"cleanup.policy": "compact"})
    producer = producer_factory()
    producer.produce(changelog, key=b"restored", value=b"yes", partition=1)
    for p in (0, 0, 1, 1):
        producer.produce(source, value=b"v", partition=p)
    producer.flush(30)
    app_id = unique("engine-timer")
    guarded: list[str] = []

    @contextlib.asynccontextmanager
    async def guard(what: str) -> AsyncIterator[None]:
        guarded.append(what)
        yield

    engine = Engine(
        EngineConfig(app_id=app_id, kafka=kafka.client_config(), instance_id="0"),
        call_guard=guard,
    )
    store = engine.store("s", changelog_topic=changelog, partitions=2)
    events: list[tuple[str, frozenset[int], bytes | None]] = []
    refused: list[str] = []

    def assigned(numbers: frozenset[int]) -> None:
        events.append(("assigned", numbers, store.get(1, b"restored")))
        try:
            engine.outputs.send(ticks, b"outside")
        except NotInTransaction as exc:
            refused.append(str(exc))

    def revoked(numbers: frozenset[int]) -> None:
        events.append(("revoked", numbers, None))

    tick_count = [0]

    async def tick() -> None:
        if store.partitions():
            tick_count[0] += 1
            store.put(0, b"ticks", str(tick_count[0]).encode())
            engine.outputs.send(ticks, str(tick_count[0]).encode(), partition=0)

    async def nothing(_record: Record) -> None:
        return None

    engine.input(source, nothing)
    engine.timer(0.05, tick)
    engine.on_assigned(assigned)
    engine.on_revoked(revoked)
    committed: list[float] = []
    engine.on_committed(committed.append)
    task = await _run_until(engine, lambda: tick_count[0] >= 5, 60)
    assert task.exception() is None
    assert events[0] == ("assigned", frozenset({0, 1}), b"yes")
    assert events[-1] == ("revoked", frozenset({0, 1}), None)
    assert len(refused) == 1
    sent = consume(consumer_factory(ticks), tick_count[0], timeout_s=30)
    assert [m.value() for m in sent] == [str(i + 1).encode() for i in range(tick_count[0])]
    cl = consume(consumer_factory(changelog), 1 + tick_count[0], timeout_s=30)
    puts = [m.value() for m in cl if m.key() == b"ticks"]  # each timer run's put, committed
    assert puts == [str(i + 1).encode() for i in range(tick_count[0])]
    # the records handled (and the timers' transactions, fenced with them) committed offsets
    group = consumer_factory(**{"group.id": app_id})
    offsets = group.committed([TopicPartition(source, p) for p in (0, 1)], timeout=10)
    assert [tp.offset for tp in offsets] == [2, 2]
    # every blocking transactional call ran under the guard (a deadline in the worker)
    assert guarded[0] == "init_transactions"
    assert "commit_transaction" in set(guarded)  # the positions sent and the commit
    # each committed transaction was reported with its duration (the worker's commit metric)
    assert tick_count[0] <= len(committed) <= guarded.count("commit_transaction")
    assert all(seconds >= 0 for seconds in committed)


async def test_keyed_sends_use_the_java_partitioner(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    """``partition=None``: murmur2 on the key, as aiokafka and the Java client place it
    (librdkafka's own default would not)."""
    source = topic_factory("engine-in", partitions=1)
    sink = topic_factory("engine-out", partitions=6)
    producer = producer_factory()
    keys = [f"customer-{i}".encode() for i in range(60)]
    for key in keys:
        producer.produce(source, key=key, value=b"v")
    producer.flush(30)
    engine = Engine(
        EngineConfig(app_id=unique("engine-keys"), kafka=kafka.client_config(), instance_id="0")
    )
    handled: list[int] = []

    async def forward(record: Record) -> None:
        engine.outputs.send(sink, record.value, key=record.key)
        handled.append(record.offset)

    engine.input(source, forward)
    task = await _run_until(engine, lambda: len(handled) >= len(keys), 60)
    assert task.exception() is None
    placed = {m.key(): m.partition() for m in consume(consumer_factory(sink), len(keys), 30)}
    assert placed == {key: murmur2_partition(key, 6) for key in keys}


@pytest.mark.parametrize("static", [False, True])
async def test_a_cold_start_creates_its_changelog_and_joins_static_only_when_asked(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    static: bool,
) -> None:
    """A changelog the engine creates is restored at once (its partitions may have no leader
    for a moment: the ends are asked again); the group member carries the instance id as its
    ``group.instance.id`` with static membership only."""
    source = topic_factory("engine-in", partitions=3)
    changelog = unique("engine-new-cl")  # not there yet: the engine creates it
    app_id = unique("engine-static")
    engine = Engine(
        EngineConfig(
            app_id=app_id,
            kafka=kafka.client_config(),
            consumer={"session.timeout.ms": "10000", "heartbeat.interval.ms": "1000"},
            instance_id="slot-a",
            static_membership=static,
        )
    )
    engine.store("s", changelog_topic=changelog, partitions=3)
    assigned: list[frozenset[int]] = []
    engine.on_assigned(assigned.append)

    async def nothing(_record: Record) -> None:
        return None

    engine.input(source, nothing)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    members: list[Any] = []
    try:
        deadline = time.monotonic() + 60
        while not assigned and not task.done() and time.monotonic() < deadline:
            await asyncio.wait({task}, timeout=0.05)
        assert assigned == [frozenset({0, 1, 2})]

        admin = kafka.admin()  # kept: the futures need their client alive

        def describe() -> list[Any]:
            future = admin.describe_consumer_groups([app_id], request_timeout=10)[app_id]
            return list(future.result(30).members)

        while not members and time.monotonic() < deadline:
            members = await asyncio.to_thread(describe)
    finally:
        stop.set()
        finished, _ = await asyncio.wait({task}, timeout=60)
    assert finished
    assert task.exception() is None
    assert [m.group_instance_id for m in members] == (["slot-a"] if static else [None])


async def test_a_dead_members_pending_offsets_do_not_stop_the_loop(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    consumer_factory: Callable[..., Consumer],
) -> None:
    """A member that died with offsets in an open transaction leaves them pending: the group
    coordinator answers no committed offset of those partitions until that transaction ends
    (KIP-447; for a process killed, at its transaction timeout). The engine
    that inherits the partitions goes on meanwhile: its timers run (the loop is not waiting on
    the committed offsets), and the offsets are reported once the transaction is gone."""
    source = topic_factory("engine-pending", partitions=2)
    app_id = unique("engine-pending")
    member = consumer_factory(**{"group.id": app_id, "auto.offset.reset": "earliest"})
    member.subscribe([source])
    for _ in range(100):
        member.poll(0.2)
        if member.assignment():
            break
    assert len(member.assignment()) == 2
    zombie = Producer(
        {**kafka.client_config(), "transactional.id": unique("zombie"),
         "transaction.timeout.ms": 120_000}
    )  # fmt: skip
    zombie.init_transactions(30)
    zombie.begin_transaction()
    pending = [TopicPartition(source, p, 0) for p in (0, 1)]
    zombie.send_offsets_to_transaction(pending, member.consumer_group_metadata(), 30)
    member.close()  # the partitions move; the transaction with their offsets stays open

    engine = Engine(EngineConfig(app_id=app_id, kafka=kafka.client_config(), instance_id="0"))
    ticks = [0]

    async def tick() -> None:
        ticks[0] += 1

    async def nothing(_record: Record) -> None:
        return None

    engine.input(source, nothing)
    engine.timer(0.05, tick)
    unknown_while_ticking: list[bool] = []

    def ticking_while_pending() -> bool:
        if ticks[0] < 20:
            return False
        unknown_while_ticking.append(not engine.positions())
        return True

    try:
        task = await _run_until(engine, ticking_while_pending, 45)
        assert task.exception() is None
        assert ticks[0] >= 20, "the loop stood still while the offsets were pending"
        # the offsets were indeed still pending while the timers ran: the case is real
        assert unknown_while_ticking == [True]
    finally:
        zombie.abort_transaction(30)

    # once the transaction is gone the offsets are read: a second run reports them at once
    engine = Engine(EngineConfig(app_id=app_id, kafka=kafka.client_config(), instance_id="0"))
    engine.input(source, nothing)
    task = await _run_until(engine, lambda: len(engine.positions()) == 2, 45)
    assert task.exception() is None
    assert engine.positions() == {}  # stopped: nothing assigned


async def test_stores_on_disk_are_restored_written_and_closed_with_their_values(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
    tmp_path: Path,
) -> None:
    """With ``state_dir``, a store's partition is a RocksDB database there: what an earlier run
    left in it is not trusted (the changelog is replayed into an empty one), the handlers' puts
    reach the changelog as in memory, and the database is flushed and closed when the engine
    stops (a read-only reader sees every value)."""
    source, _sink = _numbered_input(topic_factory, producer_factory, 20)
    changelog = topic_factory("engine-cl", partitions=1, config={"cleanup.policy": "compact"})
    producer = producer_factory()
    producer.produce(changelog, key=b"restored", value=b"yes", partition=0)
    producer.flush(30)
    state_dir = tmp_path / "state"
    stale = Rdict(str(state_dir / "s-0.db"), rocksdb_options())  # an earlier run's leftovers
    stale[b"stale"] = b"1"
    stale.close()
    engine = Engine(
        EngineConfig(
            app_id=unique("engine-disk"), kafka=kafka.client_config(), instance_id="0",
            state_dir=state_dir,
        )
    )  # fmt: skip
    store = engine.store("s", changelog_topic=changelog, partitions=1)
    restored: list[tuple[bytes | None, bytes | None]] = []
    engine.on_assigned(
        lambda _n: restored.append((store.get(0, b"restored"), store.get(0, b"stale")))
    )
    handled: list[int] = []

    async def keep_last(record: Record) -> None:
        store.put(0, b"last", record.value)
        handled.append(record.offset)

    engine.input(source, keep_last)
    commits: list[float] = []
    engine.on_committed(commits.append)
    task = await _run_until(engine, lambda: len(handled) == 20 and bool(commits), 60)
    assert task.exception() is None, task.exception()
    assert restored == [(b"yes", None)]
    changes = consumer_factory(changelog)  # the last value of each transaction, in order
    last: list[bytes] = []
    deadline = time.monotonic() + 30
    while last[-1:] != [b"19"] and time.monotonic() < deadline:
        last += [m.value() for m in consume(changes, 1, 1.0) if m.key() == b"last"]
    assert last[-1:] == [b"19"]
    assert read_closed(state_dir / "s-0.db") == {b"restored": b"yes", b"last": b"19"}


async def test_after_a_clean_stop_the_next_engine_reads_its_files_on_from_where_they_stand(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A clean stop notes where its files stand; the next engine on the directory reopens them
    and reads only what the changelog got since (here another writer's record). Without the
    note (as after a crash, whose files may hold puts never committed) they are replayed whole."""
    caplog.set_level(logging.INFO, logger="streams.engine.engine")
    source, _sink = _numbered_input(topic_factory, producer_factory, 20)
    changelog = topic_factory("engine-cl", partitions=1, config={"cleanup.policy": "compact"})
    state_dir, app_id = tmp_path / "state", unique("engine-reuse")

    async def run_once(done: Callable[[list[int], list[Any]], bool]) -> tuple[list[int], str]:
        engine = Engine(
            EngineConfig(
                app_id=app_id, kafka=kafka.client_config(), instance_id="0",
                state_dir=state_dir,
            )
        )  # fmt: skip
        store = engine.store("s", changelog_topic=changelog, partitions=1)
        seen: list[Any] = []
        engine.on_assigned(lambda _n: seen.append((store.get(0, b"last"), store.get(0, b"odd"))))
        handled: list[int] = []

        async def keep_last(record: Record) -> None:
            store.put(0, b"last", record.value)
            handled.append(record.offset)

        engine.input(source, keep_last)
        commits: list[float] = []
        engine.on_committed(commits.append)
        caplog.clear()
        task = await _run_until(engine, lambda: done(handled, commits) and bool(seen), 60)
        assert task.exception() is None, task.exception()
        restores = [r.getMessage() for r in caplog.records if " restored " in r.getMessage()]
        assert len(restores) == 1, restores
        return handled, f"{seen} {restores[0]}"

    await run_once(lambda handled, commits: len(handled) == 20 and bool(commits))
    assert (state_dir / checkpoint.FILE).exists()
    producer = producer_factory()
    producer.produce(changelog, key=b"odd", value=b"x", partition=0)  # another writer
    producer.flush(30)

    handled, said = await run_once(lambda _h, _c: True)
    assert handled == []  # its input was committed: nothing handled again
    assert said.startswith("[(b'19', b'x')]"), said
    assert "restored 1 changelog records" in said, said
    assert "read on from the last clean stop" in said, said

    (state_dir / checkpoint.FILE).unlink()  # as after a crash
    stale = Rdict(str(state_dir / "s-0.db"), rocksdb_options())
    stale[b"last"] = b"never committed"
    stale.close()
    handled, said = await run_once(lambda _h, _c: True)
    assert said.startswith("[(b'19', b'x')]"), said  # replayed whole into an empty database
    assert "read on from the last clean stop" not in said, said


def test_changelogs_are_created_with_the_replication_asked_for(kafka: KafkaCluster) -> None:
    """On the one-node test broker: a factor of 1 creates the changelog, a factor of 2 reaches
    the broker and is refused there (so the setting is not left to the broker's default)."""
    from confluent_kafka.admin import AdminClient

    from streams.engine.errors import EngineError
    from streams.engine.stores import MemoryStore
    from streams.engine.topics import create_changelogs

    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    one = MemoryStore("s", changelog_topic=unique("changelog-rf1"), partitions=2)
    create_changelogs(conf, [one], replication_factor=1)
    meta = AdminClient(conf).list_topics(timeout=10).topics[one.changelog_topic]
    assert {len(p.replicas) for p in meta.partitions.values()} == {1}
    two = MemoryStore("s", changelog_topic=unique("changelog-rf2"), partitions=2)
    with pytest.raises(EngineError, match=r"(?i)replication"):
        create_changelogs(conf, [two], replication_factor=2)
