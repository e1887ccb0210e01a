"""The Faust framework-ceiling baseline really copies every record, in its transaction."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.demo.processes import committed
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e

RECORDS = 300


@pytest.mark.timeout(240)
def test_every_input_record_is_copied_once_and_its_offset_committed(
    kafka: KafkaCluster,
    topic_factory: Callable[..., str],
    producer_factory: Callable[..., Producer],
    tmp_path: Path,
) -> None:
    inputs = [topic_factory("fp-in", partitions=3), topic_factory("fp-in", partitions=3)]
    output = topic_factory("fp-out", partitions=3)
    producer = producer_factory()
    sent = set()
    for i in range(RECORDS):
        key, value = f"k{i % 17}".encode(), f"value-{i}".encode()
        producer.produce(inputs[i % 2], key=key, value=value, headers=[("h", str(i).encode())])
        sent.add((key, value))
    assert producer.flush(30) == 0
    group = f"fp-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "faust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.faust_passthrough", "--bootstrap",
             kafka.bootstrap_servers, "--app-id", group, "--output", output,
             "--data-dir", str(tmp_path / "data"), *inputs],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    probe = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in inputs for p in range(3)]
        deadline = time.monotonic() + 180
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            done = sum(max(0, o) for o in committed(probe, tps).values())
            if done >= RECORDS:
                break
            time.sleep(0.5)
        assert done == RECORDS, f"committed {done} of {RECORDS}:\n{log.read_text()[-2000:]}"
    finally:
        probe.close()
        proc.terminate()
        proc.wait(30)
    copied = [(r.key, r.value) for r in read_topic(kafka.bootstrap_servers, output)]
    assert len(copied) == RECORDS  # read_committed: each record once, none left in a transaction
    assert set(copied) == sent
