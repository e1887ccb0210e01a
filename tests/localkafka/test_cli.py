from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli

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
