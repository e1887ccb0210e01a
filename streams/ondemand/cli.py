"""``air-exstream ondemand``: the portal's on-demand document service.

Secrets come from the environment or files, never from options (they would show in ``ps``):

- ``EXSTREAM_CLIENT_SECRET`` / ``_FILE``: the OTDS client of Exstream (the other Exstream
  settings are the ``EXSTREAM_*`` variables of :mod:`streams.exstream.settings`);
- ``ONDEMAND_URL_SECRET`` / ``_FILE`` signs document links, and while rotating
  ``ONDEMAND_URL_SECRET_PREVIOUS`` / ``_FILE`` still verifies the links signed before;
- ``ONDEMAND_API_KEYS_FILE`` (or ``ONDEMAND_API_KEYS``, the same JSON inline): the portal's API
  keys, hashed, each bound to one customer (see :mod:`streams.ondemand.auth`).

Kafka settings come from ``KAFKA_*`` (see :mod:`streams.config`) or the running local cluster;
the service's own from ``AIR_EXSTREAM_ONDEMAND_*``
(:class:`~streams.ondemand.settings.OnDemandSettings`), each option overriding its variable.
Templates come from ``exstream.templates.v1`` (what the template sync publishes), read with the
same reference view as the routing worker's; the service answers once that view is loaded.
"""

from __future__ import annotations

import click
import orjson

from streams.config import ConfigError
from streams.ondemand.auth import AuthError, KeyStore
from streams.ondemand.settings import OnDemandSecrets, OnDemandSettings
from streams.service_cli import kafka_options, settings_from, start_service


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
@click.option("--host", default=None, help="Overrides AIR_EXSTREAM_ONDEMAND_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Overrides AIR_EXSTREAM_ONDEMAND_PORT (8782).")
@click.option("--exstream-url", default=None, help="Overrides EXSTREAM_URL.")
@kafka_options
@click.option(
    "--budget-s",
    default=None,
    type=click.FloatRange(min=0.1),
    help="Time per document (Exstream + Kafka) before answering 504; overrides "
    "AIR_EXSTREAM_ONDEMAND_BUDGET_S (5).",
)
@click.option(
    "--max-concurrency",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_ONDEMAND_MAX_CONCURRENCY (64).",
)
@click.option(
    "--link-ttl-s",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_ONDEMAND_LINK_TTL_S (300).",
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL of signed links (default: request's); overrides "
    "AIR_EXSTREAM_ONDEMAND_PUBLIC_URL.",
)
@click.option(
    "--cache-entries",
    default=None,
    type=click.IntRange(min=0),
    help="Overrides AIR_EXSTREAM_ONDEMAND_CACHE_ENTRIES (256).",
)
@click.option(
    "--cache-mib",
    default=None,
    type=click.IntRange(min=0),
    help="Overrides AIR_EXSTREAM_ONDEMAND_CACHE_MIB (64).",
)
@click.option("--loglevel", default="info", show_default=True)
def ondemand(
    host: str | None,
    port: int | None,
    exstream_url: str | None,
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
    budget_s: float | None,
    max_concurrency: int | None,
    link_ttl_s: int | None,
    public_url: str | None,
    cache_entries: int | None,
    cache_mib: int | None,
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

    settings = settings_from(
        OnDemandSettings,
        host=host,
        port=port,
        budget_s=budget_s,
        max_concurrency=max_concurrency,
        link_ttl_s=link_ttl_s,
        public_url=public_url,
        cache_entries=cache_entries,
        cache_mib=cache_mib,
    )
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
        budget_s=settings.budget_s,
        max_concurrency=settings.max_concurrency,
        link_ttl_s=settings.link_ttl_s,
        public_url=settings.public_url,
        cache_entries=settings.cache_entries,
        cache_bytes=settings.cache_mib * 1024 * 1024,
    )
    writer = KafkaWriter(kafka.confluent_config(), timeout_s=max(1.0, settings.budget_s))
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
    where = f"http://{settings.host}:{settings.port}"
    click.echo(f"on-demand documents on {where} ({len(keys)} API key(s))")
    # access_log=None: aiohttp's access log prints raw paths, and signed links carry tokens
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
