"""Pid identity and stopping, on stand-in processes (no broker)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from streams.localkafka import LocalKafka
from streams.localkafka.errors import LocalKafkaError, PortInUse, StateDirRefused
from streams.localkafka.processes import (
    is_broker_process,
    launch,
    log_excerpt,
    pick_free_ports,
    require_free,
    stop_processes,
)

pytestmark = pytest.mark.component


def stand_in(tmp_path: Path, properties: Path, *, ignore_term: bool = False) -> int:
    """A sleeping Python process whose command line looks like a node's JVM."""
    ready = tmp_path / f"ready-{properties.parent.name}"
    code = (
        "import signal, sys, time, pathlib\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
        + f"pathlib.Path({str(ready)!r}).touch()\n"
        + "time.sleep(120)\n"
    )
    pid = launch(
        [sys.executable, "-c", code, "kafka.Kafka", str(properties)], output=tmp_path / "out.log"
    )
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline, "stand-in process did not start"
        time.sleep(0.05)
    return pid


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = pick_free_ports(6)
    assert len(set(ports)) == 6
    require_free(ports)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(20000 <= p < low for p in ports)  # never one a client socket may be given


def test_a_listening_port_is_reported_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port}"):
            require_free([port])


def test_only_the_process_with_the_nodes_properties_is_ours(tmp_path: Path) -> None:
    mine, other = tmp_path / "a" / "server.properties", tmp_path / "b" / "server.properties"
    assert not is_broker_process(os.getpid(), mine)
    pid = stand_in(tmp_path, mine)
    try:
        assert is_broker_process(pid, mine)
        assert not is_broker_process(pid, other)
        assert stop_processes([(pid, other)], timeout_s=1) == []  # not signalled
        assert is_broker_process(pid, mine)
        assert stop_processes([(pid, mine)], timeout_s=10) == [pid]
        assert not is_broker_process(pid, mine)
    finally:
        stop_processes([(pid, mine)], timeout_s=1, sig=signal.SIGKILL)


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    props = tmp_path / "a" / "server.properties"
    pid = stand_in(tmp_path, props, ignore_term=True)
    started = time.monotonic()
    assert stop_processes([(pid, props)], timeout_s=0.5) == [pid]
    assert not is_broker_process(pid, props)
    assert time.monotonic() - started < 10


def test_down_never_signals_a_pid_from_the_state_file_that_is_not_its_broker(
    tmp_path: Path,
) -> None:
    local = LocalKafka(tmp_path / "s")
    local.state_dir.mkdir(parents=True)
    # a state file naming this very test process, which is no kafka.Kafka of that state dir
    local.state_file.write_text(
        json.dumps(
            {
                "cluster_id": "x",
                "state_dir": str(local.state_dir),
                "nodes": [
                    {
                        "node_id": 1,
                        "broker_port": 1,
                        "controller_port": 2,
                        "pid": os.getpid(),
                        "log_file": "l",
                    }
                ],
            }
        )
    )
    assert local.stop() == 0  # and this process lives on to check it


def test_a_foreign_non_empty_state_dir_is_never_wiped(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(StateDirRefused, match="not empty"):
        LocalKafka(tmp_path).start()
    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stop_without_a_cluster_creates_nothing(tmp_path: Path) -> None:
    assert LocalKafka(tmp_path / "none").stop() == 0
    assert not (tmp_path / "none").exists()


def test_cluster_shape_is_checked(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="1 or 3 nodes"):
        LocalKafka(tmp_path, nodes=2)
    with pytest.raises(LocalKafkaError, match="port pairs"):
        LocalKafka(tmp_path, nodes=3, ports=[(1, 2)])


def test_log_excerpt_keeps_errors_and_causes_without_stack_frames(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "[t1] INFO starting (kafka.Kafka$)\n"
        "[t2] ERROR Fatal error during broker startup (kafka.server.BrokerServer)\n"
        "\tat kafka.network.Acceptor.start(SocketServer.scala:530)\n"
        "Caused by: java.net.BindException: Address already in use\n"
        "[t3] ERROR Fatal error during broker startup (kafka.server.BrokerServer)\n"
        + "".join(f"[t{i}] INFO shutting down part {i} (kafka.server.X)\n" for i in range(4, 10))
        + "[t10] INFO shut down completely (kafka.server.KafkaRequestHandlerPool)\n"
    )
    text = log_excerpt(log)
    assert "BindException: Address already in use" in text
    assert text.count("Fatal error during broker startup") == 1
    assert "SocketServer.scala" not in text
    assert "part 4" not in text  # only the last lines
    assert text.rstrip().endswith("shut down completely (kafka.server.KafkaRequestHandlerPool)")
    assert "missing" in log_excerpt(tmp_path / "nope.log")


def test_a_state_dir_from_an_earlier_runner_version_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "node-1").mkdir()
    (tmp_path / "node-1" / "server.properties").write_text("node.id=1\n")
    (tmp_path / "tools.log").write_text("")
    LocalKafka(tmp_path)._check_ownership()  # no StateDirRefused


def test_a_node_is_recognised_while_its_launcher_execs_into_java(tmp_path: Path) -> None:
    """setpriv execs java after launch() returned; mid-exec /proc shows an empty command line."""
    props = tmp_path / "n" / "server.properties"
    node = [sys.executable, "-c", "import time; time.sleep(30)", "kafka.Kafka", str(props)]
    for _ in range(20):
        pid = launch(["/bin/sh", "-c", 'exec "$@"', "sh", *node], output=tmp_path / "out.log")
        try:
            assert is_broker_process(pid, props)
        finally:
            stop_processes([(pid, props)], timeout_s=5, sig=signal.SIGKILL)
