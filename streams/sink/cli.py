"""``air-exstream sink``: submit composition commands to Exstream in batch jobs."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import click
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.config import resolve_kafka_settings
from streams.secrets import read_secret
from streams.sink.client import ExstreamClient
from streams.sink.runner import Sink, SinkSettings
from topology import names
from topology.model import load_topology


@click.command("sink")
@click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster.")
@click.option("--profile", default=None, help="Topology profile (local, production).")
@click.option("--prefix", default="", help="Topic name prefix (isolated copies, e.g. in tests).")
@click.option("--exstream-url", envvar="EXSTREAM_URL", default="http://127.0.0.1:8780")
@click.option("--client-id", envvar="EXSTREAM_CLIENT_ID", default="air-exstream")
@click.option("--group-id", default="air-exstream-sink", show_default=True)
@click.option("--batch-size", default=200, show_default=True)
@click.option("--initial-concurrency", default=4, show_default=True)
@click.option("--max-concurrency", default=32, show_default=True)
@click.option("--metrics-port", default=None, type=int, help="Serve /metrics (Prometheus).")
@click.option("--loglevel", default="info", show_default=True)
def sink(
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    exstream_url: str,
    client_id: str,
    group_id: str,
    batch_size: int,
    initial_concurrency: int,
    max_concurrency: int,
    metrics_port: int | None,
    loglevel: str,
) -> None:
    """Consume composition commands and submit them to Exstream (secret: EXSTREAM_CLIENT_SECRET
    or EXSTREAM_CLIENT_SECRET_FILE)."""
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(message)s")
    kafka = resolve_kafka_settings(bootstrap_servers)
    topology = load_topology(profile, prefix=prefix)
    settings = SinkSettings(
        commands_topic=topology.name(names.COMMANDS),
        submissions_topic=topology.name(names.SUBMISSIONS),
        group_id=group_id,
        batch_size=batch_size,
        initial_limit=initial_concurrency,
        max_limit=max_concurrency,
    )
    secret = read_secret("EXSTREAM_CLIENT_SECRET")
    asyncio.run(
        _run(kafka.aiokafka_kwargs(), settings, exstream_url, client_id, secret, metrics_port)
    )


async def _run(
    kafka_kwargs: dict[str, object],
    settings: SinkSettings,
    url: str,
    client_id: str,
    secret: str,
    metrics_port: int | None,
) -> None:
    consumer = AIOKafkaConsumer(
        **kafka_kwargs,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=600_000,
    )
    producer = AIOKafkaProducer(**kafka_kwargs, acks="all", enable_idempotence=True)
    connector = aiohttp.TCPConnector(limit=settings.max_limit * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = ExstreamClient(
            url, client_id, secret, session, timeout_s=settings.request_timeout_s
        )
        await consumer.start()
        await producer.start()
        sink = Sink(settings, client, consumer, producer)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sink.stop)
        runner: web.AppRunner | None = None
        if metrics_port is not None:
            app = web.Application()

            async def metrics(request: web.Request) -> web.Response:
                return web.Response(text=sink.prometheus(), content_type="text/plain")

            app.router.add_get("/metrics", metrics)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", metrics_port).start()
        try:
            await sink.run()
        finally:
            if runner is not None:
                await runner.cleanup()
            await producer.stop()
            await consumer.stop()
