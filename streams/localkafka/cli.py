"""``air-exstream kafka up|status|down``: the project's own local Kafka cluster."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from streams.localkafka.runner import DEFAULT_STATE_DIR, KAFKA_VERSION, LocalKafka

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the cluster keeps its data, logs and state file.",
)


@click.group()
def kafka() -> None:
    """Run a real Apache Kafka broker (KRaft) locally, from Maven Central jars."""


@kafka.command()
@click.option("--nodes", type=click.Choice(["1", "3"]), default="1", show_default=True)
@state_dir_option
def up(nodes: str, state_dir: Path) -> None:
    """Start the local cluster (idempotent) and print its bootstrap servers."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS is set: using {configured}; nothing started.")
        return
    started = time.monotonic()
    local = LocalKafka(state_dir, nodes=int(nodes))
    info = local.start()
    took = time.monotonic() - started
    click.echo(f"Kafka {KAFKA_VERSION}: {len(info.nodes)} node(s) up in {took:.1f} s")
    click.echo(f"bootstrap servers: {info.bootstrap_servers}")
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={info.bootstrap_servers}")


@kafka.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Show the recorded cluster and which of its nodes run (exit 1 when none)."""
    local = LocalKafka(state_dir)
    info = local.info()
    if info is None:
        click.echo(f"no local cluster recorded in {state_dir}")
        raise SystemExit(1)
    running = {n.node_id for n in local.running_nodes()}
    click.echo(f"cluster {info.cluster_id}: bootstrap servers {info.bootstrap_servers}")
    for node in info.nodes:
        state = "running" if node.node_id in running else "stopped"
        click.echo(f"  node {node.node_id}: {state} (pid {node.pid}, port {node.broker_port})")
    if not running:
        raise SystemExit(1)


@kafka.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop exactly the processes `kafka up` started."""
    stopped = LocalKafka(state_dir).stop()
    click.echo(f"stopped {stopped} node(s)")
