"""``air-exstream audit verify|timeline|keygen``."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from streams.audit.keys import PUBLIC_KEYS_FILE_ENV, CheckpointKeyError, generate, load_public_keys
from streams.audit.reader import audit_records, verify_topic
from streams.audit.timeline import timeline as build_timeline
from streams.audit.trail import TrailReport, TrustedState, TrustedStateError, verify_trail
from streams.audit.verify import DEFAULT_CLOCK_SKEW_MS, PartitionVerdict
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
    """The append-only, hash-chained audit trail and its signed checkpoints."""


@audit.command()
@_options
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM file of an accepted checkpoint key (repeat, or several keys in one file, to accept "
    f"a rotation). Default: ${PUBLIC_KEYS_FILE_ENV}. Without any, only the chain is checked.",
)
@click.option("--checkpoints-topic", default=None, help="Default: the topology's.")
@click.option(
    "--from-checkpoint",
    "from_checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Start at the trusted checkpoints in this file (written by --save-checkpoint): read "
    "only what came after them.",
)
@click.option(
    "--save-checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="After a run without violations, write where it ended (the last verified checkpoint of "
    "each partition) for a later --from-checkpoint.",
)
@click.option(
    "--clock-skew-s",
    type=click.FloatRange(min=0),
    default=DEFAULT_CLOCK_SKEW_MS / 1000,
    show_default=True,
    help="How far the audit writer's clock may run ahead of the brokers'.",
)
def verify(
    bootstrap_servers: str | None,
    topic: str | None,
    prefix: str,
    public_keys: tuple[Path, ...],
    checkpoints_topic: str | None,
    from_checkpoint: Path | None,
    save_checkpoint: Path | None,
    clock_skew_s: float,
) -> None:
    """Verify the audit trail against its signed checkpoints; exit 1 on any violation.

    Records up to a partition's last valid checkpoint are verified; those after it are
    unconfirmed (counted and shown): the writer has not signed them yet. A record or checkpoint
    that does not fit a signed head is a violation, named by partition and offset.
    """
    settings = resolve_kafka_settings(bootstrap_servers)
    name = _topic(topic, prefix)
    key_files = list(public_keys)
    if not key_files and os.environ.get(PUBLIC_KEYS_FILE_ENV):
        key_files = [Path(os.environ[PUBLIC_KEYS_FILE_ENV])]
    if not key_files:
        if from_checkpoint or save_checkpoint:
            raise click.UsageError("--from-checkpoint and --save-checkpoint need --public-key")
        _verify_chain_only(settings.require_bootstrap(), name, settings.confluent_config())
        return
    try:
        keys = load_public_keys(key_files)
        trusted = TrustedState.load(from_checkpoint, keys) if from_checkpoint else None
        report = verify_trail(
            settings.require_bootstrap(),
            name,
            checkpoints_topic or load_topology(prefix=prefix).name(names.AUDIT_CHECKPOINTS),
            keys,
            settings.confluent_config(),
            trusted=trusted,
            clock_skew_ms=int(clock_skew_s * 1000),
        )
    except (CheckpointKeyError, TrustedStateError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print_report(report, sorted(keys))
    if not report.ok:
        raise SystemExit(1)
    if save_checkpoint is not None:
        report.trusted_state(trusted).save(save_checkpoint)
        click.echo(f"trusted checkpoints written to {save_checkpoint}")


def _verify_chain_only(bootstrap: str, name: str, conf: dict[str, str]) -> None:
    reports = verify_topic(bootstrap, name, conf)
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
    click.echo(
        "chain only: no public key given (--public-key), so signed checkpoints were not "
        "checked: a record appended with the chain's public algorithm would pass"
    )
    if broken:
        click.echo(f"audit chain of {name} is BROKEN: {broken} violation(s) in {total} records")
        raise SystemExit(1)
    click.echo(f"audit chain of {name} verified: {total} records in {len(reports)} partitions")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _offsets(offsets: tuple[int, ...]) -> str:
    if not offsets:
        return ""
    shown = ", ".join(str(o) for o in offsets[:5])
    more = f" … {offsets[-1]}" if len(offsets) > 5 else ""
    return f" (offsets {shown}{more})"


def _partition_line(verdict: PartitionVerdict) -> str:
    anchor = verdict.anchor
    if not verdict.records and anchor is None:
        return f"partition {verdict.partition}: no records read"
    signed = (
        f"verified up to seq {anchor.seq} at offset {anchor.offset} (signed "
        f"{_when(anchor.signed_at_ms)}, key {anchor.checkpoint.key_id})"
        if anchor is not None
        else "no signed checkpoint fits"
    )
    return (
        f"partition {verdict.partition}: {verdict.records} records read: {verdict.verified} "
        f"{signed}; {verdict.unconfirmed} unconfirmed{_offsets(verdict.unconfirmed_offsets)}"
    )


def _print_report(report: TrailReport, key_ids: list[str]) -> None:
    mode = "from the trusted checkpoints" if report.incremental else "in full"
    click.echo(
        f"verifying {report.audit_topic} {mode} against {report.checkpoints_topic} "
        f"(accepted keys: {', '.join(key_ids)})"
    )
    for verdict in report.verdicts:
        click.echo(_partition_line(verdict))
        for v in verdict.violations:
            click.echo(f"  VIOLATION {v}")
    click.echo(
        f"checkpoints: {report.checkpoints_read} read, "
        f"{len(report.checkpoint_violations)} violation(s)"
    )
    for v in report.checkpoint_violations:
        click.echo(f"  VIOLATION {v}")
    if not all(v.broker_time for v in report.verdicts if v.records):
        click.echo(
            "note: the audit records carry producer-set timestamps (CreateTime), so a record "
            "appended after the last checkpoint cannot be told from the writer's until it signs "
            "past it; set message.timestamp.type=LogAppendTime on the topic (topology diff)"
        )
    summary = (
        f"{report.verified} verified, {report.unconfirmed} unconfirmed, "
        f"{len(report.violations)} violation(s) in {report.records} records read"
    )
    if report.ok:
        click.echo(f"audit trail of {report.audit_topic}: {summary}")
    else:
        click.echo(f"audit trail of {report.audit_topic} has VIOLATIONS: {summary}")


@audit.command()
@click.option(
    "--private-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (PEM, mode 0600; the audit writer's "
    "AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the public key (PEM; what `audit verify --public-key` takes).",
)
def keygen(private_key: Path, public_key: Path) -> None:
    """Make a new Ed25519 key pair for signing audit checkpoints (never overwrites a file)."""
    try:
        pair = generate(private_key, public_key)
    except CheckpointKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"key id {pair.key_id}")
    click.echo(f"private key: {pair.private_file} (0600; give it to the audit writer only)")
    click.echo(f"public key:  {pair.public_file}")


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
