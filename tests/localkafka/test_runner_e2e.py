from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.localkafka import LocalKafka
from streams.localkafka.cli import kafka as kafka_cli
from streams.localkafka.errors import LocalKafkaError, PortInUse
from tests.conftest import KafkaCluster, consume, wait_for_topics

pytestmark = pytest.mark.e2e


def test_session_broker_round_trips_records(
    kafka: KafkaCluster,
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
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(50))


def test_cli_up_status_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    state = str(tmp_path / "cli-state")
    runner = CliRunner()
    up = runner.invoke(kafka_cli, ["up", "--state-dir", state])
    try:
        assert up.exit_code == 0, up.output
        assert "bootstrap servers: 127.0.0.1:" in up.output
        again = runner.invoke(kafka_cli, ["up", "--state-dir", state])
        assert again.exit_code == 0
        # idempotent: the same cluster is reported, nothing new is started
        assert again.output.splitlines()[1] == up.output.splitlines()[1]
        status = runner.invoke(kafka_cli, ["status", "--state-dir", state])
        assert status.exit_code == 0
        assert "node 1: running" in status.output
    finally:
        down = runner.invoke(kafka_cli, ["down", "--state-dir", state])
    assert down.exit_code == 0
    assert "stopped 1 node(s)" in down.output
    after = runner.invoke(kafka_cli, ["status", "--state-dir", state])
    assert after.exit_code == 1


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    local = LocalKafka(tmp_path / "s")
    local.state_dir.mkdir(parents=True)
    # a state file naming this very test process: it is not a kafka.Kafka of that state dir
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
    assert local.stop() == 0  # and this process is still alive to assert it
    assert signal.SIGTERM  # reached: the test process was not terminated


def test_taken_port_gives_a_clear_error(tmp_path: Path, kafka: KafkaCluster) -> None:
    taken = int(kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    local = LocalKafka(tmp_path / "s", ports=[(taken, taken + 1)])
    with pytest.raises(PortInUse, match=f"port {taken}"):
        local.start()


def test_invalid_node_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="1 or 3 nodes"):
        LocalKafka(tmp_path, nodes=2)


def test_three_node_cluster_keeps_rf3_topic_available_when_one_node_stops(
    tmp_path: Path,
) -> None:
    local = LocalKafka(tmp_path / "three", nodes=3)
    info = local.start()
    try:
        assert len(info.nodes) == 3
        admin = AdminClient({"bootstrap.servers": info.bootstrap_servers})
        topic = "replicated"
        admin.create_topics([NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})])[
            topic
        ].result(30)
        wait_for_topics(admin, [topic])
        producer = Producer(
            {"bootstrap.servers": info.bootstrap_servers, "acks": "all", "enable.idempotence": True}
        )
        for i in range(100):
            producer.produce(topic, key=str(i).encode(), value=f"before-{i}".encode())
        assert producer.flush(30) == 0

        local.stop_node(2)
        assert {n.node_id for n in local.running_nodes()} == {1, 3}

        failures: list[object] = []
        for i in range(100):
            producer.produce(
                topic,
                key=str(i).encode(),
                value=f"after-{i}".encode(),
                on_delivery=lambda err, _msg: failures.append(err) if err else None,
            )
        assert producer.flush(60) == 0
        assert failures == []

        consumer = Consumer(
            {
                "bootstrap.servers": info.bootstrap_servers,
                "group.id": "rf3-check",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        got = consume(consumer, 200, timeout_s=60)
        consumer.close()
        values = {m.value() for m in got}
        assert values == {f"before-{i}".encode() for i in range(100)} | {
            f"after-{i}".encode() for i in range(100)
        }
    finally:
        local.stop()
