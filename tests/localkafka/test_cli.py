from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from streams.cli import cli
from streams.localkafka.security import ClientSecurity, ScramUser, SecurityFiles
from streams.localkafka.state import ClusterInfo, NodeInfo, write_state

pytestmark = pytest.mark.component


def test_up_uses_the_configured_cluster_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1.example:9092")
    state = tmp_path / "state"
    result = CliRunner().invoke(cli, ["kafka", "up", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "configured cluster kafka-1.example:9092 is used" in result.output
    assert not state.exists()


def test_status_without_a_cluster_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kafka", "status", "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no local cluster recorded" in result.output


def test_only_one_or_three_nodes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["kafka", "up", "--nodes", "2", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "'2' is not one of '1', '3'" in result.output


def record_sasl_ssl_cluster(state: Path) -> ClientSecurity:
    """A SASL_SSL cluster as `kafka up --sasl-ssl` records it (its processes long gone)."""
    files = SecurityFiles(state / "security")
    files.directory.mkdir(parents=True)
    files.password_file.write_text("never-printed-pw\n")
    client = ClientSecurity.for_cluster(
        files, ScramUser(username="air-exstream", password=SecretStr("never-printed-pw"))
    )
    node = NodeInfo(node_id=1, broker_port=29092, controller_port=29093, pid=1, log_file="l")
    info = ClusterInfo(
        cluster_id="c",
        state_dir=str(state),
        kafka_version="4.1.1",
        nodes=(node,),
        client_security=client,
    )
    write_state(state / "state.json", info)
    return client


def test_status_prints_the_sasl_ssl_client_settings_but_not_the_password(tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = record_sasl_ssl_cluster(state)
    result = CliRunner().invoke(cli, ["kafka", "status", "--state-dir", str(state)])
    assert result.exit_code == 1, result.output  # recorded, not running
    lines = result.output.splitlines()
    assert "clients connect over SASL_SSL with:" in lines
    assert "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092" in lines
    assert "export KAFKA_SECURITY_PROTOCOL=SASL_SSL" in lines
    assert "export KAFKA_SASL_MECHANISM=SCRAM-SHA-512" in lines
    assert "export KAFKA_SASL_USERNAME=air-exstream" in lines
    assert f"export KAFKA_SASL_PASSWORD_FILE={client.sasl_password_file}" in lines
    assert f"export KAFKA_SSL_CAFILE={client.ssl_cafile}" in lines
    assert "never-printed-pw" not in result.output
    assert "KAFKA_SASL_PASSWORD=" not in result.output


def test_status_of_a_plaintext_cluster_prints_no_security_settings(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    node = NodeInfo(node_id=1, broker_port=29092, controller_port=29093, pid=1, log_file="l")
    info = ClusterInfo(cluster_id="c", state_dir=str(state), kafka_version="4.1.1", nodes=(node,))
    write_state(state / "state.json", info)
    result = CliRunner().invoke(cli, ["kafka", "status", "--state-dir", str(state)])
    assert "bootstrap servers: 127.0.0.1:29092" in result.output.splitlines()
    assert "SASL" not in result.output
    assert "export" not in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SASL_PASSWORD": "a", "KAFKA_SASL_PASSWORD_FILE": "/x"}, "not both"),
        ({"KAFKA_SASL_USERNAME": "two words"}, "is not usable by the local cluster"),
        ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read the SASL password file"),
    ],
)
def test_up_sasl_ssl_refuses_unusable_credentials_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    for name in ("KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SASL_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = tmp_path / "state"
    result = CliRunner().invoke(cli, ["kafka", "up", "--sasl-ssl", "--state-dir", str(state)])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not state.exists()
