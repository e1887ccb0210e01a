from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import NewTopic

from tests.conftest import KafkaCluster, wait_for_topics
from topology import names
from topology.apply import apply_topology, diff_topology
from topology.cli import topology as topology_cli
from topology.model import load_topology

pytestmark = pytest.mark.e2e


def test_apply_creates_everything_then_is_a_no_op(kafka: KafkaCluster) -> None:
    topo = load_topology("local", prefix=f"ap{uuid.uuid4().hex[:6]}.")
    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    first = apply_topology(conf, topo)
    assert len(first.create) == len(topo.topics)
    second = apply_topology(conf, topo)
    assert second.empty
    assert len(second.in_sync) == len(topo.topics)
    meta = kafka.admin().list_topics(timeout=10).topics
    assert len(meta[topo.name(names.ACCOUNT_EVENTS)].partitions) == 6


def test_drift_is_reported_and_not_changed(kafka: KafkaCluster) -> None:
    topo = load_topology("local", prefix=f"dr{uuid.uuid4().hex[:6]}.")
    wrong = topo.name(names.CASE_EVENTS)
    admin = kafka.admin()
    admin.create_topics([NewTopic(wrong, num_partitions=2, replication_factor=1)])[wrong].result(30)
    wait_for_topics(admin, [wrong])
    conf = {"bootstrap.servers": kafka.bootstrap_servers}
    result = apply_topology(conf, topo)
    assert any(d.topic == wrong and d.setting == "partitions" for d in result.drift)
    assert len(admin.list_topics(timeout=10).topics[wrong].partitions) == 2
    assert not diff_topology(conf, topo).create


def test_cli_diff_exit_codes(kafka: KafkaCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    import topology.cli as cli_module

    prefix = f"cl{uuid.uuid4().hex[:6]}."
    monkeypatch.setattr(
        cli_module, "load_topology", lambda profile: load_topology(profile, prefix=prefix)
    )
    runner = CliRunner()
    args = ["--bootstrap-servers", kafka.bootstrap_servers]
    before = runner.invoke(topology_cli, ["diff", *args])
    assert before.exit_code == 2
    assert "would create" in before.output
    applied = runner.invoke(topology_cli, ["apply", *args])
    assert applied.exit_code == 0, applied.output
    after = runner.invoke(topology_cli, ["diff", *args])
    assert after.exit_code == 0
    assert "0 would create, 0 drift" in after.output
