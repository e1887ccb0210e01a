"""``air-exstream demo``: run the whole system end to end on local defaults."""

from __future__ import annotations

from pathlib import Path

import click

from streams.demo.run import DemoOptions, run_demo


@click.command()
@click.option("--events", default=10_000, show_default=True)
@click.option("--customers", default=1_000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--invalid-share", default=0.03, show_default=True)
@click.option(
    "--document-requests", default=300, show_default=True, help="Portal document requests."
)
@click.option(
    "--summary",
    type=click.Path(path_type=Path),
    default=Path("build/demo-summary.json"),
    show_default=True,
)
def demo(
    events: int,
    customers: int,
    seed: int,
    invalid_share: float,
    document_requests: int,
    summary: Path,
) -> None:
    """Start Kafka and every service, run a seeded Air Inc. workload through all flows, print and
    save what came out."""
    options = DemoOptions(
        events=events,
        customers=customers,
        seed=seed,
        invalid_share=invalid_share,
        document_requests=document_requests,
        summary_path=summary,
    )
    result = run_demo(
        options,
        click.echo,
        lambda total, label="Air Inc. events": click.progressbar(length=total, label=label),
    )
    click.echo("")
    click.secho("Summary", bold=True)
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        click.echo(f"  {key:<{width}}  {value}")
    click.echo(f"written to {summary}")
    if (
        not result["audit_chain_verified"]
        or result["audit_violations"]
        or result["communications_with_more_than_one_document"]
        or not result["document_requests_accounted_for"]
        or result["ondemand_documents_served"] != result["ondemand_requests"]
    ):
        raise SystemExit(1)
