"""``air-exstream exstream-emulator``: run the Exstream emulator on a local port.

Secrets come from the environment or files, never from options (they would show in ``ps``):
``EXSTREAM_CLIENT_SECRET`` / ``EXSTREAM_CLIENT_SECRET_FILE`` for the OAuth2 client and
``EXSTREAM_WEBHOOK_SECRET`` / ``EXSTREAM_WEBHOOK_SECRET_FILE`` for signing callbacks.
"""

from __future__ import annotations

import random

import click
from aiohttp import web

from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.server import Emulator, EmulatorConfig
from streams.emulator.state import World
from streams.secrets import read_secret
from streams.simulator.generator import template_catalogue


def _outage(text: str) -> tuple[float, float]:
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError(text)
        return float(start), float(end)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected START:END in seconds") from None


@click.command("exstream-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8780, show_default=True, type=int)
@click.option("--client-id", default="air-exstream", show_default=True)
@click.option("--webhook-url", default=None, help="Where delivery callbacks are posted.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--latency-median-ms", default=5.0, show_default=True)
@click.option("--latency-p99-ms", default=20.0, show_default=True)
@click.option("--rate-limit", default=None, type=float, help="Requests per second (429 beyond).")
@click.option("--rate-limit-burst", default=50, show_default=True, help="Token bucket size.")
@click.option("--error-rate", default=0.0, show_default=True, help="Share of 5xx answers.")
@click.option("--timeout-rate", default=0.0, show_default=True, help="Share of held calls (504).")
@click.option("--timeout-hold-s", default=30.0, show_default=True)
@click.option("--outage", "outages", multiple=True, help="START:END seconds after start (503).")
@click.option("--duplicate-callback-rate", default=0.0, show_default=True)
@click.option("--out-of-order-callback-rate", default=0.0, show_default=True)
@click.option("--bounce-rate", default=0.05, show_default=True, help="Share of emails bouncing.")
@click.option("--failure-rate", default=0.0, show_default=True, help="Share of items failing.")
def exstream_emulator(
    host: str,
    port: int,
    client_id: str,
    webhook_url: str | None,
    seed: int,
    latency_median_ms: float,
    latency_p99_ms: float,
    rate_limit: float | None,
    rate_limit_burst: int,
    error_rate: float,
    timeout_rate: float,
    timeout_hold_s: float,
    outages: tuple[str, ...],
    duplicate_callback_rate: float,
    out_of_order_callback_rate: float,
    bounce_rate: float,
    failure_rate: float,
) -> None:
    """Run an emulator of OpenText Exstream's HTTP API (see docs/exstream-emulator.md)."""
    try:
        faults = FaultConfig(
            latency_median_ms=latency_median_ms,
            latency_p99_ms=latency_p99_ms,
            rate_limit_per_s=rate_limit,
            rate_limit_burst=rate_limit_burst,
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            timeout_hold_s=timeout_hold_s,
            outages=tuple(_outage(o) for o in outages),
            duplicate_callback_rate=duplicate_callback_rate,
            out_of_order_callback_rate=out_of_order_callback_rate,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    config = EmulatorConfig(
        client_id=client_id,
        client_secret=read_secret("EXSTREAM_CLIENT_SECRET"),
        webhook_url=webhook_url,
        webhook_secret=read_secret("EXSTREAM_WEBHOOK_SECRET").encode() if webhook_url else b"",
        faults=faults,
    )
    world = World.with_templates(
        template_catalogue(),
        outcomes=Outcomes(bounce_rate=bounce_rate, failure_rate=failure_rate),
        rng=random.Random(seed),
    )
    emulator = Emulator(config, world, seed=seed)
    click.echo(f"Exstream emulator on http://{host}:{port} (client id {client_id})")
    web.run_app(emulator.app(), host=host, port=port, print=None)
