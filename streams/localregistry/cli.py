"""``air-exstream registry up|status|down``: the project's own local schema registry."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from streams.localregistry.releases import RELEASES
from streams.localregistry.runner import DEFAULT_STATE_DIR, LocalRegistry, answers

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Where the registry keeps its log, scratch files and state file.",
)


@click.group()
def registry() -> None:
    """Run a Confluent-compatible schema registry (Apicurio Registry) locally, from Maven
    Central, on loopback, with in-memory storage."""


@registry.command()
@click.option("--port", type=click.IntRange(1, 65535), help="HTTP port (default: a free one).")
@click.option(
    "--apicurio-version",
    type=click.Choice([r.version for r in RELEASES]),
    help="The Apicurio Registry release (default: the newest a Java on this host can run: "
    + ", ".join(f"{r.version} needs Java {r.min_java}+" for r in RELEASES)
    + ").",
)
@state_dir_option
def up(port: int | None, apicurio_version: str | None, state_dir: Path) -> None:
    """Start the local registry (idempotent) and print the KAFKA_SCHEMA_REGISTRY_URL to use.

    Fetches the release once (Maven), then starts in seconds. When KAFKA_SCHEMA_REGISTRY_URL is
    set, that registry is used and nothing is started.
    """
    configured = os.environ.get("KAFKA_SCHEMA_REGISTRY_URL")
    if configured:
        click.echo(
            f"KAFKA_SCHEMA_REGISTRY_URL is set: the configured registry {configured} is used; "
            "no local registry started."
        )
        return
    local = LocalRegistry(state_dir, port=port, version=apicurio_version)
    running = local.info() if local.is_running() else None
    if running is not None:
        click.echo(f"already running: Apicurio Registry {running.version} in {local.state_dir}")
        if apicurio_version not in (None, running.version):
            click.echo("(run `air-exstream registry down` first to change the release)")
        click.echo(f"export KAFKA_SCHEMA_REGISTRY_URL={running.url}")
        return
    click.echo(f"starting a schema registry (Apicurio Registry) in {local.state_dir} ...")
    started = time.monotonic()
    info = local.start()
    took = time.monotonic() - started
    click.echo(f"Apicurio Registry {info.version} up in {took:.1f} s (Java: {info.java})")
    click.echo(f"export KAFKA_SCHEMA_REGISTRY_URL={info.url}")


@registry.command()
@state_dir_option
def status(state_dir: Path) -> None:
    """Show the recorded registry and whether it runs and answers (exit 1 unless both)."""
    local = LocalRegistry(state_dir)
    info = local.info()
    if info is None:
        click.echo(f"no local registry recorded in {local.state_dir}")
        sys.exit(1)
    running = local.is_running()
    answering = running and answers(info.url)
    state = "answering" if answering else "running, not answering" if running else "stopped"
    click.echo(f"Apicurio Registry {info.version} in {info.state_dir}: {state}")
    click.echo(f"  pid {info.pid}, Java {info.java}, log {info.log_file}")
    click.echo(f"export KAFKA_SCHEMA_REGISTRY_URL={info.url}")
    if not answering:
        sys.exit(1)


@registry.command()
@state_dir_option
def down(state_dir: Path) -> None:
    """Stop exactly the process `registry up` started; its schemas are gone with it."""
    stopped = LocalRegistry(state_dir).stop()
    click.echo("stopped the local registry" if stopped else "no local registry was running")
