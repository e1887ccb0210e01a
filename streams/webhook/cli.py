"""``air-exstream webhook``: receive Exstream's delivery and engagement events (batches of
Experience-Insights-shaped events) and write them to Kafka.

Secrets come from the environment or files, never from options (they would show in ``ps``):
``EXSTREAM_WEBHOOK_SECRET`` / ``EXSTREAM_WEBHOOK_SECRET_FILE``, plus, while rotating,
``EXSTREAM_WEBHOOK_SECRET_PREVIOUS`` / ``EXSTREAM_WEBHOOK_SECRET_PREVIOUS_FILE`` (either is
accepted). With ``--auth hmac`` (default) the secret is the HMAC key of
``X-Exstream-Signature``; with ``--auth bearer`` the sender presents it as
``Authorization: Bearer <secret>`` (e.g. a relay that forwards Exstream's events). Kafka
settings come from ``KAFKA_*`` (see :mod:`streams.config`) or the running local cluster.
"""

from __future__ import annotations

import click

from streams.config import ConfigError
from streams.service_cli import kafka_options, start_service
from streams.webhook.settings import WebhookSecrets


def webhook_secrets() -> list[bytes]:
    """The current secret, then the previous one when set (key rotation); see
    :class:`~streams.webhook.settings.WebhookSecrets`."""
    try:
        return WebhookSecrets().keys()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8781, show_default=True, type=int)
@kafka_options
@click.option(
    "--auth",
    type=click.Choice(["hmac", "bearer"]),
    default="hmac",
    show_default=True,
    help="How the sender is authenticated.",
)
@click.option("--tolerance-s", default=300, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--kafka-timeout-s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="How long a write may wait for Kafka's confirmation before answering 503.",
)
@click.option(
    "--max-body-bytes", default=1024 * 1024, show_default=True, type=click.IntRange(min=1)
)
@click.option("--max-events", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--retry-after-s", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--loglevel", default="info", show_default=True)
def webhook(
    host: str,
    port: int,
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
    auth: str,
    tolerance_s: int,
    kafka_timeout_s: float,
    max_body_bytes: int,
    max_events: int,
    retry_after_s: int,
    loglevel: str,
) -> None:
    """Receive Exstream's event batches (POST /hooks/exstream) into Kafka."""
    from aiohttp import web

    from streams.codec import Codecs
    from streams.webhook.server import HOOK_PATH, build_receiver
    from topology import names

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
        kafka_timeout_s=kafka_timeout_s,
        auth=auth,
        tolerance_s=tolerance_s,
        max_body_bytes=max_body_bytes,
        max_events=max_events,
        retry_after_s=retry_after_s,
    )
    click.echo(f"webhook receiver on http://{host}:{port}{HOOK_PATH} -> {topic} (DLQ {dlq_topic})")
    web.run_app(receiver.app(), host=host, port=port, print=None)
