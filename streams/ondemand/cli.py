"""``air-exstream ondemand``: the portal's on-demand document service.

Secrets come from the environment or files, never from options (they would show in ``ps``):

- ``EXSTREAM_CLIENT_SECRET`` / ``_FILE``: the OTDS client of Exstream (the other Exstream
  settings are the ``EXSTREAM_*`` variables of :mod:`streams.exstream.settings`);
- ``ONDEMAND_URL_SECRET`` / ``_FILE`` signs document links, and while rotating
  ``ONDEMAND_URL_SECRET_PREVIOUS`` / ``_FILE`` still verifies the links signed before;
- ``ONDEMAND_API_KEYS_FILE`` (or ``ONDEMAND_API_KEYS``, the same JSON inline): the portal's API
  keys, hashed, each bound to one customer (see :mod:`streams.ondemand.auth`).

Kafka settings come from ``KAFKA_*`` (see :mod:`streams.config`) or the running local cluster.
Templates come from ``exstream.templates.v1`` (what the template sync publishes), read with the
same reference view as the routing worker's; the service answers once that view is loaded.
"""

from __future__ import annotations

import click
import orjson

from streams.config import ConfigError
from streams.ondemand.auth import AuthError, KeyStore
from streams.ondemand.settings import OnDemandSecrets
from streams.service_cli import kafka_options, start_service


def ondemand_secrets() -> OnDemandSecrets:
    """The link secrets and the API keys (:class:`~streams.ondemand.settings.OnDemandSecrets`)."""
    try:
        return OnDemandSecrets()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def load_keys(secrets: OnDemandSecrets) -> KeyStore:
    """The portal's API keys, parsed."""
    try:
        return KeyStore.from_json(orjson.loads(secrets.api_keys_json()))
    except orjson.JSONDecodeError as exc:
        raise click.UsageError(f"the API keys are not valid JSON: {exc}") from exc
    except AuthError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8782, show_default=True, type=int)
@click.option("--exstream-url", default=None, help="Overrides EXSTREAM_URL.")
@kafka_options
@click.option(
    "--budget-s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Time per document (Exstream + Kafka) before answering 504.",
)
@click.option("--max-concurrency", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--link-ttl-s", default=300, show_default=True, type=click.IntRange(min=1))
@click.option("--public-url", default=None, help="Base URL of signed links (default: request's).")
@click.option("--cache-entries", default=256, show_default=True, type=click.IntRange(min=0))
@click.option("--cache-mib", default=64, show_default=True, type=click.IntRange(min=0))
@click.option("--loglevel", default="info", show_default=True)
def ondemand(
    host: str,
    port: int,
    exstream_url: str | None,
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
    budget_s: float,
    max_concurrency: int,
    link_ttl_s: int,
    public_url: str | None,
    cache_entries: int,
    cache_mib: int,
    loglevel: str,
) -> None:
    """Serve on-demand documents to the customer portal (see docs/ondemand-openapi.yaml)."""
    import asyncio

    from aiohttp import web

    from streams.codec import Codecs
    from streams.exstream.settings import exstream_settings
    from streams.ondemand.kafka import KafkaWriter
    from streams.ondemand.server import OnDemandConfig, OnDemandService
    from streams.templatesync.view import templates_view
    from topology import names

    secrets = ondemand_secrets()
    keys = load_keys(secrets)
    exstream = exstream_settings(url=exstream_url)  # a missing client secret fails here
    kafka, topology = start_service(
        loglevel=loglevel,
        bootstrap_servers=bootstrap_servers,
        profile=profile,
        prefix=prefix,
        apply_topology=apply_topology,
    )
    codecs = Codecs.from_settings(kafka, topology)
    config = OnDemandConfig(
        exstream=exstream,
        link_secrets=tuple(secrets.link_keys()),
        metadata_topic=topology.name(names.DOCUMENT_METADATA),
        audit_topic=topology.name(names.AUDIT_INTAKE),
        codecs=codecs,
        budget_s=budget_s,
        max_concurrency=max_concurrency,
        link_ttl_s=link_ttl_s,
        public_url=public_url,
        cache_entries=cache_entries,
        cache_bytes=cache_mib * 1024 * 1024,
    )
    writer = KafkaWriter(kafka.confluent_config(), timeout_s=max(1.0, budget_s))
    view = templates_view(
        kafka,
        topology.name(names.TEMPLATES),
        partitions=topology.topic(names.TEMPLATES).partitions,
        codecs=codecs,
    )
    service = OnDemandService(config, keys, writer, view)
    app = service.app()
    tasks: list[asyncio.Task[None]] = []

    async def load_templates(_app: web.Application) -> None:
        tasks.append(asyncio.ensure_future(view.run()))
        await view.wait_ready(60.0)

    async def stop_templates(_app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.on_startup.append(load_templates)
    app.on_cleanup.append(stop_templates)
    click.echo(f"on-demand documents on http://{host}:{port} ({len(keys)} API key(s))")
    # access_log=None: aiohttp's access log prints raw paths, and signed links carry tokens
    web.run_app(app, host=host, port=port, print=None, access_log=None)
