from __future__ import annotations

from pathlib import Path

import pytest

from topology import names
from topology.model import TOPICS_FILE, TopologyError, load_topology, with_replication

pytestmark = pytest.mark.unit


def test_local_profile_has_single_replica_and_production_three() -> None:
    local = load_topology("local")
    prod = load_topology("production")
    assert {t.replication_factor for t in local.topics} == {1}
    assert {t.replication_factor for t in prod.topics} == {3}
    assert {t.config["min.insync.replicas"] for t in prod.topics} == {"2"}


def test_customer_keyed_topics_are_co_partitioned() -> None:
    topo = load_topology("local")
    keyed = [t for t in topo.topics if t.customer_keyed]
    assert len(keyed) >= 8
    assert {t.partitions for t in keyed} == {6}
    assert topo.topic(names.ACCOUNT_EVENTS).partitions == topo.topic(names.PREFERENCES).partitions


def test_policies_of_special_topics() -> None:
    topo = load_topology("production")
    assert topo.topic(names.PREFERENCES).config["cleanup.policy"] == "compact"
    audit = topo.topic(names.AUDIT).config
    assert audit["cleanup.policy"] == "delete"
    assert audit["retention.ms"] == "-1"
    assert audit["retention.bytes"] == "-1"
    assert topo.topic(names.COMM_RULES).partitions == 1


def test_every_input_has_a_dead_letter_topic_like_its_source() -> None:
    topo = load_topology("local")
    for source in (names.ACCOUNT_EVENTS, names.CASE_EVENTS, names.PREFERENCES, names.COMMANDS):
        dlq = topo.topic(names.dlq(source))
        assert dlq.partitions == topo.topic(source).partitions
        assert dlq.value == "DeadLetter"
        assert dlq.config["retention.ms"] == str(30 * 86_400_000)


def test_prefix_applies_to_every_name() -> None:
    topo = load_topology("local", prefix="t1.")
    assert all(n.startswith("t1.") for n in topo.names)
    assert topo.name(names.COMMANDS) == "t1." + names.COMMANDS


def test_unknown_profile_and_topic_are_clear_errors() -> None:
    with pytest.raises(TopologyError, match="unknown topology profile 'staging'"):
        load_topology("staging")
    with pytest.raises(TopologyError, match="not declared"):
        load_topology("local").topic("nope.v1")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.toml"
    path.write_text(text)
    return path


BASE = """
customer_partitions = 4
[defaults]
replication_factor = 1
min_insync_replicas = 1
cleanup_policy = "delete"
retention_ms = 1000
[profiles.local]
"""


def test_co_partitioning_violation_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        BASE
        + '[topics."a"]\nkey = "customer_id"\nvalue = "X"\ndescription = "d"\npartitions = 3\n',
    )
    with pytest.raises(TopologyError, match="co-partitioned"):
        load_topology("local", path=path)


def test_min_isr_above_replication_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        BASE.replace("min_insync_replicas = 1", "min_insync_replicas = 2")
        + '[topics."a"]\nkey = "k"\nvalue = "X"\ndescription = "d"\n',
    )
    with pytest.raises(TopologyError, match="exceeds replication_factor"):
        load_topology("local", path=path)


def test_missing_description_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + '[topics."a"]\nkey = "k"\nvalue = "X"\n')
    with pytest.raises(TopologyError, match="missing description"):
        load_topology("local", path=path)


def test_with_replication_overrides_every_topic() -> None:
    topo = with_replication(load_topology("local"), 3, 2)
    assert {t.replication_factor for t in topo.topics} == {3}
    assert TOPICS_FILE.exists()


def test_the_audit_trail_is_stamped_by_the_broker_and_checkpoints_are_compacted() -> None:
    topo = load_topology("production")
    assert topo.topic(names.AUDIT).config["message.timestamp.type"] == "LogAppendTime"
    checkpoints = topo.topic(names.AUDIT_CHECKPOINTS)
    assert checkpoints.config["cleanup.policy"] == "compact"
    assert checkpoints.config["retention.ms"] == "-1"
    assert checkpoints.partitions == 1
    assert "message.timestamp.type" not in topo.topic(names.COMMANDS).config


def test_a_wrong_timestamp_type_is_a_clear_error(tmp_path: Path) -> None:
    text = TOPICS_FILE.read_text().replace('"LogAppendTime"', '"BrokerTime"')
    path = tmp_path / "topics.toml"
    path.write_text(text)
    with pytest.raises(TopologyError, match="timestamp_type is CreateTime or LogAppendTime"):
        load_topology("local", path=path)
