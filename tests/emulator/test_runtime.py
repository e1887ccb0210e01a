"""The emulator's batch jobs composed step by step (pure: no HTTP)."""

from __future__ import annotations

import random

import orjson
import pytest

from streams.emulator.design import seed
from streams.emulator.runtime import Runtime
from streams.simulator.generator import template_catalogue
from tests.emulator.test_server import record

pytestmark = pytest.mark.unit


def _job_of(runtime: Runtime, count: int) -> str:
    body = orjson.dumps({"customers": [record(f"c{i}") for i in range(count)]})
    return runtime.submit_batch(body, external_id="b", service="air-batch", now_ms=1).id


def test_a_job_composes_one_customer_per_step() -> None:
    runtime = Runtime(design=seed(template_catalogue()), rng=random.Random(1))
    job = runtime.job(_job_of(runtime, 3))
    steps = runtime.run_job_steps(job, now_ms=2)
    next(steps)
    assert (job.status, runtime.ledger.summary()["documents"]) == ("started", 1)
    rest = list(steps)
    assert len(rest) == 2
    assert (job.status, runtime.ledger.summary()["documents"]) == ("complete", 3)


def test_a_job_stopped_between_two_customers_composes_no_more() -> None:
    runtime = Runtime(design=seed(template_catalogue()), rng=random.Random(1))
    job = runtime.job(_job_of(runtime, 3))
    steps = runtime.run_job_steps(job, now_ms=2)
    next(steps)
    runtime.stop(job.id, now_ms=3)
    assert list(steps) == []
    assert job.status == "canceled"
    assert [c.status for c in job.customers] == ["composed", "canceled", "canceled"]
    assert runtime.ledger.summary()["documents"] == 1
