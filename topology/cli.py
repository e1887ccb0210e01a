"""``air-exstream topology apply|diff``: topics (``topics.toml``) and ACLs (``acls.toml``).

Exit codes: ``apply`` 0 when everything exists (drift and extra ACLs are printed but not
changed; 2 when either remains, or a topic could not be created for lack of rights); ``diff`` 0
when in sync, 2 when apply would create topics or ACLs, or drift or extra ACLs exist. On a cluster
without an authorizer the ACLs are reported as not applicable and play no part in the exit code.
"""

from __future__ import annotations

import click

from streams.config import resolve_kafka_settings
from topology.acls import AclPlan, load_acls
from topology.apply import apply_acls, apply_topology, diff_acls, diff_topology
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
    """Kafka topics and ACLs as data: create what is missing, report drift and extras."""


def _report(result: Plan, *, applied: bool) -> None:
    verb = "created" if applied else "would create"
    for spec in result.create:
        click.echo(
            f"{verb:>13}  {spec.name}  partitions={spec.partitions} "
            f"replication={spec.replication_factor} cleanup={spec.config['cleanup.policy']}"
        )
    for name in result.not_authorized:
        click.echo(f"{'NOT ALLOWED':>13}  {name}: this principal may not create it")
    for drift in result.drift:
        click.echo(f"{'DRIFT':>13}  {drift}")
    refused = f", {len(result.not_authorized)} not allowed" if result.not_authorized else ""
    click.echo(
        f"{len(result.in_sync)} in sync, {len(result.create)} {verb}, "
        f"{len(result.drift)} drift{refused}"
    )


def _report_acls(result: AclPlan, declared: int, *, applied: bool) -> None:
    if not result.authorizer:
        click.echo(
            f"ACLs: the cluster runs no authorizer, so it enforces none; "
            f"{declared} declared ACL(s) not applied"
        )
        return
    verb = "created" if applied else "would create"
    for spec in result.create:
        click.echo(f"{verb:>13}  ACL {spec}")
    for spec in result.extra:
        click.echo(f"{'EXTRA':>13}  ACL {spec} (not in acls.toml)")
    click.echo(
        f"ACLs: {len(result.in_sync)} in sync, {len(result.create)} {verb}, "
        f"{len(result.extra)} extra"
    )


@topology.command()
@bootstrap_option
@profile_option
def apply(bootstrap_servers: str | None, profile: str | None) -> None:
    """Create missing topics and ACLs; report (never change) drift and extra ACLs."""
    settings = resolve_kafka_settings(bootstrap_servers)
    topo = load_topology(profile)
    acls = load_acls(topo)
    result = apply_topology(settings.confluent_config(), topo)
    _report(result, applied=True)
    acl_result = apply_acls(settings.confluent_config(), acls)
    _report_acls(acl_result, len(acls.bindings), applied=True)
    if result.drift or result.not_authorized or acl_result.extra:
        raise SystemExit(2)


@topology.command()
@bootstrap_option
@profile_option
def diff(bootstrap_servers: str | None, profile: str | None) -> None:
    """Show what apply would do, and drift and extra ACLs (exit 2 if anything)."""
    settings = resolve_kafka_settings(bootstrap_servers)
    topo = load_topology(profile)
    acls = load_acls(topo)
    result = diff_topology(settings.confluent_config(), topo)
    _report(result, applied=False)
    acl_result = diff_acls(settings.confluent_config(), acls)
    _report_acls(acl_result, len(acls.bindings), applied=False)
    if not result.empty or not acl_result.empty:
        raise SystemExit(2)
