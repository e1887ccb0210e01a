"""The local broker for real: the session fixture's broker, the CLI, start failures, 3 nodes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams.cli import cli
from streams.localkafka import LocalKafka, processes
from streams.localkafka.errors import BrokerStartFailed, PortInUse
from tests.conftest import KafkaCluster, consume, wait_for_topics

pytestmark = pytest.mark.e2e


def test_session_broker_round_trips_records(
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    consumer_factory: Callable[..., Consumer],
) -> None:
    topic = topic_factory("roundtrip", partitions=3)
    producer = producer_factory()
    for i in range(50):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    got = consume(consumer_factory(topic), 50)
    assert sorted(m.value() or b"" for m in got) == sorted(f"v{i}".encode() for i in range(50))


def test_topic_factory_applies_partitions_and_config(
    kafka: KafkaCluster, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("compacted", partitions=4, config={"cleanup.policy": "compact"})
    admin = kafka.admin()
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 4
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_cli_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    state = str(tmp_path / "cli-state")
    runner = CliRunner()
    up = runner.invoke(cli, ["kafka", "up", "--state-dir", state])
    try:
        assert up.exit_code == 0, up.output
        assert "1 node(s) up in" in up.output
        bootstrap = next(x for x in up.output.splitlines() if x.startswith("bootstrap servers: "))
        assert bootstrap.startswith("bootstrap servers: 127.0.0.1:")
        again = runner.invoke(cli, ["kafka", "up", "--state-dir", state])
        assert again.exit_code == 0, again.output
        assert "already running" in again.output
        assert bootstrap in again.output.splitlines()  # the same cluster, nothing new started
        status = runner.invoke(cli, ["kafka", "status", "--state-dir", state])
        assert status.exit_code == 0, status.output
        assert "node 1: running" in status.output
        assert bootstrap in status.output.splitlines()
    finally:
        down = runner.invoke(cli, ["kafka", "down", "--state-dir", state])
    assert down.exit_code == 0
    assert "stopped 1 node(s)" in down.output
    after = runner.invoke(cli, ["kafka", "status", "--state-dir", state])
    assert after.exit_code == 1
    assert "no local cluster recorded" in after.output
    assert runner.invoke(cli, ["kafka", "down", "--state-dir", state]).output == (
        "stopped 0 node(s)\n"
    )


def test_a_taken_port_is_a_clear_error(tmp_path: Path, kafka: KafkaCluster) -> None:
    taken = int(kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    local = LocalKafka(tmp_path / "s", ports=[(taken, processes.pick_free_ports(1)[0])])
    with pytest.raises(PortInUse, match=f"port {taken}"):
        local.start()


def test_a_broker_exiting_during_startup_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port grabbed between the check and the JVM's bind: the node dies, the error says why."""
    monkeypatch.setattr(processes, "require_free", lambda ports: None)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        local = LocalKafka(
            tmp_path / "s", ports=[(port, processes.pick_free_ports(1)[0])], die_with_parent=True
        )
        with pytest.raises(BrokerStartFailed, match="exited during startup") as caught:
            local.start()
    assert "Address already in use" in str(caught.value)
    assert caught.value.port_conflict
    assert local.info() is None  # nothing left recorded (or running)


def test_picked_ports_taken_before_the_bind_are_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pick = processes.pick_free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks: list[list[int]] = []

        def pick(count: int) -> list[int]:
            ports = real_pick(count)
            if not picks:
                ports[0] = taken  # the broker port of the first attempt is lost to a squatter
            picks.append(ports)
            return ports

        monkeypatch.setattr(processes, "pick_free_ports", pick)
        with LocalKafka(tmp_path / "s", die_with_parent=True) as info:
            assert len(picks) == 2
            assert info.nodes[0].broker_port == picks[1][0] != taken


def test_three_nodes_keep_an_rf3_topic_available_when_one_node_stops(tmp_path: Path) -> None:
    local = LocalKafka(tmp_path / "three", nodes=3, die_with_parent=True)
    with local as info:
        assert len(info.nodes) == 3
        assert len(set(info.bootstrap_servers.split(","))) == 3
        admin = AdminClient({"bootstrap.servers": info.bootstrap_servers})
        topic = "replicated"
        new = NewTopic(topic, num_partitions=3, replication_factor=3)
        new.config = {"min.insync.replicas": "2"}
        admin.create_topics([new])[topic].result(30)
        wait_for_topics(admin, [topic])
        producer = Producer(
            {"bootstrap.servers": info.bootstrap_servers, "acks": "all", "enable.idempotence": True}
        )
        failures: list[object] = []

        def produce(phase: str) -> None:
            for i in range(100):
                producer.produce(
                    topic,
                    key=str(i).encode(),
                    value=f"{phase}-{i}".encode(),
                    on_delivery=lambda err, _msg: failures.append(err) if err else None,
                )
            assert producer.flush(60) == 0
            assert failures == []

        produce("before")
        local.stop_node(2)
        assert {n.node_id for n in local.running_nodes()} == {1, 3}
        produce("after")  # acks=all with 2 of 3 replicas in sync: still accepted

        consumer = Consumer(
            {
                "bootstrap.servers": info.bootstrap_servers,
                "group.id": "rf3-check",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            consumer.subscribe([topic])
            got = consume(consumer, 200, timeout_s=60)
        finally:
            consumer.close()
        expected = {f"{phase}-{i}".encode() for phase in ("before", "after") for i in range(100)}
        assert sorted(m.value() or b"" for m in got) == sorted(expected)  # each exactly once

        restarted = local.start_node(2)
        assert {n.node_id for n in local.running_nodes()} == {1, 2, 3}
        assert restarted.node(2) != info.node(2)  # a new pid on the same ports
        producer.flush(10)
        producer.close()
    assert local.running_nodes() == []
    assert local.info() is None


def test_a_test_session_killed_outright_leaves_no_broker_behind(tmp_path: Path) -> None:
    """die_with_parent: the session process is SIGKILLed, so no teardown runs; the node follows."""
    state = tmp_path / "orphan"
    ready = tmp_path / "ready"
    code = (
        "import pathlib, sys, time\n"
        "from streams.localkafka import LocalKafka\n"
        f"LocalKafka({str(state)!r}, die_with_parent=True).start()\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(300)\n"
    )
    session = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            assert session.poll() is None, "the stand-in session failed to start its broker"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        local = LocalKafka(state)
        assert local.is_running()
        session.kill()
        session.wait(10)
        deadline = time.monotonic() + 60
        while local.running_nodes():
            assert time.monotonic() < deadline, "the broker outlived its killed parent"
            time.sleep(0.2)
    finally:
        session.kill()
        session.wait(10)
        LocalKafka(state).stop()
