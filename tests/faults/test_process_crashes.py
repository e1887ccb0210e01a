"""The routing worker, then the bulk sink, then the webhook receiver are SIGKILLed at seeded
moments of one run (while Exstream bounces emails and repeats and reorders callbacks), and each
is restarted: every communication is composed exactly once, every delivery event Exstream emitted
reaches Kafka, and Air Inc.'s status topic repeats no status and ends each communication at the
furthest status its delivery events reached. Reports its figures (printed with -s)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from streams.simulator.generator import Scenario, generate
from tests.conftest import KafkaCluster
from tests.faults.system import (
    Progress,
    System,
    check_audit,
    check_commands,
    check_dead_letters,
    check_delivery,
    check_documents,
    expected_for,
)

pytestmark = pytest.mark.faults

SCENARIO = Scenario(seed=20261203, customers=600, events=6_000, invalid_share=0.03)
WEATHER = (
    "--bounce-rate", "0.1",
    "--duplicate-callback-rate", "0.05",
    "--out-of-order-callback-rate", "0.05",
)  # fmt: skip


@pytest.mark.timeout(1200)
def test_killing_worker_sink_and_receiver_loses_and_duplicates_nothing(
    kafka: KafkaCluster, tmp_path: Path
) -> None:
    began = time.monotonic()
    dataset = generate(SCENARIO)
    total = len(dataset.events)
    system = System(kafka.bootstrap_servers, tmp_path, emulator_args=WEATHER)
    expected = expected_for(dataset, system)
    commands = len(expected.commands)
    rng = random.Random(SCENARIO.seed)
    with system:
        system.start(dataset)
        assert system.receiver is not None
        progress = Progress()
        system.publish(dataset.events, seed=SCENARIO.seed)
        # each moment is a seeded share of the work left once the previous process is back:
        # of the events to route, of the documents to compose, of the callbacks to answer (an
        # item has at least three: accepted, composed and one delivery step or more); the sink
        # and the receiver die with work in hand (batches in flight, callbacks queued)
        worker_at = round(rng.uniform(0.2, 0.5) * total)
        worker = system.kill_and_restart(system.worker, progress,
                                         lambda s: s.routed >= worker_at,
                                         down_s=rng.uniform(0.5, 3.0))  # fmt: skip
        base = system.run_until(progress, lambda s: True, what="a sample")
        sink_at = base.documents + round(rng.uniform(0.2, 0.5) * (commands - base.documents))
        sink = system.kill_and_restart(system.sink, progress,
                                       lambda s: s.documents >= sink_at,
                                       down_s=rng.uniform(0.5, 3.0),
                                       in_hand=system.sink_inflight)  # fmt: skip
        base = system.run_until(progress, lambda s: True, what="a sample")
        # about two callbacks per communication at the least: the kill comes mid-run
        left = max(0, 2 * commands - base.callbacks)
        receiver_at = base.callbacks + round(rng.uniform(0.2, 0.5) * left)
        receiver = system.kill_and_restart(system.receiver, progress,
                                           lambda s: s.callbacks >= receiver_at,
                                           down_s=rng.uniform(0.5, 3.0),
                                           in_hand=system.callbacks_queued)  # fmt: skip
        settled = system.wait_settled(progress, events=total)
        final = system.run_until(progress, lambda s: True, what="a sample")
        ids, fallbacks = check_commands(system, expected)
        documents = check_documents(system, ids)
        delivery = check_delivery(system, ids)
        dead = check_dead_letters(system, dataset, expected)
        audit = check_audit(system, commands=ids, dead_letters=dead, composed=ids)

    kills = [worker, sink, receiver]
    print(
        f"\nprocess crashes: {total} events, {commands} communications routed + {fallbacks} "
        f"fallbacks; "
        + "; ".join(
            f"{k.process} SIGKILLed at t={k.at_s:.1f}s (routed {k.sample.routed}, documents "
            f"{k.sample.documents}, callbacks answered {k.sample.callbacks}"
            + ("" if k.in_hand is None else f", work in hand {k.in_hand}")
            + f"), restarted {k.down_s:.1f} s later"
            for k in kills
        )
        + f"; settled at t={settled:.0f}s; {documents}; {delivery}; dead letters {len(dead)}; "
        f"audit records {audit} (chain verified); test took {time.monotonic() - began:.0f} s"
    )
    # each kill came mid-run, with work left for the restarted process
    assert worker.sample.routed < total
    assert sink.sample.documents < len(ids)
    assert receiver.sample.callbacks < final.callbacks  # both count answered callbacks
