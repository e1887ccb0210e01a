"""``air-exstream kafka up|status|down``: the project's own local Kafka cluster."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from streams.localkafka.provision import KAFKA_VERSION
from streams.localkafka.runner import DEFAULT_STATE_DIR, LocalKafka

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
@state_dir_option
def up(nodes: str, state_dir: Path) -> None:
    """Start the local cluster (idempotent) and print its bootstrap servers.

    Downloads the broker's jars once (Maven), then starts in seconds. When
    KAFKA_BOOTSTRAP_SERVERS is set, that cluster is used and nothing is started.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        click.echo(
            f"KAFKA_BOOTSTRAP_SERVERS is set: the configured cluster {configured} is used; "
            "no local broker started."
        )
        return
    local = LocalKafka(state_dir, nodes=int(nodes))
    if local.is_running():
        info = local.info()
        if info is not None:
            click.echo(f"already running: {len(info.nodes)} node(s) in {local.state_dir}")
            if len(info.nodes) != int(nodes):
                click.echo(f"(asked for {nodes}; run `air-exstream kafka down` first to change)")
            click.echo(f"bootstrap servers: {info.bootstrap_servers}")
            return
    click.echo(f"starting Kafka {KAFKA_VERSION} ({nodes} node(s)) in {local.state_dir} ...")
    started = time.monotonic()
    info = local.start()
    took = time.monotonic() - started
    click.echo(f"Kafka {KAFKA_VERSION}: {len(info.nodes)} node(s) up in {took:.1f} s")
    click.echo(f"bootstrap servers: {info.bootstrap_servers}")
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}")


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
