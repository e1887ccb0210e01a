"""An experiment, not a benchmark (issue 14, helper ``enginefix``): does ``Engine.run()`` go on
through a restart of the only broker, or raise, or hang?

``python -m benchmarks.engine_broker_restart DOWN_S {term,kill}``: a fresh one-node local
cluster; an engine counting keys of ``in`` into a store and copying each record to ``out`` while
a plain producer feeds ``in`` (~200 records/s); after 10 s the node is stopped (SIGTERM or
SIGKILL) for ``DOWN_S`` s and started again on the same port; then the feed stops and the engine
gets 90 s to catch up before it is asked to stop (60 s). Prints the handled counts, how ``run()``
ended, and the committed output (duplicates, missing). A Python traceback of every thread is
dumped 200 s after the start of the outage if the process is still running (a hang).
"""

from __future__ import annotations

import asyncio
import faulthandler
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.engine.api import Record
from streams.engine.engine import Engine, EngineConfig
from streams.localkafka import LocalKafka

CATCH_UP_S = 90.0


async def experiment(down_s: float, kill: bool) -> None:
    local = LocalKafka(Path(tempfile.mkdtemp()) / "kafka", nodes=1, die_with_parent=True)
    info = local.start()
    node = info.nodes[0].node_id
    boot = ",".join(f"127.0.0.1:{n.broker_port}" for n in info.nodes)
    try:
        admin = AdminClient({"bootstrap.servers": boot})
        for future in admin.create_topics([NewTopic("in", 3, 1), NewTopic("out", 3, 1)]).values():
            future.result(30)
        engine = Engine(
            EngineConfig(
                app_id="restart",
                kafka={"bootstrap.servers": boot},
                consumer={"session.timeout.ms": "20000", "heartbeat.interval.ms": "3000"},
                instance_id="0",
            )
        )
        store = engine.store("count", changelog_topic="restart-count-cl", partitions=3)
        handled = [0]

        async def count(record: Record) -> None:
            assert record.key is not None
            n = int(store.get(record.partition, record.key) or b"0") + 1
            store.put(record.partition, record.key, str(n).encode())
            engine.outputs.send("out", record.value, key=record.key, partition=record.partition)
            handled[0] += 1

        engine.input("in", count)
        sent = [0]
        feeding = threading.Event()
        feeding.set()

        def feed() -> None:
            producer = Producer({"bootstrap.servers": boot, "acks": "all"})
            while feeding.is_set():
                i = sent[0]
                producer.produce("in", key=f"k{i % 50}".encode(), value=f"v{i}".encode())
                sent[0] += 1
                producer.poll(0)
                time.sleep(0.005)
            producer.flush(120)

        feeder = threading.Thread(target=feed)
        feeder.start()
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        await asyncio.sleep(10)
        print(f"before: handled {handled[0]}, sent {sent[0]}, run() done: {task.done()}")
        faulthandler.dump_traceback_later(200, exit=False)
        await asyncio.to_thread(local.stop_node, node, kill=kill)
        down_at = time.monotonic()
        await asyncio.sleep(down_s)
        print(f"after {down_s:.0f} s down: handled {handled[0]}, run() done: {task.done()}")
        await asyncio.to_thread(local.start_node, node)
        print(f"broker back {time.monotonic() - down_at:.1f} s after it stopped")
        feeding.clear()
        await asyncio.to_thread(feeder.join)
        deadline = time.monotonic() + CATCH_UP_S
        while time.monotonic() < deadline and not task.done() and handled[0] < sent[0]:
            await asyncio.wait({task}, timeout=0.5)
        print(
            f"caught up? handled {handled[0]} of {sent[0]}, run() done: {task.done()},"
            f" {time.monotonic() - down_at:.1f} s after the broker stopped"
        )
        stop.set()
        try:
            await asyncio.wait_for(task, 60)
            print("run() ended cleanly")
        except Exception as exc:  # noqa: BLE001 (the experiment's answer)
            print(f"run() raised {type(exc).__name__}: {exc} (cause: {exc.__cause__!r})")
        print(f"output: {_check_output(boot, sent[0])}")
    finally:
        local.stop()


def _check_output(boot: str, sent: int) -> str:
    consumer = Consumer(
        {
            "bootstrap.servers": boot,
            "group.id": "restart-check",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(["out"])
    values: list[bytes | None] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(values) < sent:
        values.extend(m.value() for m in consumer.consume(1000, 1.0) if m.error() is None)
    consumer.close()
    counts = Counter(values)
    doubled = sum(1 for n in counts.values() if n > 1)
    return f"{len(values)} committed, {doubled} doubled, {sent - len(counts)} of {sent} missing"


if __name__ == "__main__":
    asyncio.run(experiment(float(sys.argv[1]), sys.argv[2] == "kill"))
