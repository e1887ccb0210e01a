"""``air-exstream sink``: submit composition commands to Exstream in batch jobs.

Exstream settings from ``EXSTREAM_*`` (:mod:`streams.exstream.settings`; ``--exstream-url``
overrides ``EXSTREAM_URL``), the secret from ``EXSTREAM_CLIENT_SECRET`` or ``_FILE``. Kafka
settings from ``KAFKA_*`` or the local cluster; the sink's own from ``AIR_EXSTREAM_SINK_*``
(:class:`~streams.sink.runner.SinkSettings`), each option overriding its variable. The sink
reads ``exstream.templates.v1`` to find each template's Exstream communication.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.codec import Codecs
from streams.config import KafkaSettings, resolve_kafka_settings
from streams.diagnostics import install_task_dump
from streams.exstream.client import ExstreamClient
from streams.exstream.settings import ExstreamSettings, exstream_settings
from streams.metrics import serve_metrics
from streams.service_cli import settings_from
from streams.sink.runner import Sink, SinkSettings
from streams.templatesync.view import templates_view
from topology import names
from topology.model import load_topology


@click.command("sink")
@click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster.")
@click.option("--profile", default=None, help="Topology profile (local, production).")
@click.option("--prefix", default="", help="Topic name prefix (isolated copies, e.g. in tests).")
@click.option("--exstream-url", default=None, help="Overrides EXSTREAM_URL.")
@click.option("--group-id", default=None, help="Overrides AIR_EXSTREAM_SINK_GROUP_ID.")
@click.option(
    "--batch-size", default=None, type=int, help="Overrides AIR_EXSTREAM_SINK_BATCH_SIZE."
)
@click.option(
    "--initial-concurrency",
    default=None,
    type=int,
    help="Overrides AIR_EXSTREAM_SINK_INITIAL_LIMIT.",
)
@click.option(
    "--max-concurrency", default=None, type=int, help="Overrides AIR_EXSTREAM_SINK_MAX_LIMIT."
)
@click.option(
    "--metrics-port",
    default=None,
    type=int,
    help="Serve Prometheus metrics on this port (loopback; 0 or none: off).",
)
@click.option("--loglevel", default="info", show_default=True)
def sink(
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    exstream_url: str | None,
    group_id: str | None,
    batch_size: int | None,
    initial_concurrency: int | None,
    max_concurrency: int | None,
    metrics_port: int | None,
    loglevel: str,
) -> None:
    """Consume composition commands and submit them to Exstream (settings: EXSTREAM_*)."""
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(message)s")
    exstream = exstream_settings(url=exstream_url)
    kafka = resolve_kafka_settings(bootstrap_servers)
    topology = load_topology(profile, prefix=prefix)
    settings = settings_from(
        SinkSettings,
        commands_topic=topology.name(names.COMMANDS),
        submissions_topic=topology.name(names.SUBMISSIONS),
        batches_topic=topology.name(names.SINK_BATCHES),
        group_id=group_id,
        batch_size=batch_size,
        initial_limit=initial_concurrency,
        max_limit=max_concurrency,
    )
    templates_topic = topology.name(names.TEMPLATES)
    partitions = topology.topic(names.TEMPLATES).partitions
    codecs = Codecs.from_settings(kafka, topology)
    asyncio.run(_run(kafka, codecs, settings, exstream, templates_topic, partitions, metrics_port))


async def _run(
    kafka: KafkaSettings,
    codecs: Codecs,
    settings: SinkSettings,
    exstream: ExstreamSettings,
    templates_topic: str,
    template_partitions: int,
    metrics_port: int | None,
) -> None:
    kwargs = kafka.aiokafka_kwargs()
    consumer = AIOKafkaConsumer(
        **kwargs,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=600_000,
    )
    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=True)
    view = templates_view(kafka, templates_topic, partitions=template_partitions, codecs=codecs)
    reader = asyncio.ensure_future(view.run())
    async with ExstreamClient(exstream, max_connections=settings.max_limit * 2) as client:
        await view.wait_ready(60.0)
        await consumer.start()
        await producer.start()
        sink = Sink(
            settings,
            client,
            consumer,
            producer,
            templates=view,
            consumer_kwargs=kwargs,
            codecs=codecs,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sink.stop)
        # where each task waits, for an operator (and the fault tests) when the sink seems stuck
        install_task_dump(loop)
        server = serve_metrics(sink.metrics.registry, metrics_port) if metrics_port else None
        try:
            await sink.run()
        finally:
            if server is not None:
                server.stop()
            await producer.stop()
            await consumer.stop()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
