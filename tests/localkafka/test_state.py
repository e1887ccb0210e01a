from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.localkafka.security import ClientSecurity
from streams.localkafka.state import ClusterInfo, NodeInfo, read_state, write_state

pytestmark = pytest.mark.unit


def cluster() -> ClusterInfo:
    nodes = tuple(
        NodeInfo(
            node_id=i, broker_port=9000 + i, controller_port=9100 + i, pid=100 + i, log_file="l"
        )
        for i in (1, 2, 3)
    )
    return ClusterInfo(cluster_id="c", state_dir="/s", kafka_version="4.1.1", nodes=nodes)


def test_bootstrap_servers_list_every_node() -> None:
    assert cluster().bootstrap_servers == "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003"


def test_json_round_trip_records_pids_ports_and_bootstrap() -> None:
    info = cluster()
    doc = json.loads(info.to_json())
    assert doc["bootstrap_servers"] == info.bootstrap_servers
    assert [n["pid"] for n in doc["nodes"]] == [101, 102, 103]
    assert ClusterInfo.from_json(info.to_json()) == info


def test_replace_node_keeps_the_others() -> None:
    info = cluster()
    moved = NodeInfo(node_id=2, broker_port=9002, controller_port=9102, pid=999, log_file="l")
    updated = info.replace_node(moved)
    assert [n.pid for n in updated.nodes] == [101, 999, 103]
    assert updated.node(2) == moved
    assert updated.node(7) is None


def test_state_file_written_atomically_and_unreadable_means_none(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert read_state(path) is None
    write_state(path, cluster())
    assert read_state(path) == cluster()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    path.write_text('{"cluster_id": ')  # torn
    assert read_state(path) is None


def secure_cluster() -> ClusterInfo:
    client = ClientSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="air-exstream",
        sasl_password_file="/s/security/client.password",
        ssl_cafile="/s/security/ca.pem",
    )
    return ClusterInfo(
        cluster_id="c", state_dir="/s", kafka_version="4.1.1", nodes=(), client_security=client
    )


def test_a_sasl_ssl_cluster_records_its_client_settings_and_keeps_them() -> None:
    info = secure_cluster()
    doc = json.loads(info.to_json())
    assert doc["client_security"]["sasl_password_file"] == "/s/security/client.password"
    assert ClusterInfo.from_json(info.to_json()) == info
    node = NodeInfo(node_id=1, broker_port=9001, controller_port=9101, pid=1, log_file="l")
    assert info.add_node(node).client_security == info.client_security
    assert info.add_node(node).replace_node(node).client_security == info.client_security


def test_a_plaintext_cluster_records_no_client_settings() -> None:
    doc = json.loads(cluster().to_json())
    assert "client_security" not in doc  # state files read by older versions stay the same
    assert ClusterInfo.from_json(cluster().to_json()).client_security is None
