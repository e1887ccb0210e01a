"""``air-exstream templates sync``: Exstream's Design API -> ``exstream.templates.v1``.

One run by default; ``--follow`` repeats every ``--interval-s``. Exstream settings from
``EXSTREAM_*`` (:mod:`streams.exstream.settings`), Kafka settings from ``KAFKA_*`` or the local
cluster. Prints one JSON line per run (versions read, usable, published, retired, skipped).
"""

from __future__ import annotations

import asyncio
import signal

import click
import orjson

from streams.service_cli import kafka_options, start_service


@click.group()
def templates() -> None:
    """Exstream templates (communications in the Design API)."""


@templates.command("sync")
@kafka_options
@click.option("--follow/--once", default=False, show_default=True)
@click.option("--interval-s", default=60.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--loglevel", default="info", show_default=True)
def sync(
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
    follow: bool,
    interval_s: float,
    loglevel: str,
) -> None:
    """Publish the Design API's communication versions on exstream.templates.v1."""
    from streams.exstream.settings import exstream_settings

    settings = exstream_settings()
    kafka, topology = start_service(
        loglevel=loglevel,
        bootstrap_servers=bootstrap_servers,
        profile=profile,
        prefix=prefix,
        apply_topology=apply_topology,
    )
    from topology import names

    asyncio.run(
        _run(
            settings,
            kafka,
            topology.name(names.TEMPLATES),
            topology.topic(names.TEMPLATES).partitions,
            follow,
            interval_s,
        )
    )


async def _run(
    settings: object,
    kafka: object,
    topic: str,
    partitions: int,
    follow: bool,
    interval_s: float,
) -> None:
    from streams.config import KafkaSettings
    from streams.exstream.client import ExstreamClient
    from streams.exstream.settings import ExstreamSettings
    from streams.kafka_writer import KafkaWriter
    from streams.templatesync.sync import TemplateSync
    from streams.templatesync.view import templates_view

    assert isinstance(settings, ExstreamSettings)
    assert isinstance(kafka, KafkaSettings)
    from streams.codec import Codecs

    codecs = Codecs.from_settings(kafka)
    view = templates_view(kafka, topic, partitions=partitions, codecs=codecs)
    reader = asyncio.ensure_future(view.run())
    writer = KafkaWriter(kafka.confluent_config(), timeout_s=30.0, thread_name="template-sync")
    try:
        await view.wait_ready(60.0)
        async with ExstreamClient(settings) as client:
            job = TemplateSync(client, writer, view, topic=topic, codecs=codecs)
            if not follow:
                click.echo(orjson.dumps((await job.run_once()).as_dict()).decode())
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await job.follow(interval_s, stop)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await asyncio.to_thread(writer.close)
