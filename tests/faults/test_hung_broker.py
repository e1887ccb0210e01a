"""The broker hangs mid-run (SIGSTOP: connections stay open, nothing is answered, as in a long
GC pause or on a frozen host). The routing worker's commit cannot finish, so the worker must not
wait for ever: past its commit deadline it writes where each task waits and exits with
``EXIT_STUCK``; the harness restarts it as a supervisor would, once the broker runs again.
Afterwards every communication the reference expects was composed exactly once, every invalid
event was dead-lettered and the audit chain verifies. Reports its figures (printed with -s)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from streams.localkafka import LocalKafka
from streams.routing.watchdog import EXIT_STUCK
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

SCENARIO = Scenario(seed=20261128, customers=800, events=8_000, invalid_share=0.03)
FREEZE_AT = 0.3
"""Share of the events routed when the broker is frozen."""
COMMIT_TIMEOUT_S = 10.0
"""The worker's commit deadline in this test (90 s by default)."""
EXIT_WAIT_S = 180.0
"""How long the frozen broker may hold the worker before the test fails: the deadline, plus
the commit timer's interval, plus a busy machine."""
NODE = 1


@pytest.mark.timeout(1200)
def test_a_hung_broker_ends_the_stuck_worker_and_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    dataset = generate(SCENARIO)
    total = len(dataset.events)
    local = LocalKafka(tmp_path / "kafka", nodes=1, die_with_parent=True)
    with local as cluster:
        system = System(
            cluster.bootstrap_servers,
            tmp_path,
            worker_env={"AIR_EXSTREAM_COMMIT_TIMEOUT_S": str(COMMIT_TIMEOUT_S)},
            emulator_args=("--bounce-rate", "0"),  # no fallbacks: the reference is exact
            callbacks=False,
            supervise=True,
        )
        expected = expected_for(dataset, system)
        with system, ThreadPoolExecutor(1) as publisher:
            system.start(dataset)
            progress = Progress()
            published = publisher.submit(system.publish, dataset.events, seed=SCENARIO.seed)
            system.run_until(progress, lambda s: s.routed >= FREEZE_AT * total,
                             what=f"routing of {FREEZE_AT:.0%} of the events")  # fmt: skip
            routed_before = progress.samples[-1].routed
            local.pause_node(NODE)
            frozen = progress.now()
            try:
                exited = _wait_for_exit(system, EXIT_WAIT_S)
            finally:
                local.resume_node(NODE)
            gave_up = progress.now()
            assert exited == EXIT_STUCK, f"the worker exited with {exited}:\n{system.worker.tail()}"
            log = system.worker.log.read_text(errors="replace")
            assert "has not completed in" in log  # the reason, for a person
            assert "asyncio tasks: " in log  # and where each task waited
            system.check_alive()  # the supervisor's restart
            assert len(system.worker_restarts) == 1
            report = published.result(timeout=600)
            assert report.events == total
            done = system.run_until(progress, lambda s: s.routed >= total,
                                    what="routing of every event")  # fmt: skip
            system.run_until(progress, lambda s: s.documents >= len(expected.commands),
                             what="composition of every command")  # fmt: skip
            settled = progress.now()
            system.check_alive()
            assert len(system.worker_restarts) == 1  # one stuck commit, one restart
            ids, fallbacks = check_commands(system, expected)
            assert fallbacks == 0
            documents = check_documents(system, ids)
            dead = check_dead_letters(system, dataset, expected)
            audit = check_audit(system, commands=expected.commands, dead_letters=dead)

    print(
        f"\nhung broker: {total} events ({len(dataset.invalid_events)} invalid), "
        f"{len(expected.commands)} expected communications; broker frozen at t={frozen:.0f}s "
        f"with {routed_before} events routed; the worker gave up {gave_up - frozen:.1f} s "
        f"later (deadline {COMMIT_TIMEOUT_S:.0f} s, status {exited}) and the broker ran again; "
        f"all routed at t={done.at:.0f}s ({done.at - gave_up:.0f} s after), all composed at "
        f"t={settled:.0f}s; {documents}; dead letters {len(dead)}; audit records {audit} "
        f"(chain verified); test took {time.monotonic() - began:.0f} s"
    )


def _wait_for_exit(system: System, timeout_s: float) -> int | None:
    """The worker's exit status once it exits, None if it still runs after ``timeout_s``. Only
    the worker is watched: the other processes wait on the frozen broker as well."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = system.worker_exit()
        if status is not None:
            return status
        time.sleep(0.2)
    return None
