"""``air-exstream topology apply|diff``.

Exit codes: ``apply`` 0 when everything exists (drift is printed but not changed; 2 when drift
remains); ``diff`` 0 when in sync, 2 when apply would create topics or drift exists.
"""

from __future__ import annotations

import click

from streams.config import resolve_kafka_settings
from topology.apply import apply_topology, diff_topology
from topology.model import load_topology
from topology.plan import Plan

bootstrap_option = click.option(
    "--bootstrap-servers",
    default=None,
    help="Default: KAFKA_BOOTSTRAP_SERVERS, else the running local cluster.",
)
profile_option = click.option(
    "--profile",
    default=None,
    help="Topology profile (local, production); default AIR_EXSTREAM_TOPOLOGY_PROFILE or local.",
)


@click.group()
def topology() -> None:
    """Kafka topics as data: create what is missing, report drift."""


def _report(result: Plan, *, applied: bool) -> None:
    verb = "created" if applied else "would create"
    for spec in result.create:
        click.echo(
            f"{verb:>13}  {spec.name}  partitions={spec.partitions} "
            f"replication={spec.replication_factor} cleanup={spec.config['cleanup.policy']}"
        )
    for drift in result.drift:
        click.echo(f"{'DRIFT':>13}  {drift}")
    click.echo(
        f"{len(result.in_sync)} in sync, {len(result.create)} {verb}, {len(result.drift)} drift"
    )


@topology.command()
@bootstrap_option
@profile_option
def apply(bootstrap_servers: str | None, profile: str | None) -> None:
    """Create missing topics; report (never change) drift in existing ones."""
    settings = resolve_kafka_settings(bootstrap_servers)
    result = apply_topology(settings.confluent_config(), load_topology(profile))
    _report(result, applied=True)
    if result.drift:
        raise SystemExit(2)


@topology.command()
@bootstrap_option
@profile_option
def diff(bootstrap_servers: str | None, profile: str | None) -> None:
    """Show what apply would do (exit 2 if anything)."""
    settings = resolve_kafka_settings(bootstrap_servers)
    result = diff_topology(settings.confluent_config(), load_topology(profile))
    _report(result, applied=False)
    if not result.empty:
        raise SystemExit(2)
