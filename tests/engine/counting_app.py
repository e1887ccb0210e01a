"""A counting app on the engine, run as a child process by the engine's real-broker tests:
input topic -> per-key count store -> output topic.

``python -m tests.engine.counting_app --bootstrap B --app-id A --instance-id I --input T
--output O --changelog C --partitions N --state-file F [--delay-ms D]``

Each input record (key k, value v) adds one to k's count in the store and sends ``v|count`` with
key k to the output partition of the input's number. Every 0.2 s a timer writes the state this
process holds to ``F`` as JSON ``{partition: {key: count}}``. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from streams.config import KafkaSettings
from streams.engine.api import Record
from streams.engine.engine import Engine, EngineConfig


def build(args: argparse.Namespace) -> Engine:
    kafka = KafkaSettings().with_bootstrap(args.bootstrap).confluent_config()
    engine = Engine(
        EngineConfig(
            app_id=args.app_id,
            kafka=kafka,
            # a SIGKILLed member's partitions move after its session times out: 10 s, not 45
            consumer={"session.timeout.ms": "10000"},
            instance_id=args.instance_id,
            max_task_idle_ms=200,
            # a restart under another instance id waits for the dead one's open transaction
            # to time out (its records hold the read_committed end back): short in tests
            transaction_timeout_ms=10_000,
        )
    )
    counts = engine.store("counts", changelog_topic=args.changelog, partitions=args.partitions)
    delay_s = args.delay_ms / 1000

    async def count(record: Record) -> None:
        assert record.key is not None
        assert record.value is not None
        n = int(counts.get(record.partition, record.key) or b"0") + 1
        counts.put(record.partition, record.key, str(n).encode())
        engine.outputs.send(
            args.output,
            record.value + b"|" + str(n).encode(),
            key=record.key,
            partition=record.partition,
        )
        if delay_s:
            await asyncio.sleep(delay_s)

    last: list[str] = [""]
    state_file = Path(args.state_file)

    async def snapshot() -> None:
        state = {
            str(p): {k.decode(): int(v) for k, v in counts.items(p)}
            for p in sorted(counts.partitions())
        }
        text = json.dumps(state, sort_keys=True)
        if text != last[0]:
            tmp = state_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(state_file)
            last[0] = text

    engine.input(args.input, count)
    engine.timer(0.2, snapshot)
    return engine


async def main_async(args: argparse.Namespace) -> None:
    engine = build(args)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await engine.run(stop)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.engine.counting_app")
    for name in ("bootstrap", "app-id", "instance-id", "input", "output", "changelog"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--state-file", required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(name)s %(message)s"
    )
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
