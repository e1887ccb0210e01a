"""``air-exstream kafka up|status|down``: the project's own local Kafka cluster."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from streams.localkafka.errors import LocalKafkaError
from streams.localkafka.provision import KAFKA_VERSION
from streams.localkafka.runner import DEFAULT_STATE_DIR, LocalKafka
from streams.localkafka.security_files import client_user_from_environment
from streams.localkafka.state import ClusterInfo

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the cluster keeps its data, logs and state file.",
)


@click.group()
def kafka() -> None:
    """Run a real Apache Kafka cluster (KRaft) locally, from Maven Central jars."""


@kafka.command()
@click.option(
    "--nodes", type=click.Choice(["1", "3"]), default="1", show_default=True, help="Cluster size."
)
@click.option(
    "--sasl-ssl",
    is_flag=True,
    help="Clients connect over SASL_SSL (SCRAM-SHA-512, TLS with a CA made for this cluster) as "
    "KAFKA_SASL_USERNAME (default air-exstream, a super user) with the password of "
    "KAFKA_SASL_PASSWORD_FILE or KAFKA_SASL_PASSWORD, or a random one kept in a 0600 file of "
    "the state directory. The cluster enforces ACLs; each component's user (topology/acls.toml) "
    "is created with a random password in a 0600 file.",
)
@state_dir_option
def up(nodes: str, sasl_ssl: bool, state_dir: Path) -> None:
    """Start the local cluster (idempotent) and print its bootstrap servers.

    Downloads the broker's jars once (Maven), then starts in seconds. When
    KAFKA_BOOTSTRAP_SERVERS is set, that cluster is used and nothing is started. With
    --sasl-ssl it prints the KAFKA_* settings clients need (never the password itself).
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        click.echo(
            f"KAFKA_BOOTSTRAP_SERVERS is set: the configured cluster {configured} is used; "
            "no local broker started."
        )
        return
    probe = LocalKafka(state_dir, nodes=int(nodes))
    if probe.is_running():
        info = probe.info()
        if info is not None:
            click.echo(f"already running: {len(info.nodes)} node(s) in {probe.state_dir}")
            if len(info.nodes) != int(nodes):
                click.echo(f"(asked for {nodes}; run `air-exstream kafka down` first to change)")
            if (info.client_security is not None) != sasl_ssl:
                click.echo(
                    f"(it {'serves' if info.client_security else 'does not serve'} SASL_SSL; "
                    "run `air-exstream kafka down` first to change)"
                )
            click.echo(f"bootstrap servers: {info.bootstrap_servers}")
            _echo_security_settings(info)
            return
    try:
        user = client_user_from_environment(os.environ) if sasl_ssl else None
        local = LocalKafka(
            state_dir,
            nodes=int(nodes),
            security="sasl_ssl" if sasl_ssl else "plaintext",
            client_user=user,
            component_users=_component_users() if sasl_ssl else (),
        )
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    what = f"{nodes} node(s)" + (", SASL_SSL" if sasl_ssl else "")
    click.echo(f"starting Kafka {KAFKA_VERSION} ({what}) in {local.state_dir} ...")
    started = time.monotonic()
    info = local.start()
    took = time.monotonic() - started
    click.echo(f"Kafka {KAFKA_VERSION}: {len(info.nodes)} node(s) up in {took:.1f} s")
    click.echo(f"bootstrap servers: {info.bootstrap_servers}")
    if info.client_security is None:
        click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}")
    _echo_security_settings(info)


def _component_users() -> list[str]:
    """The user names of the principals declared in ``topology/acls.toml`` (super users aside:
    the client user is the cluster's admin)."""
    from topology.acls import load_acls
    from topology.model import load_topology

    return [p.user for p in load_acls(load_topology()).principals if not p.super_user]


def _echo_security_settings(info: ClusterInfo) -> None:
    """For a SASL_SSL cluster, the ``export`` lines a shell needs to reach it (the password stays
    in its file and is never printed), and the component users; nothing for a PLAINTEXT one."""
    client = info.client_security
    if client is None:
        return
    click.echo("clients connect over SASL_SSL with:")
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}")
    for name, value in client.environment().items():
        click.echo(f"export {name}={value}")
    click.echo(
        f"ACLs are enforced; {client.sasl_username} is a super user: create the topics and ACLs "
        "with `air-exstream topology apply`"
    )
    if client.component_users:
        click.echo(
            "component users (run a component as one: KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD_FILE as below):"
        )
        for username, password_file in client.component_users:
            click.echo(f"  {username:<28} {password_file}")


@kafka.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Show the recorded cluster and which of its nodes run (exit 1 unless all run)."""
    local = LocalKafka(state_dir)
    info = local.info()
    if info is None:
        click.echo(f"no local cluster recorded in {local.state_dir}")
        sys.exit(1)
    running = {n.node_id for n in local.running_nodes()}
    click.echo(f"Kafka {info.kafka_version} cluster {info.cluster_id} in {info.state_dir}")
    click.echo(f"bootstrap servers: {info.bootstrap_servers}")
    _echo_security_settings(info)
    for node in info.nodes:
        state = "running" if node.node_id in running else "stopped"
        click.echo(
            f"  node {node.node_id}: {state} (pid {node.pid}, port {node.broker_port}, "
            f"log {node.log_file})"
        )
    if len(running) != len(info.nodes):
        sys.exit(1)


@kafka.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop exactly the processes `kafka up` started (data and logs stay until the next up)."""
    stopped = LocalKafka(state_dir).stop()
    click.echo(f"stopped {stopped} node(s)")
