from __future__ import annotations

from pathlib import Path

import pytest

from streams.localkafka.properties import NodePorts, node_properties, render

pytestmark = pytest.mark.unit


def test_single_node_bootstraps_its_own_quorum() -> None:
    node = NodePorts(1, 9092, 9093)
    props = node_properties(node, nodes=[node], log_dir=Path("/d"))
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"


def test_three_nodes_share_a_static_voter_list_and_replicate_internal_topics() -> None:
    nodes = [NodePorts(i, 10000 + i, 20000 + i) for i in (1, 2, 3)]
    all_props = [node_properties(n, nodes=nodes, log_dir=Path(f"/d{n.node_id}")) for n in nodes]
    voters = {p["controller.quorum.voters"] for p in all_props}
    assert voters == {"1@127.0.0.1:20001,2@127.0.0.1:20002,3@127.0.0.1:20003"}
    assert [p["node.id"] for p in all_props] == ["1", "2", "3"]
    assert all(p["transaction.state.log.replication.factor"] == "3" for p in all_props)
    assert all(p["transaction.state.log.min.isr"] == "2" for p in all_props)
    assert all("controller.quorum.bootstrap.servers" not in p for p in all_props)


def test_extra_properties_override_and_render_is_line_per_setting() -> None:
    node = NodePorts(1, 1, 2)
    props = node_properties(node, nodes=[node], log_dir=Path("/d"), extra={"num.partitions": "7"})
    assert props["num.partitions"] == "7"
    text = render({"a": "1", "b": "2"})
    assert text == "a=1\nb=2\n"
