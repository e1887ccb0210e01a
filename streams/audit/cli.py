"""``air-exstream audit verify|timeline``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from streams.audit.reader import audit_records, verify_topic
from streams.audit.timeline import timeline as build_timeline
from streams.config import resolve_kafka_settings
from topology import names
from topology.model import load_topology

common = [
    click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster."),
    click.option("--topic", default=None, help="Audit topic (default: the topology's)."),
    click.option("--prefix", default="", help="Topic name prefix of the topology."),
]


F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    for option in reversed(common):
        fn = option(fn)
    return fn


def _topic(topic: str | None, prefix: str) -> str:
    return topic or load_topology(prefix=prefix).name(names.AUDIT)


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit trail."""


@audit.command()
@_options
def verify(bootstrap_servers: str | None, topic: str | None, prefix: str) -> None:
    """Check every partition's hash chain; exit 1 on any edit, deletion or reordering."""
    settings = resolve_kafka_settings(bootstrap_servers)
    name = _topic(topic, prefix)
    reports = verify_topic(settings.require_bootstrap(), name, settings.confluent_config())
    broken = 0
    total = 0
    for report in reports:
        total += report.records
        state = "ok" if report.ok else "BROKEN"
        click.echo(
            f"partition {report.partition}: {report.records} records, head seq "
            f"{report.head.seq} {report.head.hash[:16]}… {state}"
        )
        for v in report.violations:
            click.echo(f"  offset {v.offset} (seq {v.seq}): {v.problem}")
        broken += len(report.violations)
    if broken:
        click.echo(f"audit chain of {name} is BROKEN: {broken} violation(s) in {total} records")
        raise SystemExit(1)
    click.echo(f"audit chain of {name} verified: {total} records in {len(reports)} partitions")


@audit.command()
@_options
@click.option("--customer", "customer_id", default=None, help="Customer id.")
@click.option("--case", "case_id", default=None, help="Case id.")
def timeline(
    bootstrap_servers: str | None,
    topic: str | None,
    prefix: str,
    customer_id: str | None,
    case_id: str | None,
) -> None:
    """Print one customer's or one case's full history, in order."""
    if not customer_id and not case_id:
        raise click.UsageError("give --customer or --case")
    settings = resolve_kafka_settings(bootstrap_servers)
    records = [
        r
        for _, r in audit_records(
            settings.require_bootstrap(), _topic(topic, prefix), settings.confluent_config()
        )
        if r is not None
    ]
    entries = build_timeline(records, customer_id=customer_id, case_id=case_id)
    for r in entries:
        ref = r.communication_id or r.details.get("alert_id") or ""
        when = datetime.fromtimestamp(r.occurred_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{when}  {r.kind:<18} {ref:<36} {r.summary}")
    click.echo(f"{len(entries)} entries")
