"""Sink throughput: composition commands on Kafka -> documents accepted by the emulator.

Measured: ``air-exstream sink`` (a process) consuming N commands from a fresh topic and submitting
them in batch jobs, counted by the emulator's ledger between 10 % and 100 % of the documents (the
warm-up — process start, group join, first fetch — excluded).

Baseline, same run, same emulator settings: a bare aiohttp client posting the same batches as
multi-customer driver files to the batch input channel (same batch size, same fixed
concurrency) with no Kafka, retries, intents, lookups or offset management, counted by the same
ledger over the same 10 %..100 % window.

Each side runs ``REPETITIONS`` times against a fresh emulator; medians are reported.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from confluent_kafka import Producer

from benchmarks.common import broker, machine, median
from streams.codec import codec_for
from streams.demo.processes import ServiceProcess, free_port, wait_http
from streams.domain.records import CompositionCommand, PostalAddress, Recipient
from streams.emulator.design import communication_id
from streams.emulator.synced import publish_synced_templates
from streams.exstream.driver import batch_file, customer_record
from streams.simulator.generator import template_catalogue
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

COMMANDS = int(os.environ.get("BENCH_SINK_COMMANDS", "12000"))
BATCH = 200
CONCURRENCY = 8
REPETITIONS = int(os.environ.get("BENCH_REPETITIONS", "3"))
LATENCY = ("--latency-median-ms", "5", "--latency-p99-ms", "20")
SECRET = secrets.token_urlsafe(16)  # per run, for the local emulator only


def commands(n: int, tag: str) -> list[CompositionCommand]:
    rng = random.Random(7)
    templates = [t for t in template_catalogue() if t.status == "APPROVED"]
    address = PostalAddress(
        line1="1 Main St", city="Springfield", postal_code="12345", country="US"
    )
    out = []
    for i in range(n):
        t = templates[i % len(templates)]
        channel = (t.channels or ["PRINT", "EMAIL", "WEB"])[i % len(t.channels or [1, 2, 3])]
        out.append(
            CompositionCommand(
                communication_id=f"com-bench-{tag}-{i:07d}",
                source_event_id=f"evt-{i}",
                source_topic="air.account-events.v1",
                event_type="BILLING_CYCLE_CLOSED",
                rule_id="rule-bench",
                rule_version=1,
                customer_id=f"cust-{rng.randrange(1000):06d}",
                communication_type=t.communication_type,
                template_id=t.template_id,
                template_version=t.version,
                language=t.language,
                channel=channel,
                recipient=Recipient(postal_address=address) if channel == "PRINT" else Recipient(),
                data=dict.fromkeys(t.required_fields, f"value {i}"),
                created_at=1_767_225_600_000 + i,
            )
        )
    return out


def _emulator(workdir: Path) -> tuple[ServiceProcess, str]:
    port = free_port()
    process = ServiceProcess(
        "emulator",
        ["exstream-emulator", "--port", str(port), *LATENCY],
        workdir,
        {"EXSTREAM_CLIENT_SECRET": SECRET},
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_emulator/healthz", process)
    return process, url


def _documents(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/ledger", timeout=10) as response:  # noqa: S310
        return int(orjson.loads(response.read())["documents"])


def _window_rate(url: str, n: int, alive: Any, timeout_s: float = 600.0) -> float:
    """Documents/s between 10 % and 100 % of ``n`` documents, polling the ledger."""
    deadline = time.monotonic() + timeout_s
    start: tuple[float, int] | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the process under test exited")
        docs = _documents(url)
        now = time.monotonic()
        if start is None and docs >= n // 10:
            start = (now, docs)
        if docs >= n and start is not None:
            return (docs - start[1]) / max(now - start[0], 1e-9)
        time.sleep(0.05)
    raise RuntimeError(f"only {_documents(url)} of {n} documents in {timeout_s} s")


def measured_once(bootstrap: str, workdir: Path, rep: int) -> float:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology({"bootstrap.servers": bootstrap}, topology)
    codec = codec_for(CompositionCommand)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for c in commands(COMMANDS, f"s{rep}"):
        producer.produce(
            topology.name(names.COMMANDS), key=c.customer_id.encode(), value=codec.encode(c)
        )
    producer.flush(120)
    publish_synced_templates(template_catalogue(), topology, {"bootstrap.servers": bootstrap})
    emulator, url = _emulator(workdir)
    sink = ServiceProcess(
        "sink",
        [
            "sink",
            "--prefix", prefix,
            "--group-id", f"bench-{uuid.uuid4().hex[:6]}",
            "--batch-size", str(BATCH),
            "--initial-concurrency", str(CONCURRENCY),
            "--max-concurrency", str(CONCURRENCY),
            "--loglevel", "warning",
        ],
        workdir,
        {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "EXSTREAM_CLIENT_SECRET": SECRET,
         "EXSTREAM_URL": url},
    )  # fmt: skip
    try:
        sink.start()
        return _window_rate(url, COMMANDS, sink.alive)
    finally:
        sink.stop()
        emulator.stop()


async def _bare_client(url: str, items: list[dict[str, Any]]) -> float:
    # the same paths and bodies the sink's client sends (token, batch input channel)
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    warmup = max(1, len(batches) // 10)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/otdsws/otdstenant/air/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "air-exstream",
                "client_secret": SECRET,
            },
        ) as r:
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        queue: asyncio.Queue[tuple[int, list[dict[str, Any]]]] = asyncio.Queue()
        for i, b in enumerate(batches):
            queue.put_nowait((i, b))
        marks: dict[str, float] = {}

        async def worker() -> None:
            while not queue.empty():
                i, batch = queue.get_nowait()
                if i == warmup:
                    marks.setdefault("start", time.monotonic())
                body = batch_file(batch)
                channel = f"{url}/orchestration/api/v1/inputs/batch/air/air-batch"
                async with session.post(channel, data=body, headers=headers) as r:
                    if r.status != 200:
                        raise RuntimeError(f"baseline batch refused: {r.status}")
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        done = time.monotonic()
    counted = sum(len(b) for b in batches[warmup:])
    return counted / max(done - marks["start"], 1e-9)


def baseline_once(workdir: Path, rep: int) -> float:
    """The bare client runs in a thread; the rate is read off the ledger exactly as for the
    sink (documents composed, not just jobs accepted)."""
    emulator, url = _emulator(workdir)
    try:
        items = [
            customer_record(
                c, exstream_communication_id=communication_id(c.template_id, c.language)
            )
            for c in commands(COMMANDS, f"b{rep}")
        ]
        client = threading.Thread(target=lambda: asyncio.run(_bare_client(url, items)))
        client.start()
        try:
            return _window_rate(url, COMMANDS, lambda: True)
        finally:
            client.join(300)
    finally:
        emulator.stop()


def run() -> dict[str, Any]:
    measured: list[float] = []
    baseline: list[float] = []
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-sink-") as tmp:
        workdir = Path(tmp)
        for rep in range(REPETITIONS):
            baseline.append(baseline_once(workdir, rep))
            measured.append(measured_once(bootstrap, workdir, rep))
    m, b = median(measured), median(baseline)
    return {
        "benchmark": "sink",
        "unit": "documents/s",
        "measured": {"what": "air-exstream sink, Kafka -> emulator", "value": m, "runs": measured},
        "baseline": {
            "what": "bare aiohttp client, same batches and concurrency",
            "value": b,
            "runs": baseline,
        },
        "ratio": m / b if b else None,
        "config": {
            "commands": COMMANDS,
            "batch_size": BATCH,
            "concurrency": CONCURRENCY,
            "repetitions": REPETITIONS,
            "emulator": " ".join(LATENCY),
            "window": "10 %..100 % of the documents (warm-up excluded)",
        },
        "machine": machine(),
    }
