"""``air-exstream worker``: run the routing worker (:mod:`streams.routing.engine_worker`, on the
project's transactional engine) until stopped."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from streams.config import KafkaSettings, resolve_kafka_settings
from streams.routing.settings import WorkerSettings
from topology.apply import apply_topology
from topology.model import Topology, load_topology

if TYPE_CHECKING:
    from streams.routing.metrics import RoutingMetrics

log = logging.getLogger(__name__)


@click.command()
@click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster.")
@click.option("--profile", default=None, help="Topology profile (local, production).")
@click.option("--prefix", default="", help="Topic name prefix (isolated copies, e.g. in tests).")
@click.option(
    "--metrics-port",
    default=None,
    type=int,
    help="Prometheus metrics port (default AIR_EXSTREAM_METRICS_PORT or 9466; 0: off).",
)
@click.option("--loglevel", default="info", show_default=True)
def worker(
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    metrics_port: int | None,
    loglevel: str,
) -> None:
    """Route Air Inc. events into composition commands, alerts and the audit trail."""
    from streams.routing.metrics import RoutingMetrics

    kafka = resolve_kafka_settings(bootstrap_servers)
    topology = load_topology(profile, prefix=prefix)
    apply_topology(kafka.confluent_config(), topology)
    settings = WorkerSettings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": metrics_port})
    metrics = RoutingMetrics(commit_deadline_s=settings.commit_timeout_s)
    _run(kafka, settings, topology, metrics, loglevel)


def _run(
    kafka: KafkaSettings,
    settings: WorkerSettings,
    topology: Topology,
    metrics: RoutingMetrics,
    loglevel: str,
) -> None:
    """The worker (:mod:`streams.routing.engine_worker`) until SIGTERM or SIGINT."""
    import asyncio

    from streams.metrics import serve_metrics
    from streams.routing.engine_worker import serve

    logging.basicConfig(
        level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    server = None
    if settings.metrics_port:
        try:
            server = serve_metrics(metrics.registry, settings.metrics_port, settings.metrics_host)
        except OSError as exc:
            log.error("metrics not served on port %d: %s", settings.metrics_port, exc)
    try:
        if settings.event_loop == "uvloop":
            import uvloop

            uvloop.run(serve(kafka=kafka, worker=settings, topology=topology, metrics=metrics))
        else:
            asyncio.run(serve(kafka=kafka, worker=settings, topology=topology, metrics=metrics))
    finally:
        if server is not None:
            server.stop()
