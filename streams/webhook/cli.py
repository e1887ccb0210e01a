"""``air-exstream webhook``: receive Exstream's delivery and engagement events (batches of
Experience-Insights-shaped events) and write them to Kafka.

Secrets come from the environment or files, never from options (they would show in ``ps``):
``EXSTREAM_WEBHOOK_SECRET`` / ``EXSTREAM_WEBHOOK_SECRET_FILE``, plus, while rotating,
``EXSTREAM_WEBHOOK_SECRET_PREVIOUS`` / ``EXSTREAM_WEBHOOK_SECRET_PREVIOUS_FILE`` (either is
accepted). With ``--auth hmac`` (default) the secret is the HMAC key of
``X-Exstream-Signature``; with ``--auth bearer`` the sender presents it as
``Authorization: Bearer <secret>`` (e.g. a relay that forwards Exstream's events). Kafka
settings come from ``KAFKA_*`` (see :mod:`streams.config`) or the running local cluster; the
receiver's own from ``AIR_EXSTREAM_WEBHOOK_*``
(:class:`~streams.webhook.settings.WebhookSettings`), each option overriding its variable.
"""

from __future__ import annotations

import click

from streams.config import ConfigError
from streams.service_cli import kafka_options, settings_from, start_service
from streams.webhook.settings import WebhookSecrets, WebhookSettings


def webhook_secrets() -> list[bytes]:
    """The current secret, then the previous one when set (key rotation); see
    :class:`~streams.webhook.settings.WebhookSecrets`."""
    try:
        return WebhookSecrets().keys()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--host", default=None, help="Overrides AIR_EXSTREAM_WEBHOOK_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Overrides AIR_EXSTREAM_WEBHOOK_PORT (8781).")
@kafka_options
@click.option(
    "--auth",
    type=click.Choice(["hmac", "bearer"]),
    default=None,
    help="How the sender is authenticated; overrides AIR_EXSTREAM_WEBHOOK_AUTH (hmac).",
)
@click.option(
    "--tolerance-s",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_WEBHOOK_TOLERANCE_S (300).",
)
@click.option(
    "--kafka-timeout-s",
    default=None,
    type=click.FloatRange(min=1.0),
    help="How long a write may wait for Kafka's confirmation before answering 503; overrides "
    "AIR_EXSTREAM_WEBHOOK_KAFKA_TIMEOUT_S (10).",
)
@click.option(
    "--max-body-bytes",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_WEBHOOK_MAX_BODY_BYTES (1 MiB).",
)
@click.option(
    "--max-events",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_WEBHOOK_MAX_EVENTS (1000).",
)
@click.option(
    "--retry-after-s",
    default=None,
    type=click.IntRange(min=1),
    help="Overrides AIR_EXSTREAM_WEBHOOK_RETRY_AFTER_S (5).",
)
@click.option("--loglevel", default="info", show_default=True)
def webhook(
    host: str | None,
    port: int | None,
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
    auth: str | None,
    tolerance_s: int | None,
    kafka_timeout_s: float | None,
    max_body_bytes: int | None,
    max_events: int | None,
    retry_after_s: int | None,
    loglevel: str,
) -> None:
    """Receive Exstream's event batches (POST /hooks/exstream) into Kafka."""
    from aiohttp import web

    from streams.codec import Codecs
    from streams.webhook.server import HOOK_PATH, build_receiver
    from topology import names

    settings = settings_from(
        WebhookSettings,
        host=host,
        port=port,
        auth=auth,
        tolerance_s=tolerance_s,
        kafka_timeout_s=kafka_timeout_s,
        max_body_bytes=max_body_bytes,
        max_events=max_events,
        retry_after_s=retry_after_s,
    )
    secrets = webhook_secrets()
    kafka, topology = start_service(
        loglevel=loglevel,
        bootstrap_servers=bootstrap_servers,
        profile=profile,
        prefix=prefix,
        apply_topology=apply_topology,
    )
    topic = topology.name(names.DELIVERY_EVENTS)
    dlq_topic = topology.name(names.dlq(names.DELIVERY_EVENTS))
    receiver = build_receiver(
        secrets=secrets,
        client_config=kafka.confluent_config(),
        topic=topic,
        dlq_topic=dlq_topic,
        codecs=Codecs.from_settings(kafka, topology),
        kafka_timeout_s=settings.kafka_timeout_s,
        auth=settings.auth,
        tolerance_s=settings.tolerance_s,
        max_body_bytes=settings.max_body_bytes,
        max_events=settings.max_events,
        retry_after_s=settings.retry_after_s,
    )
    url = f"http://{settings.host}:{settings.port}{HOOK_PATH}"
    click.echo(f"webhook receiver on {url} -> {topic} (DLQ {dlq_topic})")
    web.run_app(receiver.app(), host=settings.host, port=settings.port, print=None)
