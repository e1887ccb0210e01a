"""The framework ceiling of the routing benchmark: a Faust app that only forwards records.

``python -m benchmarks.faust_passthrough --bootstrap HOST:PORT --app-id ID --output TOPIC INPUT...``
runs until stopped. Same guarantees and machinery as the routing worker (faust-streaming,
``exactly_once``, the worker's
:class:`~streams.routing.faust_compat.CommitGuard`, so every record and its
offset commit in the input partition's transaction; the worker's producer linger, event loop and
log level), but each input record is copied unchanged to
``--output`` (same key, value, headers and partition) with no decoding, no join and no audit: what
remains is the per-record cost of Faust, aiokafka and the transactions themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import faust
from faust.worker import Worker

from streams.routing.app import RAW, Counters
from streams.routing.faust_compat import CommitGuard
from streams.routing.settings import WorkerSettings
from streams.routing.watchdog import Deadline


def build(bootstrap: str, app_id: str, inputs: list[str], output: str, data_dir: Path) -> Any:
    worker = WorkerSettings()  # the routing worker's producer and event loop settings
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        processing_guarantee="exactly_once",
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        web_enabled=False,
        datadir=str(data_dir),
        producer_acks=-1,
        producer_linger=worker.producer_linger_ms / 1000.0,
        stream_wait_empty=False,
    )
    guard = CommitGuard(app, Counters(), Deadline(worker.commit_timeout_s))
    app.on_partitions_revoked.connect(guard.on_revoked)
    out = app.topic(output, internal=False, **RAW)

    async def forward(msg: Any) -> None:
        await out.send(key=msg.key, value=msg.value, partition=msg.partition, headers=msg.headers)

    @app.agent(app.topic(*inputs, internal=False, **RAW))
    async def passthrough(stream: Any) -> None:
        async for event in stream.events():
            await guard.process(event, forward)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--data-dir", type=Path, default=Path("build/faust-passthrough"))
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    if WorkerSettings().event_loop == "uvloop":
        import mode.loop

        mode.loop.use("uvloop")
    app = build(args.bootstrap, args.app_id, args.inputs, args.output, args.data_dir)
    # log level "info", as the routing worker's
    Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
