"""Routing worker state recovery: how long a restart takes with 1,000,000 preferences.

Measured (``recovery``). The ``preferences`` changelog of a routing worker holds
``BENCH_RECOVERY_PREFERENCES`` records (one per customer, seeded Avro preferences). It is written
the way the worker writes it: transactions of ``PER_TRANSACTION`` records (so it ends in a
commit marker, as a worker's changelog does), partitioned by Kafka's murmur2 of the customer id.
Writing it directly rather than through a worker (which ingests about 4,000 preferences/s here)
saves minutes; recovery only ever reads the changelog. Each repetition then starts the worker
(``python -m streams worker``, exactly_once, a process) several times, each start after the
previous worker was SIGKILLed and the consumer group emptied (so the dead member's session
timeout is not counted):

1. ``rocksdb://`` with an empty data dir: full changelog replay into rocksdb;
2. ``rocksdb://`` again on the data dir the first start left (after its checkpoint): the files
   are reused and only the changelog after the checkpoint is read: nothing, then (a crash's
   real case) ``BENCH_RECOVERY_DELTA`` changed preferences written after the checkpoint;
3. ``memory://`` (the default store): full replay into memory, in the first
   ``BENCH_RECOVERY_MEMORY_REPETITIONS`` repetitions only (default 1: it takes about as long
   as 1.).

Recovery time = from the worker's partition assignment to "Worker ready" (tables recovered,
streams resumed), taken from the worker's own log timestamps; also reported: from process start
to ready, and the changelog reading span. After every rocksdb start the data dir is opened and
its records counted: a start that did not recover every preference fails the benchmark.

Baseline, same run, same changelog: a bare confluent-kafka consumer (``read_committed``) reading
every partition of the changelog from the beginning to its end, from consumer creation to the
last record: the floor any replay faces on this broker. One unrecorded read warms up first.
``BENCH_RECOVERY_REPETITIONS`` repetitions (default ``BENCH_REPETITIONS``, else 3); medians.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from faust.stores.rocksdb import Store as RocksStore
from rocksdict import AccessType, Options, Rdict

from benchmarks.common import broker, machine, median
from streams.codec import codec_for
from streams.demo.processes import ProcessFailed, WorkerProcess
from streams.domain.records import Preference
from streams.simulator.generator import Scenario, generate
from topology.apply import apply_topology
from topology.model import load_topology

PREFERENCES = int(os.environ.get("BENCH_RECOVERY_PREFERENCES", "1000000"))
REPETITIONS = int(
    os.environ.get("BENCH_RECOVERY_REPETITIONS", os.environ.get("BENCH_REPETITIONS", "3"))
)
MEMORY_REPETITIONS = int(os.environ.get("BENCH_RECOVERY_MEMORY_REPETITIONS", "1"))
"""Repetitions that also replay into ``memory://`` (as slow as a rocksdb replay: one is enough)."""
DELTA = int(os.environ.get("BENCH_RECOVERY_DELTA", "10000"))
"""Preference changes written after the checkpoint for the restart with a delta."""
PER_TRANSACTION = 10_000
PARTITIONS = 6  # customer_partitions in topology/topics.toml = the table's partitions
SEED = 11
CHECKPOINT_INTERVAL_S = 5.0
OFFSET_KEY: bytes = RocksStore.offset_key

READY = "Worker ready"
ASSIGNED = "Setting newly assigned partitions"
RESTORING = "Restoring state from changelog topics"
RESTORED = "Done reading from changelog topics"
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


# ------------------------------------------------------------------ a worker's recovery


@dataclass(frozen=True, slots=True)
class Recovery:
    """One worker start, from the worker's log."""

    ready_s: float
    """Process start -> "Worker ready"."""
    recovery_s: float
    """Partitions assigned -> "Worker ready": table recovery and resuming the streams."""
    read_s: float
    """Reading the changelogs ("Restoring state" -> "Done reading"); 0 when nothing was read."""
    starts: dict[tuple[str, int], int]
    """Changelog partition -> offset recovery started reading at (-1: the beginning)."""
    highwaters: dict[tuple[str, int], int]
    """Changelog partition -> last offset to recover up to (-1: empty)."""

    def offsets_read(self, changelog: str) -> int:
        """Offsets of ``changelog`` (records and transaction markers) this recovery read."""
        return sum(
            max(0, end - self.starts.get((topic, p), -1))
            for (topic, p), end in self.highwaters.items()
            if topic == changelog
        )


def _stamp(line: str) -> float:
    match = _STAMP.match(line)
    if match is None:
        raise ProcessFailed(f"no timestamp on the worker's log line: {line[:80]}")
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def log_table(lines: list[str], title: str) -> dict[tuple[str, int], int]:
    """The (topic, partition) -> number table faust logs under ``title``, e.g. "Reading Starts
    At - Active" (first occurrence); ``〃`` repeats the topic of the row above."""
    rows: dict[tuple[str, int], int] = {}
    topic = ""
    inside = False
    for line in lines:
        if not inside:
            inside = title in line
            continue
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[1] == "partition":
            continue
        topic = topic if cells[0] == "〃" else cells[0]
        rows[(topic, int(cells[1]))] = int(cells[2])
    return rows


def recover(worker: WorkerProcess, *, timeout_s: float = 900.0) -> Recovery:
    """Start ``worker`` and wait until it reports ready; what its log says about the recovery."""
    offset = worker.log.stat().st_size if worker.log.exists() else 0
    started = time.time()
    worker.start()
    deadline = time.monotonic() + timeout_s
    while True:
        with worker.log.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", "replace").splitlines()
        ready = next((line for line in lines if READY in line), None)
        if ready is not None:
            break
        if not worker.alive():
            raise ProcessFailed(f"worker exited before it was ready:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise ProcessFailed(f"worker not ready in {timeout_s} s:\n{worker.tail()}")
        time.sleep(0.05)
    assigned = next(line for line in lines if ASSIGNED in line)
    restoring = next((line for line in lines if RESTORING in line), None)
    restored = next((line for line in lines if RESTORED in line), None)
    return Recovery(
        ready_s=_stamp(ready) - started,
        recovery_s=_stamp(ready) - _stamp(assigned),
        read_s=_stamp(restored) - _stamp(restoring) if restoring and restored else 0.0,
        starts=log_table(lines, "Reading Starts At - Active"),
        highwaters=log_table(lines, "Highwater - Active"),
    )


def rocksdb_worker(bootstrap: str, prefix: str, app_id: str, workdir: Path) -> WorkerProcess:
    """A worker whose ``preferences`` table is in rocksdb under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(bootstrap, prefix, app_id, workdir)
    worker.env.update(
        {
            "AIR_EXSTREAM_ENGINE": "faust",  # the rocksdb store is the Faust worker's
            "AIR_EXSTREAM_STORE": "rocksdb://",
            "AIR_EXSTREAM_CHECKPOINT_INTERVAL_S": str(CHECKPOINT_INTERVAL_S),
        }
    )
    return worker


def tables_dir(worker: WorkerProcess) -> Path:
    """Where faust keeps ``worker``'s table files (``<data_dir>/<app_id>/v1/tables``)."""
    return Path(worker.env["AIR_EXSTREAM_DATA_DIR"]) / worker.app_id / "v1" / "tables"


@dataclass(frozen=True, slots=True)
class StoreContents:
    records: dict[bytes, bytes]
    checkpoints: dict[int, int]
    """Partition -> changelog offset the files are complete up to (faust's persisted offset)."""


def read_store(tables: Path, table: str = "preferences") -> StoreContents:
    """Every record of a stopped worker's rocksdb ``table`` (all partitions), read-only."""
    records: dict[bytes, bytes] = {}
    checkpoints: dict[int, int] = {}
    for path in sorted(tables.glob(f"{table}-*.db")):
        partition = int(path.name[len(table) + 1 : -len(".db")])
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if not isinstance(key, bytes) or not isinstance(value, bytes):
                    continue  # raw mode stores bytes only
                if key == OFFSET_KEY:
                    checkpoints[partition] = int(value)
                else:
                    records[key] = value
        finally:
            db.close()
    return StoreContents(records, checkpoints)


def wait_group_empty(bootstrap: str, group: str, timeout_s: float = 60.0) -> None:
    """Until ``group`` has no member (a SIGKILLed worker's session has expired)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
        except KafkaException:
            time.sleep(0.5)
            continue
        if not desc.members:
            return
        time.sleep(0.5)
    raise ProcessFailed(f"group {group} still has members after {timeout_s} s")


# ------------------------------------------------------------------ the changelog and the floor


def preference_records(
    n: int, seed: int = SEED, *, version: int = 0
) -> Iterator[tuple[bytes, bytes]]:
    """(customer id, Avro preference) of the first ``n`` seeded customers; ``version`` > 0 gives
    changed preferences of the same customers (a later ``updated_at``)."""
    codec = codec_for(Preference)
    for p in generate(Scenario(seed=seed, customers=n, events=0)).preferences:
        changed = dataclasses.replace(p, updated_at=p.updated_at + version) if version else p
        yield p.customer_id.encode(), codec.encode(changed)


def seed_changelog(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Write ``records`` to ``topic`` as a worker's transactions would; returns the count."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"bench-recovery-seed-{uuid.uuid4().hex[:8]}",
            "acks": "all",
            "linger.ms": 20,
            "partitioner": "murmur2_random",  # the partition the worker's input would have
        }
    )
    producer.init_transactions(30)
    count = 0
    producer.begin_transaction()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % PER_TRANSACTION == 0:
            producer.commit_transaction(60)
            producer.begin_transaction()
    producer.commit_transaction(60)
    return count


def bare_read(bootstrap: str, topic: str, expected: int, timeout_s: float = 600.0) -> float:
    """Seconds a bare ``read_committed`` consumer takes to read ``topic`` from the beginning to
    its end (``expected`` records), from its creation on."""
    started = time.monotonic()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-recovery-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign(tps)
        read = 0
        while True:
            for msg in consumer.consume(10_000, timeout=0.5):
                if msg.error() is None:
                    read += 1
            positions = consumer.position([TopicPartition(topic, p) for p in range(PARTITIONS)])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
            if time.monotonic() - started > timeout_s:
                raise ProcessFailed(f"bare read: {read} of {expected} records in {timeout_s} s")
        took = time.monotonic() - started
    finally:
        consumer.close()
    if read != expected:
        raise ProcessFailed(f"bare read found {read} records, expected {expected}")
    return took


# ------------------------------------------------------------------ the benchmark


def _start(worker: WorkerProcess, bootstrap: str, *, settle_s: float = 0.0) -> Recovery:
    """A measured start; ``settle_s`` more seconds of running (a checkpoint), then SIGKILL."""
    wait_group_empty(bootstrap, worker.app_id)
    try:
        recovery = recover(worker)
        time.sleep(settle_s)
    finally:
        worker.kill()
    return recovery


def _checked(worker: WorkerProcess, expected: int) -> int:
    found = len(read_store(tables_dir(worker)).records)
    if found != expected:
        raise ProcessFailed(f"the worker's rocksdb holds {found} preferences, expected {expected}")
    return found


def measure(bootstrap: str, workdir: Path) -> dict[str, Any]:
    prefix = f"benchrec{uuid.uuid4().hex[:6]}."
    app_id = f"air-exstream-bench-recovery-{uuid.uuid4().hex[:6]}"
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    changelog = f"{app_id}-preferences-changelog"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(changelog, PARTITIONS, 1, config={"cleanup.policy": "compact"})])[
        changelog
    ].result(30)
    began = time.monotonic()
    n = seed_changelog(bootstrap, changelog, preference_records(PREFERENCES))
    print(f"  recovery: {n} preferences written to {changelog} in {time.monotonic() - began:.0f} s")
    bare_read(bootstrap, changelog, n)  # warm-up, not recorded
    written = n
    floor: list[float] = []
    full: list[Recovery] = []
    reuse: list[Recovery] = []
    delta: list[Recovery] = []
    memory: list[Recovery] = []
    load: list[float] = []
    try:
        for rep in range(REPETITIONS):
            load.append(os.getloadavg()[0])
            floor.append(bare_read(bootstrap, changelog, written))
            rocks = rocksdb_worker(bootstrap, prefix, app_id, workdir / f"rocksdb-{rep}")
            full.append(_start(rocks, bootstrap, settle_s=CHECKPOINT_INTERVAL_S + 3))
            _checked(rocks, n)
            reuse.append(_start(rocks, bootstrap))
            _checked(rocks, n)
            written += seed_changelog(
                bootstrap, changelog, preference_records(DELTA, version=rep + 1)
            )
            delta.append(_start(rocks, bootstrap))
            _checked(rocks, n)
            line = (
                f"  recovery rep {rep + 1}: bare read {floor[-1]:.1f} s; recovery (ready after "
                f"start): rocksdb full replay {full[-1].recovery_s:.1f} s "
                f"({full[-1].ready_s:.1f} s), rocksdb data dir {reuse[-1].recovery_s:.1f} s "
                f"({reuse[-1].ready_s:.1f} s), with {DELTA} changes {delta[-1].recovery_s:.1f} s "
                f"({delta[-1].ready_s:.1f} s)"
            )
            if rep < MEMORY_REPETITIONS:
                (workdir / f"memory-{rep}").mkdir(parents=True)
                mem = WorkerProcess(bootstrap, prefix, app_id, workdir / f"memory-{rep}")
                mem.env["AIR_EXSTREAM_ENGINE"] = "faust"  # the same worker as the rocksdb runs
                mem.env["AIR_EXSTREAM_STORE"] = "memory://"
                memory.append(_start(mem, bootstrap))
                line += (
                    f", memory full replay {memory[-1].recovery_s:.1f} s "
                    f"({memory[-1].ready_s:.1f} s)"
                )
            print(line)
    finally:
        _delete_topics(admin, (prefix, app_id))
    m, b = median([r.recovery_s for r in full]), median(floor)
    return {
        "benchmark": "recovery",
        "unit": "s",
        "measured": {
            "what": f"routing worker recovery of {n:,} preferences from an empty rocksdb data "
            "dir (full changelog replay): partitions assigned -> worker ready",
            "value": m,
            "runs": [r.recovery_s for r in full],
            "ready_after_start_s": [r.ready_s for r in full],
            "changelog_read_s": [r.read_s for r in full],
            "changelog_offsets_read": [r.offsets_read(changelog) for r in full],
            "load_average_1min_at_start": load,
        },
        "baseline": {
            "what": "bare confluent-kafka consumer (read_committed) reading the same changelog "
            "end to end",
            "value": b,
            "runs": floor,
        },
        "ratio": m / b if b else None,
        "existing_rocksdb_data_dir": _summary(reuse, changelog),
        "existing_rocksdb_data_dir_with_delta": _summary(delta, changelog),
        "memory_store_full_replay": _summary(memory, changelog),
        "config": {
            "preferences": n,
            "partitions": PARTITIONS,
            "delta_changes": DELTA,
            "records_per_transaction": PER_TRANSACTION,
            "repetitions": REPETITIONS,
            "memory_store_repetitions": min(MEMORY_REPETITIONS, REPETITIONS),
            "checkpoint_interval_s": CHECKPOINT_INTERVAL_S,
            "worker": "python -m streams worker, exactly_once; each start after a SIGKILL of the "
            "previous one and an empty consumer group",
            "rocksdb": "rocksdict; 16 MB write buffer, 64 MB block cache per table partition",
        },
        "machine": machine(),
    }


def _summary(runs: list[Recovery], changelog: str) -> dict[str, Any]:
    return {
        "value": median([r.recovery_s for r in runs]) if runs else None,
        "runs": [r.recovery_s for r in runs],
        "ready_after_start_s": [r.ready_s for r in runs],
        "changelog_read_s": [r.read_s for r in runs],
        "changelog_offsets_read": [r.offsets_read(changelog) for r in runs],
    }


def _delete_topics(admin: AdminClient, prefixes: tuple[str, ...]) -> None:
    """Best effort: keep the local broker small."""
    try:
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefixes)]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.result(30)
    except KafkaException:
        pass


def run() -> dict[str, Any]:
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        return measure(bootstrap, Path(tmp))
