"""Start-up shared by the commands of the long-running HTTP services (``air-exstream webhook``,
``air-exstream ondemand``): their Kafka and topology options, then logging, Kafka settings and
the topology.

Light to import: the command modules use :func:`kafka_options` when they are loaded (also for
``air-exstream --help``), while Kafka settings and the topology are imported only when
:func:`start_service` runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from streams.config import KafkaSettings
    from topology.model import Topology

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)

_KAFKA_OPTIONS = (
    click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster."),
    click.option("--profile", default=None, help="Topology profile (local, production)."),
    click.option(
        "--prefix", default="", help="Topic name prefix (isolated copies, e.g. in tests)."
    ),
    click.option(
        "--apply-topology/--no-apply-topology",
        default=True,
        show_default=True,
        help="Create missing topics at start.",
    ),
)


def kafka_options(command: FC) -> FC:
    """``--bootstrap-servers``, ``--profile``, ``--prefix`` and ``--apply-topology``, in this
    order, as the parameters of the same names (what :func:`start_service` takes)."""
    for option in reversed(_KAFKA_OPTIONS):
        command = option(command)
    return command


def start_service(
    *,
    loglevel: str,
    bootstrap_servers: str | None,
    profile: str | None,
    prefix: str,
    apply_topology: bool,
) -> tuple[KafkaSettings, Topology]:
    """Configure logging at ``loglevel``, resolve the Kafka settings (see
    :func:`streams.config.resolve_kafka_settings`) and load the topology of ``profile`` with
    ``prefix``, creating its missing topics when ``apply_topology`` is set.

    A command calls it after reading its secrets, so that a missing secret is reported before
    any cluster is looked for."""
    from streams.config import resolve_kafka_settings
    from topology.model import load_topology

    logging.basicConfig(level=loglevel.upper(), format=LOG_FORMAT)
    kafka = resolve_kafka_settings(bootstrap_servers)
    topology = load_topology(profile, prefix=prefix)
    if apply_topology:
        from topology.apply import apply_topology as apply

        apply(kafka.confluent_config(), topology)
    return kafka, topology


S = TypeVar("S", bound="BaseSettings")


def settings_from(model: type[S], **options: Any) -> S:
    """``model`` read from the environment, each option that was given (not None) overriding
    its variable; an invalid value is a usage error naming the setting."""
    from pydantic import ValidationError

    given = {name: value for name, value in options.items() if value is not None}
    try:
        return model(**given)
    except ValidationError as exc:
        prefix = str(model.model_config.get("env_prefix", ""))
        problems = "; ".join(
            f"{prefix}{'.'.join(str(p) for p in e['loc'])}".upper() + f": {e['msg']}"
            for e in exc.errors()
        )
        raise click.UsageError(f"invalid settings: {problems}") from None
