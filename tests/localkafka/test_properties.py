from __future__ import annotations

import base64
from pathlib import Path

import pytest

from streams.localkafka.properties import NodePorts, cluster_id_text, node_properties, render

pytestmark = pytest.mark.unit


def three_nodes() -> list[NodePorts]:
    return [NodePorts(i, 10000 + i, 20000 + i) for i in (1, 2, 3)]


def test_single_node_bootstraps_its_own_quorum_on_loopback() -> None:
    node = NodePorts(1, 9092, 9093)
    props = node_properties(node, nodes=[node], log_dir=Path("/d"))
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == "/d"


@pytest.mark.parametrize(
    "key",
    [
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "default.replication.factor",
    ],
)
def test_single_node_internal_topics_fit_one_replica(key: str) -> None:
    node = NodePorts(1, 9092, 9093)
    assert node_properties(node, nodes=[node], log_dir=Path("/d"))[key] == "1"


def test_three_nodes_share_a_static_voter_list_and_replicate_internal_topics() -> None:
    nodes = three_nodes()
    all_props = [node_properties(n, nodes=nodes, log_dir=Path(f"/d{n.node_id}")) for n in nodes]
    voters = {p["controller.quorum.voters"] for p in all_props}
    assert voters == {"1@127.0.0.1:20001,2@127.0.0.1:20002,3@127.0.0.1:20003"}
    assert [p["node.id"] for p in all_props] == ["1", "2", "3"]
    assert all("controller.quorum.bootstrap.servers" not in p for p in all_props)
    for p in all_props:
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["share.coordinator.state.topic.replication.factor"] == "3"
        assert p["default.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["share.coordinator.state.topic.min.isr"] == "2"


def test_three_nodes_listen_on_distinct_ports_and_dirs() -> None:
    nodes = three_nodes()
    all_props = [node_properties(n, nodes=nodes, log_dir=Path(f"/d{n.node_id}")) for n in nodes]
    assert len({p["listeners"] for p in all_props}) == 3
    assert len({p["log.dirs"] for p in all_props}) == 3


def test_a_node_outside_the_cluster_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        node_properties(NodePorts(4, 1, 2), nodes=three_nodes(), log_dir=Path("/d"))


def test_extra_properties_override() -> None:
    node = NodePorts(1, 1, 2)
    props = node_properties(node, nodes=[node], log_dir=Path("/d"), extra={"num.partitions": "7"})
    assert props["num.partitions"] == "7"


def test_render_is_one_line_per_setting_and_rejects_what_would_break_lines() -> None:
    assert render({"a": "1", "b": "2"}) == "a=1\nb=2\n"
    with pytest.raises(ValueError, match="one properties line"):
        render({"a": "1\nb=2"})


def test_cluster_id_is_kafkas_unpadded_url_safe_base64() -> None:
    raw = bytes(range(1, 17))
    text = cluster_id_text(raw)
    assert text is not None
    assert len(text) == 22
    assert base64.urlsafe_b64decode(text + "==") == raw


def test_cluster_id_never_reserved_or_option_like() -> None:
    assert cluster_id_text(bytes(16)) is None
    assert cluster_id_text(b"\xf8" + bytes(15)) is None  # encodes to "-A..."
    with pytest.raises(ValueError, match="16 bytes"):
        cluster_id_text(b"short")
