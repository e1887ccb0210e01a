"""On-demand latency: portal -> ``air-exstream ondemand`` -> emulator (+ Kafka records).

Measured: ``air-exstream ondemand`` (a process, writing its DocumentMetadata and AuditRecord to
the broker with ``acks=all`` before answering) in front of the emulator (a process, fixed
render latency), driven open-loop with aiohttp at several request rates (one request every
1/rate s whatever the answers, so a slow service cannot slow the load down); latency p50/p95/p99
and achieved throughput (answers 200 per second) per rate.

Baseline, same run, same emulator, same rates: direct calls to the emulator's
``POST /orchestration/api/v1/inputs/ondemand/{domain}/generate`` with the same communication
and data (no API key, no validation, no Kafka).

Headline: p50 latency at the middle rate (measured vs baseline, in ms).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.common import broker, machine
from streams.demo.processes import ServiceProcess, free_port, wait_http
from streams.emulator.design import DRIVER_DATA_SOURCE, communication_id
from streams.emulator.synced import publish_synced_templates
from streams.exstream.driver import ondemand_record
from streams.ondemand.auth import new_key
from streams.simulator.generator import template_catalogue
from topology.apply import apply_topology
from topology.model import load_topology

RATES = tuple(int(r) for r in os.environ.get("BENCH_ONDEMAND_RATES", "10,25,50").split(","))
SECONDS = float(os.environ.get("BENCH_ONDEMAND_SECONDS", "10"))
WARMUP = 20
LATENCY = ("--latency-median-ms", "20", "--latency-p99-ms", "20")
SECRET = secrets.token_urlsafe(16)  # per run, for the local processes only
CUSTOMER = "cust-000001"
DATA = {
    "amount_due": "12.50",
    "due_date": "2026-02-01",
    "statement_period": "2026-01",
    "currency": "EUR",
}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _open_loop(
    rate: int, seconds: float, call: Any, session: aiohttp.ClientSession
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    last_done = [0.0]

    async def one() -> None:
        started = time.monotonic()
        try:
            status = await call(session)
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        done = time.monotonic()
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 200:
            latencies.append((done - started) * 1000)
        last_done[0] = max(last_done[0], done)

    total = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    ok = statuses.get("200", 0)
    return {
        "rate": rate,
        "sent": total,
        "statuses": statuses,
        "throughput_per_s": ok / max(last_done[0] - start, 1e-9),
        "p50_ms": _percentile(latencies, 0.50),
        "p95_ms": _percentile(latencies, 0.95),
        "p99_ms": _percentile(latencies, 0.99),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
    }


async def _drive(service_url: str, emulator_url: str, bearer: str) -> list[dict[str, Any]]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            f"{emulator_url}/otdsws/otdstenant/air/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "air-exstream",
                "client_secret": SECRET,
            },
        ) as r:
            token = (await r.json())["access_token"]
        direct_headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/pdf",
            "communicationId": communication_id("tpl-billing-statement", "en"),
            "driverDataSource": DRIVER_DATA_SOURCE,
        }
        service_headers = {"Authorization": f"Bearer {bearer}"}
        document_url = f"{service_url}/v1/customers/{CUSTOMER}/documents/invoice"

        async def direct(s: aiohttp.ClientSession) -> int:
            body = ondemand_record(
                request_id=uuid.uuid4().hex,
                customer_id=CUSTOMER,
                template_id="tpl-billing-statement",
                version=2,
                language="en",
                channel="WEB",
                data={**DATA, "customer_id": CUSTOMER},
            )
            async with s.post(
                f"{emulator_url}/orchestration/api/v1/inputs/ondemand/air/generate",
                data=body,
                headers=direct_headers,
            ) as r:
                await r.read()
                return r.status

        async def through_service(s: aiohttp.ClientSession) -> int:
            async with s.get(document_url, params=DATA, headers=service_headers) as r:
                await r.read()
                return r.status

        for call in (direct, through_service):  # warm-up: connections, token, producer
            for _ in range(WARMUP):
                status = await call(session)
                if status != 200:
                    raise RuntimeError(f"warm-up call answered {status}")
        rows = []
        for rate in RATES:
            baseline = await _open_loop(rate, SECONDS, direct, session)
            measured = await _open_loop(rate, SECONDS, through_service, session)
            rows.append({"rate": rate, "measured": measured, "baseline": baseline})
        return rows


def run() -> dict[str, Any]:
    bearer, key = new_key("bench", CUSTOMER)
    keys = {key.key_id: {"sha256": key.digest, "customer_id": key.customer_id}}
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-ondemand-") as tmp:
        workdir = Path(tmp)
        emulator_port, service_port = free_port(), free_port()
        emulator = ServiceProcess(
            "emulator",
            ["exstream-emulator", "--port", str(emulator_port), *LATENCY],
            workdir,
            {"EXSTREAM_CLIENT_SECRET": SECRET},
        )
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        topology = load_topology("local", prefix=prefix)
        apply_topology({"bootstrap.servers": bootstrap}, topology)
        publish_synced_templates(template_catalogue(), topology, {"bootstrap.servers": bootstrap})
        service = ServiceProcess(
            "ondemand",
            [
                "ondemand",
                "--port", str(service_port),
                "--exstream-url", emulator_url,
                "--prefix", prefix,
                "--max-concurrency", "256",
                "--loglevel", "warning",
            ],
            workdir,
            {
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "EXSTREAM_CLIENT_SECRET": SECRET,
                "ONDEMAND_URL_SECRET": secrets.token_urlsafe(32),
                "ONDEMAND_API_KEYS": orjson.dumps(keys).decode(),
            },
        )  # fmt: skip
        service_url = f"http://127.0.0.1:{service_port}"
        try:
            emulator.start()
            wait_http(f"{emulator_url}/_emulator/healthz", emulator)
            service.start()
            wait_http(f"{service_url}/healthz", service, timeout_s=60)
            rows = asyncio.run(_drive(service_url, emulator_url, bearer))
        finally:
            service.stop()
            emulator.stop()
    middle = rows[len(rows) // 2]
    return {
        "benchmark": "ondemand",
        "unit": "ms p50",
        "measured": {
            "what": f"air-exstream ondemand (+ Kafka records), p50 at {middle['rate']} req/s",
            "value": middle["measured"]["p50_ms"],
        },
        "baseline": {
            "what": f"direct calls to the emulator's ondemand endpoint at {middle['rate']} req/s",
            "value": middle["baseline"]["p50_ms"],
        },
        "ratio": (
            middle["measured"]["p50_ms"] / middle["baseline"]["p50_ms"]
            if middle["baseline"]["p50_ms"]
            else None
        ),
        "rates": rows,
        "config": {
            "rates_per_s": list(RATES),
            "seconds_per_rate": SECONDS,
            "load": "open loop, aiohttp, one session",
            "emulator": " ".join(LATENCY),
            "service": "--max-concurrency 256, budget 5 s, acks=all writes before answering",
            "warmup_calls": WARMUP,
        },
        "machine": machine(),
    }
