"""``air-exstream exstream-emulator``: run the Exstream emulator on a local port.

Secrets come from the environment or files, never from options (they would show in ``ps``):
``EXSTREAM_CLIENT_SECRET`` / ``EXSTREAM_CLIENT_SECRET_FILE`` for the OTDS client and
``EXSTREAM_WEBHOOK_SECRET`` / ``EXSTREAM_WEBHOOK_SECRET_FILE`` for authenticating the event
batches it sends (HMAC key, or the bearer secret). Its Design API holds the simulated world's
template catalogue.
"""

from __future__ import annotations

import random

import click
from aiohttp import web

from streams.emulator.design import seed as seed_design
from streams.emulator.faults import FaultConfig
from streams.emulator.lifecycle import Outcomes
from streams.emulator.runtime import Runtime
from streams.emulator.server import Emulator, EmulatorConfig
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
@click.option("--tenant", default="air", show_default=True, help="The OTDS tenant id.")
@click.option("--domain", default="air", show_default=True, help="The Exstream domain id.")
@click.option("--events-url", default=None, help="Where event batches are posted.")
@click.option(
    "--events-auth",
    type=click.Choice(["hmac", "bearer"]),
    default="hmac",
    show_default=True,
    help="How event batches are authenticated.",
)
@click.option("--events-batch-size", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--events-linger-s", default=0.05, show_default=True, type=click.FloatRange(min=0))
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
@click.option("--failure-rate", default=0.0, show_default=True, help="Share of dispatches failing.")
def exstream_emulator(
    host: str,
    port: int,
    client_id: str,
    tenant: str,
    domain: str,
    events_url: str | None,
    events_auth: str,
    events_batch_size: int,
    events_linger_s: float,
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
    """Run an emulator of OpenText Exstream's public API (see docs/exstream-emulator.md)."""
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
        tenant=tenant,
        domain=domain,
        events_url=events_url,
        events_secret=read_secret("EXSTREAM_WEBHOOK_SECRET").encode() if events_url else b"",
        events_auth=events_auth,
        events_batch_size=events_batch_size,
        events_linger_s=events_linger_s,
        faults=faults,
    )
    runtime = Runtime(
        design=seed_design(template_catalogue()),
        tenant=tenant,
        domain=domain,
        outcomes=Outcomes(bounce_rate=bounce_rate, failure_rate=failure_rate),
        rng=random.Random(seed),
    )
    emulator = Emulator(config, runtime, seed=seed)
    click.echo(f"Exstream emulator on http://{host}:{port} (tenant {tenant}, domain {domain})")
    web.run_app(emulator.app(), host=host, port=port, print=None)
