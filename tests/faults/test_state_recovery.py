"""The routing worker's tables survive crashes with the rocksdb store, on the real broker.

The worker, its tables in RocksDB (``AIR_EXSTREAM_STORE=rocksdb://``), loads
``STATE_RECOVERY_PREFERENCES`` preferences (50,000 by default); some customers' preferences
change right before it is SIGKILLed. Then (a) it restarts on the same data dir, whose files the
kill left behind (the writes of an open transaction among them, and without the write-ahead log
the last ones missing): every table partition must be emptied and restored from its changelog,
never trusted; events for half of the customers are routed; more preferences change; SIGKILL
again. (b) A worker with an empty data dir starts; events for the other half are routed; it is
stopped gracefully. Each time the commands must be exactly what an independent reference
computes from the *latest* preferences (channel, language, recipient, and no command for a
customer who opted out), and the files the second worker leaves must hold exactly the latest
preference of every customer. Reports how long each start took to be ready (-s).
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

from benchmarks.recovery import wait_group_empty
from streams.codec import codec_for
from streams.demo.processes import WorkerProcess, wait_consumed
from streams.domain.records import AccountEvent, BusinessEvent, CompositionCommand, Preference
from streams.routing.preference_versions import latest_value
from streams.routing.settings import WorkerSettings
from streams.simulator.generator import Dataset, Scenario, SimEvent, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster
from tests.e2e.helpers import assert_commands_match, changed_preference
from tests.e2e.reference import Expected, expected_outcome
from tests.engine.rocksdb_files import read_closed
from tests.exstream.templates import publish_synced_templates
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

pytestmark = pytest.mark.faults

PREFERENCES = int(os.environ.get("STATE_RECOVERY_PREFERENCES", "50000"))
UPDATED = 150
"""Customers per phase whose preference changes right before the kill."""
SCENARIO = Scenario(seed=20261128, customers=PREFERENCES, events=2_000, invalid_share=0.0)
SESSION_TIMEOUT_S = "10"


def _customer(sim: SimEvent) -> int:
    return int(sim.record.customer_id.removeprefix("cust-"))


class World:
    """The topics, the dataset and what the worker should hold."""

    def __init__(self, bootstrap: str, topology: Topology, dataset: Dataset) -> None:
        self.bootstrap = bootstrap
        self.topology = topology
        self.conf = {"bootstrap.servers": bootstrap}
        self.dataset = dataset
        self.latest = {p.customer_id: p for p in dataset.preferences}
        self.account_topic = topology.name(names.ACCOUNT_EVENTS)
        self.case_topic = topology.name(names.CASE_EVENTS)
        self.preferences_topic = topology.name(names.PREFERENCES)

    def change_preferences(self, events: list[SimEvent]) -> list[Preference]:
        """Publish changed preferences for ``UPDATED`` customers of ``events``."""
        customers = list(dict.fromkeys(e.record.customer_id for e in events))[:UPDATED]
        changed = [changed_preference(self.latest[c], i) for i, c in enumerate(customers)]
        publish_reference(
            Dataset(templates=[], rules=[], preferences=changed), self.topology, self.conf
        )
        self.latest.update((p.customer_id, p) for p in changed)
        return changed

    def expected(self, events: list[SimEvent], preferences: Iterable[Preference]) -> Expected:
        def source(e: BusinessEvent) -> str:
            return self.account_topic if isinstance(e, AccountEvent) else self.case_topic

        data = dataclasses.replace(self.dataset, preferences=list(preferences), events=events)
        return expected_outcome(data, source_topics=source)

    def encoded(self) -> dict[bytes, bytes]:
        codec = codec_for(Preference)
        return {cid.encode(): codec.encode(p) for cid, p in self.latest.items()}


def _worker(bootstrap: str, prefix: str, app_id: str, workdir: Path) -> WorkerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(bootstrap, prefix, app_id, workdir)
    worker.env["AIR_EXSTREAM_STORE"] = "rocksdb://"
    worker.env["AIR_EXSTREAM_SESSION_TIMEOUT_S"] = SESSION_TIMEOUT_S
    return worker


def _tables_dir(worker: WorkerProcess) -> Path:
    settings = WorkerSettings(
        data_dir=worker.env["AIR_EXSTREAM_DATA_DIR"], app_id=worker.app_id, store="rocksdb://"
    )
    return settings.tables_dir


def _read_table(tables: Path, table: str = "preferences") -> dict[bytes, bytes]:
    """Every record of a stopped worker's ``table`` (all its partitions' files), read-only."""
    records: dict[bytes, bytes] = {}
    paths = sorted(tables.glob(f"{table}-*.db"))
    assert paths, f"no {table} files under {tables}"
    for path in paths:
        records.update(read_closed(path))
    return records


@pytest.mark.timeout(600)
def test_rocksdb_tables_survive_worker_crashes(kafka: KafkaCluster, tmp_path: Path) -> None:
    bootstrap = kafka.bootstrap_servers
    prefix = f"state{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    world = World(bootstrap, topology, generate(SCENARIO))
    # the two phases route events of disjoint customers, so their suppression state is disjoint
    first = [e for e in world.dataset.events if _customer(e) % 2 == 0]
    second = [e for e in world.dataset.events if _customer(e) % 2 == 1]
    inputs = [world.account_topic, world.case_topic]
    publish_reference(world.dataset, topology, world.conf)
    publish_synced_templates(world.dataset.templates, topology, world.conf)
    app_id = f"state-{uuid.uuid4().hex[:6]}"

    def consumed(worker: WorkerProcess, topics: list[str]) -> float:
        began = time.monotonic()
        wait_consumed(bootstrap, app_id, topics, worker=worker, timeout_s=300)
        return time.monotonic() - began

    same = _worker(bootstrap, prefix, app_id, tmp_path / "a")
    fresh = _worker(bootstrap, prefix, app_id, tmp_path / "b")
    try:
        same.start()
        loaded_s = consumed(same, [world.preferences_topic])
        base = dict(world.latest)
        changed_first = world.change_preferences(first)
        consumed(same, [world.preferences_topic])
        same.kill()  # right after the changed preferences were committed
        left = _tables_dir(same)
        assert sorted(left.glob("preferences-*.db")), "the worker kept no rocksdb files"

        # (a) the same data dir: the files the kill left are emptied, the changelogs replayed
        killed = time.monotonic()
        wait_group_empty(bootstrap, app_id)
        session_s = time.monotonic() - killed
        same.start()
        publish_events(first, topology, world.conf, seed=SCENARIO.seed)
        restart_s = consumed(same, inputs)
        latest_first = dict(world.latest)
        changed_second = world.change_preferences(second)
        consumed(same, [world.preferences_topic])
        same.kill()

        # (b) an empty data dir, then a graceful stop: its files hold the tables as committed
        wait_group_empty(bootstrap, app_id)
        fresh.start()
        publish_events(second, topology, world.conf, seed=SCENARIO.seed + 1)
        replay_s = consumed(fresh, inputs)
        fresh.stop()
        assert fresh.proc is not None
        assert fresh.proc.returncode == 0, fresh.tail()
        replayed = _read_table(_tables_dir(fresh))
    finally:
        same.stop()
        fresh.stop()

    # ---- the table holds exactly the latest preference of every customer (as the newest of
    # the versions each keeps, streams/routing/preference_versions.py)
    replayed_latest = {k: latest_value(v) for k, v in replayed.items()}
    assert replayed_latest == world.encoded(), "the restored table differs from the preferences"

    # ---- routing after each recovery used the latest preferences, command for command
    expected_first = world.expected(first, latest_first.values())
    expected_second = world.expected(second, world.latest.values())
    expected = {**expected_first.commands, **expected_second.commands}
    codec = codec_for(CompositionCommand)
    commands_topic = topology.name(names.COMMANDS)
    produced = [codec.decode(r.value or b"") for r in read_topic(bootstrap, commands_topic)]
    assert_commands_match(produced, expected)

    # ---- the changed preferences decided: stale ones would have produced other commands
    stale_first = world.expected(first, {**latest_first, **_subset(base, changed_first)}.values())
    stale_second = world.expected(
        second, {**world.latest, **_subset(latest_first, changed_second)}.values()
    )
    decided = _decided_by(expected_first, stale_first) + _decided_by(expected_second, stale_second)
    opted_out = sum(
        1
        for i in expected_first.undeliverable | expected_second.undeliverable
        if i not in stale_first.undeliverable and i not in stale_second.undeliverable
    )
    assert decided >= 30, f"only {decided} commands depend on the changed preferences"
    assert opted_out > 0, "no opt-out turned a command into an undeliverable communication"

    print(
        f"\nstate recovery ({PREFERENCES:,} preferences, rocksdb): loaded by the worker in "
        f"{loaded_s:.1f} s; after a SIGKILL the group freed the partitions in {session_s:.1f} s "
        f"(session timeout {SESSION_TIMEOUT_S} s); (a) same data dir: restored and "
        f"{len(first)} events routed {restart_s:.1f} s after they were published; (b) empty "
        f"data dir: {len(second)} events routed {replay_s:.1f} s after; {len(produced)} "
        f"commands, {decided} of them decided by a preference changed right before a kill, "
        f"{opted_out} communications undeliverable after an opt-out"
    )


def _subset(preferences: dict[str, Preference], changed: list[Preference]) -> dict[str, Preference]:
    """The entries of ``preferences`` for the customers in ``changed`` (their older values)."""
    return {p.customer_id: preferences[p.customer_id] for p in changed}


def _decided_by(latest: Expected, stale: Expected) -> int:
    """Commands that are different (or absent) when the older preferences are used."""
    return sum(1 for i, c in latest.commands.items() if stale.commands.get(i) != c) + sum(
        1 for i in stale.commands if i not in latest.commands
    )
