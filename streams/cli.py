"""The ``air-exstream`` command line.

Subcommands live next to the code they drive and are imported only when invoked, so that
``air-exstream kafka up`` does not pay for importing the worker's clients.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from streams.errors import AirExstreamError

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "kafka": "streams.localkafka.cli:kafka",
    "registry": "streams.localregistry.cli:registry",
    "topology": "topology.cli:topology",
    "schemas": "streams.codec.cli:schemas",
    "simulate": "streams.simulator.cli:simulate",
    "worker": "streams.routing.cli:worker",
    "dlq": "streams.deadletter.cli:dlq",
    "audit": "streams.audit.cli:audit",
    "exstream-emulator": "streams.emulator.cli:exstream_emulator",
    "templates": "streams.templatesync.cli:templates",
    "sink": "streams.sink.cli:sink",
    "webhook": "streams.webhook.cli:webhook",
    "ondemand": "streams.ondemand.cli:ondemand",
    "demo": "streams.demo.cli:demo",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, target in SUBCOMMANDS.items() if _available(target))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


def _available(target: str) -> bool:
    module_name = target.split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # the parent package does not exist yet
        return False


@click.group(cls=LazyGroup)
@click.version_option(package_name="air-exstream")
def cli() -> None:
    """Air Inc. <-> OpenText Exstream streaming integration."""


def main() -> None:
    """Console entry point: project errors become one clear line and a non-zero exit."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AirExstreamError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
