"""The engine passthrough benchmark's two sides copy every record (small run on the local
broker): each returns a rate, and the engine side fails if it copied fewer than it was given."""

from __future__ import annotations

import uuid

import pytest

from benchmarks import engine_passthrough
from tests.conftest import KafkaCluster

pytestmark = pytest.mark.e2e


def test_both_sides_copy_every_record(kafka: KafkaCluster) -> None:
    conf = kafka.client_config()
    source = engine_passthrough.create_topic(conf, f"bench-engine-in-{uuid.uuid4().hex[:8]}")
    engine_passthrough.publish(conf, source, 2000)
    assert engine_passthrough.loop_once(conf, source, 2000, timeout_s=120) > 0
    assert engine_passthrough.engine_once(conf, source, 2000, timeout_s=120) > 0
