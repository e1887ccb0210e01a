"""``air-exstream simulate``: publish a seeded Air Inc. workload."""

from __future__ import annotations

import click

from streams.config import resolve_kafka_settings
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events, publish_reference, publish_requests
from topology.apply import apply_topology
from topology.model import load_topology


@click.command()
@click.option("--events", default=10_000, show_default=True, help="Business events to publish.")
@click.option("--customers", default=1_000, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--invalid-share", default=0.03, show_default=True, help="Share of invalid events.")
@click.option("--json-share", default=0.1, show_default=True, help="Share sent as JSON.")
@click.option(
    "--document-requests",
    default=200,
    show_default=True,
    help="Portal document requests to publish (air.document-requests.v1).",
)
@click.option("--bootstrap-servers", default=None, help="Default: env or the local cluster.")
@click.option("--profile", default=None, help="Topology profile (local, production).")
def simulate(
    events: int,
    customers: int,
    seed: int,
    invalid_share: float,
    json_share: float,
    document_requests: int,
    bootstrap_servers: str | None,
    profile: str | None,
) -> None:
    """Publish rules, preferences, then account and case events and document requests (seeded).
    Templates come from Exstream: run ``air-exstream templates sync`` against its Design API
    (the emulator's holds the simulated world's catalogue)."""
    settings = resolve_kafka_settings(bootstrap_servers)
    conf = settings.confluent_config()
    topology = load_topology(profile)
    apply_topology(conf, topology)
    dataset = generate(
        Scenario(
            seed=seed,
            customers=customers,
            events=events,
            invalid_share=invalid_share,
            json_share=json_share,
            document_requests=document_requests,
        )
    )
    ref = publish_reference(dataset, topology, conf)
    click.echo(
        f"reference data: {ref.rules} rules, {ref.preferences} preferences "
        "(templates: air-exstream templates sync)"
    )
    with click.progressbar(length=len(dataset.events), label="events") as bar:
        report = publish_events(dataset.events, topology, conf, seed=seed, progress=bar.update)
    click.echo(
        f"events: {report.events} published ({report.json} as JSON, "
        f"{report.invalid} deliberately invalid)"
    )
    if dataset.document_requests:
        sent = publish_requests(dataset.document_requests, topology, conf, seed=seed)
        click.echo(
            f"document requests: {sent.requests} published ({sent.json} as JSON, "
            f"{sent.invalid} deliberately invalid)"
        )
