"""A broker of a three-node cluster is lost mid-run: 100,000 seeded events, topics with three
replicas and min.insync.replicas 2, and the node coordinating the routing worker's consumer group
SIGKILLed once about 40 % of the events are routed, restarted a minute later. Afterwards every
communication the reference model expects was composed by Exstream exactly once, every invalid
event was dead-lettered, and the audit chain verifies. Reports its figures (printed with -s)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams.localkafka import LocalKafka
from streams.simulator.generator import Scenario, generate
from tests.faults.system import (
    Progress,
    System,
    check_audit,
    check_commands,
    check_dead_letters,
    check_documents,
    expected_for,
)

pytestmark = pytest.mark.faults

SCENARIO = Scenario(seed=20261201, customers=10_000, events=100_000, invalid_share=0.03)
STOP_AT = 0.4
"""Share of the events routed when the broker is lost."""
DOWN_S = 60.0
OFFSETS_PARTITIONS = 10
"""``offsets.topic.num.partitions`` of the local cluster."""


def choose_victim(bootstrap: str, group: str, topics: list[str]) -> tuple[int, Counter[int]]:
    """The node coordinating ``group`` (the leader of its ``__consumer_offsets`` partition,
    ``abs(hashCode(group)) % partitions`` as Kafka computes it, with Java's String.hashCode),
    and how many partitions of ``topics`` each node leads."""
    h = 0
    for ch in group:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    partition = (0 if signed == -(1 << 31) else abs(signed)) % OFFSETS_PARTITIONS
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=30)
    coordinator = int(meta.topics["__consumer_offsets"].partitions[partition].leader)
    leaders = Counter(p.leader for t in topics for p in meta.topics[t].partitions.values())
    return coordinator, leaders


@pytest.mark.timeout(1800)
def test_losing_a_broker_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    began = time.monotonic()
    dataset = generate(SCENARIO)
    local = LocalKafka(tmp_path / "kafka", nodes=3, die_with_parent=True)
    with local as cluster:
        bootstrap = cluster.bootstrap_servers
        system = System(
            bootstrap,
            tmp_path,
            profile="production",  # 3 replicas, min.insync.replicas 2
            worker_env={"AIR_EXSTREAM_REPLICATION_FACTOR": "3"},  # its changelogs too
            emulator_args=("--bounce-rate", "0"),  # no fallbacks: the reference is exact
            callbacks=False,
            supervise=True,  # a worker past its commit deadline exits and is restarted
        )
        expected = expected_for(dataset, system)
        with system, ThreadPoolExecutor(1) as publisher:
            system.start(dataset)
            victim, led = choose_victim(bootstrap, system.worker.app_id, system.topology.names)
            assert led[victim] > 0, "the lost broker must lead partitions of the topology"

            progress = Progress()
            published = publisher.submit(system.publish, dataset.events, seed=SCENARIO.seed)
            total = len(dataset.events)
            system.run_until(progress, lambda s: s.routed >= STOP_AT * total, every_s=1.0,
                             what=f"routing of {STOP_AT:.0%} of the events")  # fmt: skip
            local.stop_node(victim, kill=True)
            stopped = progress.now()
            system.run_until(progress, lambda s: s.at >= stopped + DOWN_S, every_s=1.0,
                             what="progress while the broker is down")  # fmt: skip
            restarting = progress.now()
            local.start_node(victim)
            restarted = progress.now()
            report = published.result(timeout=600)
            assert report.events == total
            done = system.run_until(progress, lambda s: s.routed >= total, every_s=1.0,
                                    what="routing of every event")  # fmt: skip
            system.run_until(progress, lambda s: s.documents >= len(expected.commands),
                             every_s=1.0, what="composition of every command")  # fmt: skip
            settled = progress.now()
            system.check_alive()  # nothing crashed: every process rode out the loss
            restarts = [t - progress.started for t in system.worker_restarts]
            ids, fallbacks = check_commands(system, expected)
            assert fallbacks == 0
            documents = check_documents(system, ids)
            dead = check_dead_letters(system, dataset, expected)
            audit = check_audit(system, commands=expected.commands, dead_letters=dead)

    stall = progress.stall_after(stopped)
    print(
        f"\nbroker loss: {total} events ({len(dataset.invalid_events)} invalid), "
        f"{len(expected.commands)} expected communications; node {victim} (coordinator of the "
        f"worker's group, leader of {led[victim]} of {sum(led.values())} topology partitions) "
        f"SIGKILLed at t={stopped:.0f}s with {progress.routed_at(stopped)} events routed, "
        f"restarted at t={restarting:.0f}s (ready at t={restarted:.0f}s); routing "
        f"{progress.rate(stopped - 60, stopped):.0f} events/s in the minute before, "
        f"{progress.rate(stopped, restarting):.0f} while down, "
        f"{progress.rate(restarted, done.at):.0f} after; progress stalled "
        f"{'never resumed' if stall is None else f'{stall:.1f} s'} after the loss; all routed at "
        f"t={done.at:.0f}s, all composed at t={settled:.0f}s; {documents}; "
        f"dead letters {len(dead)}; audit records {audit} (chain verified); worker restarts "
        f"after a missed commit deadline: {len(restarts)} (at t={[round(t) for t in restarts]}s); "
        f"samples skipped while the emulator was slow to answer: {progress.slow_emulator_reads}; "
        f"test took {time.monotonic() - began:.0f} s\ntimeline: {progress.timeline()}"
    )
    assert stall is not None
