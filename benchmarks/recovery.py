"""Routing worker state recovery: how long a restart takes with 1,000,000 preferences.

Measured (``recovery``). The ``preferences`` changelog of a routing worker holds
``BENCH_RECOVERY_PREFERENCES`` records (one per customer, seeded Avro preferences). It is written
the way the worker writes it: transactions of ``PER_TRANSACTION`` records (so it ends in a
commit marker, as a worker's changelog does), partitioned by Kafka's murmur2 of the customer id.
Writing it directly rather than through a worker saves minutes; recovery only ever reads the
changelog (the engine loads its records' bytes as they are, nothing decoded).

The worker (``python -m streams worker``: the routing worker on the project's engine, a process)
restores every table from its changelog when it starts: a full replay, whatever the store.
Each repetition starts it once per store of ``BENCH_RECOVERY_STORES``
(``AIR_EXSTREAM_STORE``, comma-separated; default ``memory://,rocksdb://``), each store with a
data dir of its own that its later starts reuse (a rocksdb store wipes its files and replays all
of it), each start after the previous worker was SIGKILLed and the consumer group emptied (so the
dead member's session timeout is not counted). A store the worker refuses (it exits before it is
ready, e.g. ``rocksdb://`` before the engine has a rocksdb store) is reported with the worker's
last log lines and not started again; the first store of the list is the measured one and must
run.

Ready = every partition's tables restored: the engine logs ``assigned partitions [...]`` when
partitions are assigned, then ``restored N changelog records of partitions [...] in S s`` once
their changelogs are read to their end, before it handles any record (streams/engine/engine.py);
the start is ready when the restored lines cover all ``PARTITIONS`` partition numbers. Recovery
time = from the first assignment line to that line, from the worker's own log timestamps; also
reported: from process start to ready, the restore time the engine reports itself, the records
it restored (a start that did not restore every preference fails the benchmark) and the size of
the data dir the start left (the rocksdb files: a rocksdb store that left none did not run).

Baseline, same run, same changelog: a bare confluent-kafka consumer (``read_committed``) reading
every partition of the changelog from the beginning to its end, from consumer creation to the
last record: the floor any replay faces on this broker. One unrecorded read warms up first.
``BENCH_RECOVERY_REPETITIONS`` repetitions (default ``BENCH_REPETITIONS``, else 3); medians.

Rebalance (once, first store): a worker restores every partition, then a second one joins the
group. Reported: the first worker's restore at its start, then, for the partitions the rebalance
leaves it, how long it took from their assignment to their restore and how many changelog records
it read (0 when it kept their state) beside those partitions' changelog offsets (what a replay
would read), and the second worker's restore of the partitions that moved to it.

Clean restart (once, each ``rocksdb://`` store of the list): a worker restores every partition
and is stopped with SIGTERM, then started again on the same data dir; its second restore (the
files read on from the offsets its clean stop noted, :mod:`streams.engine.checkpoint`) beside
its first (a full replay into empty databases).
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
STORES = tuple(
    s.strip()
    for s in os.environ.get("BENCH_RECOVERY_STORES", "memory://,rocksdb://").split(",")
    if s.strip()
)
"""The worker's ``AIR_EXSTREAM_STORE`` per start; the first is the measured one."""
PER_TRANSACTION = 10_000
PARTITIONS = 6  # customer_partitions in topology/topics.toml = the tables' partitions
SEED = 11
SESSION_TIMEOUT_S = "6"
"""The worker's session timeout (the broker's minimum): a SIGKILLed worker leaves the group
sooner (not counted either way: every start waits for an empty group)."""

ASSIGNED = re.compile(r"engine \S+: assigned partitions \[([\d, ]*)\]")
RESTORED = re.compile(
    r"engine \S+: restored (\d+) changelog records of partitions \[([\d, ]*)\] in ([\d.]+) s"
)
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")

# ------------------------------------------------------------------ a worker's recovery


@dataclass(frozen=True, slots=True)
class Recovery:
    """One worker start, from the worker's log."""

    ready_s: float
    """Process start -> every partition's tables restored."""
    recovery_s: float
    """First "assigned partitions" -> the "restored" line that completes the partitions."""
    read_s: float
    """The restore time the engine reports (its "restored ... in S s" lines, summed)."""
    records: int
    """Changelog records the engine restored (every table)."""
    data_dir_bytes: int = -1
    """The worker's data dir after it was killed (rocksdb files, its instance id); -1: not
    measured."""


def _stamp(line: str) -> float:
    match = _STAMP.match(line)
    if match is None:
        raise ProcessFailed(f"no timestamp on the worker's log line: {line[:80]}")
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _numbers(listed: str) -> frozenset[int]:
    return frozenset(int(n) for n in listed.split(",") if n.strip())


def _first_restore(
    lines: list[str], wanted: frozenset[int] | None
) -> tuple[str, frozenset[int], str, int, float] | None:
    """The first "assigned partitions" line of ``lines``, the partitions it names, the
    "restored" line after it that completes ``wanted`` (default: those partitions), and the
    records and seconds the "restored" lines up to it add up to; None until then."""
    assigned: str | None = None
    target: frozenset[int] = frozenset()
    numbers: set[int] = set()
    records, read_s = 0, 0.0
    for line in lines:
        if assigned is None:
            match = ASSIGNED.search(line)
            if match is not None:
                assigned, target = line, _numbers(match[1]) if wanted is None else wanted
            continue
        restore = RESTORED.search(line)
        if restore is None:
            continue
        records += int(restore[1])
        numbers.update(_numbers(restore[2]))
        read_s += float(restore[3])
        if numbers >= target:
            return assigned, target, line, records, read_s
    return None


def restored(lines: list[str], started: float, partitions: int = PARTITIONS) -> Recovery | None:
    """What the engine's log ``lines`` of one start (the process started at ``started``, epoch
    seconds) say of its restore; None until its "restored" lines cover partitions
    ``0..partitions-1``."""
    found = _first_restore(lines, frozenset(range(partitions)))
    if found is None:
        return None
    assigned, _target, done, records, read_s = found
    return Recovery(
        ready_s=_stamp(done) - started,
        recovery_s=_stamp(done) - _stamp(assigned),
        read_s=read_s,
        records=records,
    )


def recover(worker: WorkerProcess, *, timeout_s: float = 900.0) -> Recovery:
    """Start ``worker`` and wait until its tables are restored; what its log says about it."""
    offset = worker.log.stat().st_size if worker.log.exists() else 0
    started = time.time()
    worker.start()
    deadline = time.monotonic() + timeout_s
    while True:
        found = restored(_lines_from(worker, offset), started)
        if found is not None:
            return found
        if not worker.alive():
            raise ProcessFailed(f"worker exited before it was ready:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise ProcessFailed(f"worker not ready in {timeout_s} s:\n{worker.tail()}")
        time.sleep(0.05)


def store_worker(
    bootstrap: str, prefix: str, app_id: str, workdir: Path, store: str
) -> WorkerProcess:
    """A worker with ``AIR_EXSTREAM_STORE=store``, its data dir under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(bootstrap, prefix, app_id, workdir)
    worker.env.update(
        {"AIR_EXSTREAM_STORE": store, "AIR_EXSTREAM_SESSION_TIMEOUT_S": SESSION_TIMEOUT_S}
    )
    return worker


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


def reassigned(lines: list[str]) -> tuple[frozenset[int], Recovery] | None:
    """The first assignment in ``lines`` and its restore: the partitions assigned, and the
    restore of exactly those (``ready_s`` from the first line); None until their "restored"
    lines cover them."""
    found = _first_restore(lines, None)
    if found is None:
        return None
    assigned, target, done, records, read_s = found
    took = _stamp(done) - _stamp(assigned)
    return target, Recovery(ready_s=took, recovery_s=took, read_s=read_s, records=records)


def _lines_from(worker: WorkerProcess, offset: int) -> list[str]:
    with worker.log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return text.splitlines()[: text.count("\n")]  # whole lines: one may be half written


def wait_reassigned(
    worker: WorkerProcess, offset: int, timeout_s: float = 600.0
) -> tuple[frozenset[int], Recovery]:
    """The first assignment ``worker`` logged after byte ``offset`` of its log, once restored."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = reassigned(_lines_from(worker, offset))
        if found is not None:
            return found
        if not worker.alive():
            raise ProcessFailed(
                f"worker exited before its partitions were restored:\n{worker.tail()}"
            )
        if time.monotonic() > deadline:
            raise ProcessFailed(f"no restored assignment in {timeout_s} s:\n{worker.tail()}")
        time.sleep(0.05)


# ------------------------------------------------------------------ the changelog and the floor


def preference_records(n: int, seed: int = SEED) -> Iterator[tuple[bytes, bytes]]:
    """(customer id, Avro preference) of the first ``n`` seeded customers."""
    codec = codec_for(Preference)
    for p in generate(Scenario(seed=seed, customers=n, events=0)).preferences:
        yield p.customer_id.encode(), codec.encode(p)


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


def _start(worker: WorkerProcess, bootstrap: str) -> Recovery:
    """A measured start, then SIGKILL; with the size of the data dir it left."""
    wait_group_empty(bootstrap, worker.app_id)
    try:
        recovery = recover(worker)
    finally:
        worker.kill()
    data = Path(worker.env["AIR_EXSTREAM_DATA_DIR"])
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    return dataclasses.replace(recovery, data_dir_bytes=size)


def rebalance(
    bootstrap: str, prefix: str, app_id: str, workdir: Path, store: str, changelog: str
) -> dict[str, Any]:
    """A worker restores every partition, then a second one joins the group: how long the
    first takes to go on with the partitions the rebalance leaves it, and how many changelog
    records it reads for them (its state of those kept), beside its own full restore at start
    and the second worker's restore of the partitions that moved to it."""
    wait_group_empty(bootstrap, app_id)
    first = store_worker(bootstrap, prefix, app_id, workdir / "first", store)
    second = store_worker(bootstrap, prefix, app_id, workdir / "second", store)
    try:
        start = recover(first)
        offset = first.log.stat().st_size
        second_offset = second.log.stat().st_size if second.log.exists() else 0
        second.start()
        joined = wait_reassigned(second, second_offset)
        kept = wait_reassigned(first, offset)
    finally:
        second.kill()
        first.kill()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        held = {
            p: consumer.get_watermark_offsets(TopicPartition(changelog, p), timeout=30)
            for p in kept[0]
        }
    finally:
        consumer.close()
    return {
        "what": "a second worker joins the group of one that restored every partition",
        "first_worker_start": {"records": start.records, "restore_s": start.recovery_s},
        "first_worker_after_the_join": {
            "partitions": sorted(kept[0]),
            "records_read": kept[1].records,
            "assigned_to_restored_s": kept[1].recovery_s,
            "changelog_offsets_of_those_partitions": sum(h - lo for lo, h in held.values()),
        },
        "second_worker": {
            "partitions": sorted(joined[0]),
            "records_read": joined[1].records,
            "assigned_to_restored_s": joined[1].recovery_s,
        },
    }


def clean_restart(bootstrap: str, app_id: str, worker: WorkerProcess) -> dict[str, Any]:
    """``worker`` started (a full replay), stopped cleanly, started again on its data dir."""
    wait_group_empty(bootstrap, app_id)
    try:
        first = recover(worker)
        worker.stop()
        wait_group_empty(bootstrap, app_id)
        again = recover(worker)
    finally:
        worker.kill()
    return {
        "what": "a worker stopped with SIGTERM and started again on its data dir",
        "first_start": {"records": first.records, "restore_s": first.recovery_s},
        "restart": {
            "records": again.records,
            "restore_s": again.recovery_s,
            "ready_after_start_s": again.ready_s,
        },
    }


def _slug(store: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", store.lower()).strip("-") or "store"


def measure(bootstrap: str, workdir: Path) -> dict[str, Any]:
    if not STORES:
        raise ValueError("BENCH_RECOVERY_STORES names no store")
    prefix = f"benchrec{uuid.uuid4().hex[:6]}."
    app_id = f"air-exstream-bench-recovery-{uuid.uuid4().hex[:6]}"
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    changelog = f"{app_id}-preferences-changelog"  # the engine worker's name for it
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(changelog, PARTITIONS, 1, config={"cleanup.policy": "compact"})])[
        changelog
    ].result(30)
    began = time.monotonic()
    n = seed_changelog(bootstrap, changelog, preference_records(PREFERENCES))
    print(f"  recovery: {n} preferences written to {changelog} in {time.monotonic() - began:.0f} s")
    bare_read(bootstrap, changelog, n)  # warm-up, not recorded
    floor: list[float] = []
    load: list[float] = []
    runs: dict[str, list[Recovery]] = {store: [] for store in STORES}
    refused: dict[str, str] = {}
    try:
        for rep in range(REPETITIONS):
            load.append(os.getloadavg()[0])
            floor.append(bare_read(bootstrap, changelog, n))
            line = f"  recovery rep {rep + 1}: bare read {floor[-1]:.1f} s"
            for store in STORES:
                if store in refused:
                    continue
                worker = store_worker(bootstrap, prefix, app_id, workdir / _slug(store), store)
                try:
                    recovery = _start(worker, bootstrap)
                except ProcessFailed as exc:
                    if store == STORES[0]:
                        raise
                    refused[store] = "\n".join(str(exc).splitlines()[-3:])
                    print(f"  recovery: {store} not measured, the worker did not get ready:")
                    print(refused[store])
                    continue
                if recovery.records != n:
                    raise ProcessFailed(
                        f"{store}: the worker restored {recovery.records} changelog records, "
                        f"expected {n}"
                    )
                runs[store].append(recovery)
                line += (
                    f"; {store} restore {recovery.recovery_s:.1f} s (engine: "
                    f"{recovery.read_s:.1f} s), ready {recovery.ready_s:.1f} s after start, "
                    f"data dir {recovery.data_dir_bytes / 1e6:.1f} MB"
                )
            print(line)
        joined = rebalance(bootstrap, prefix, app_id, workdir / "rebalance", STORES[0], changelog)
        restarts = {
            store: clean_restart(
                bootstrap,
                app_id,
                store_worker(bootstrap, prefix, app_id, workdir / f"restart-{_slug(store)}", store),
            )
            for store in STORES
            if store.startswith("rocksdb") and store not in refused
        }
        for store, restart in restarts.items():
            again, first = restart["restart"], restart["first_start"]
            print(
                f"  recovery: {store} stopped cleanly and started again: {again['records']} "
                f"changelog records read in {again['restore_s']:.2f} s (its first start: "
                f"{first['records']} in {first['restore_s']:.1f} s)"
            )
        after = joined["first_worker_after_the_join"]
        print(
            f"  recovery: a second worker joined; the first went on with partitions "
            f"{after['partitions']} after {after['assigned_to_restored_s']:.2f} s, reading "
            f"{after['records_read']} changelog records (its start: "
            f"{joined['first_worker_start']['records']} in "
            f"{joined['first_worker_start']['restore_s']:.1f} s); the second restored "
            f"{joined['second_worker']['records_read']} in "
            f"{joined['second_worker']['assigned_to_restored_s']:.1f} s"
        )
    finally:
        _delete_topics(admin, (prefix, app_id))
    measured = runs[STORES[0]]
    m, b = median([r.recovery_s for r in measured]), median(floor)
    return {
        "benchmark": "recovery",
        "unit": "s",
        "measured": {
            "what": f"routing worker (on the engine, store {STORES[0]}) restore of {n:,} "
            "preferences from their changelog (full replay): partitions assigned -> every "
            "partition restored (the engine's log)",
            **_summary(measured),
            "load_average_1min_at_start": load,
        },
        "baseline": {
            "what": "bare confluent-kafka consumer (read_committed) reading the same changelog "
            "end to end",
            "value": b,
            "runs": floor,
        },
        "ratio": m / b if b else None,
        "rebalance": joined,
        "clean_restart": restarts,
        "stores": {
            store: {"refused": refused[store]} if store in refused else _summary(runs[store])
            for store in STORES
        },
        "config": {
            "preferences": n,
            "partitions": PARTITIONS,
            "records_per_transaction": PER_TRANSACTION,
            "repetitions": REPETITIONS,
            "stores": list(STORES),
            "worker": "python -m streams worker (the engine worker), AIR_EXSTREAM_STORE per "
            "store; every start after a SIGKILL of the previous one and an empty consumer group; "
            "each store's starts on one data dir",
            "ready": "the engine's 'restored N changelog records of partitions [...]' log lines "
            f"covering partitions 0..{PARTITIONS - 1}",
        },
        "machine": machine(),
    }


def _summary(runs: list[Recovery]) -> dict[str, Any]:
    return {
        "value": median([r.recovery_s for r in runs]) if runs else None,
        "runs": [r.recovery_s for r in runs],
        "ready_after_start_s": [r.ready_s for r in runs],
        "restore_s_reported_by_engine": [r.read_s for r in runs],
        "records_restored": [r.records for r in runs],
        "data_dir_bytes_after": [r.data_dir_bytes for r in runs],
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
