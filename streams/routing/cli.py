"""``air-exstream worker``: run the routing worker (Faust) until stopped."""

from __future__ import annotations

import click

from streams.config import resolve_kafka_settings
from streams.routing.settings import WorkerSettings
from topology.apply import apply_topology
from topology.model import load_topology


@click.command()
@click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster.")
@click.option("--profile", default=None, help="Topology profile (local, production).")
@click.option("--prefix", default="", help="Topic name prefix (isolated copies, e.g. in tests).")
@click.option("--loglevel", default="info", show_default=True)
def worker(bootstrap_servers: str | None, profile: str | None, prefix: str, loglevel: str) -> None:
    """Route Air Inc. events into composition commands, alerts and the audit trail."""
    from streams.routing.app import create_app
    from streams.routing.diagnostics import DiagnosableWorker

    kafka = resolve_kafka_settings(bootstrap_servers)
    topology = load_topology(profile, prefix=prefix)
    apply_topology(kafka.confluent_config(), topology)
    settings = WorkerSettings()
    if settings.event_loop == "uvloop":
        import mode.loop

        mode.loop.use("uvloop")
    app, _ = create_app(kafka=kafka, worker=settings, topology=topology)
    DiagnosableWorker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
