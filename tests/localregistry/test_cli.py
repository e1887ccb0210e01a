from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli

pytestmark = pytest.mark.component


def test_up_uses_the_configured_registry_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SCHEMA_REGISTRY_URL", "https://registry.example:8081")
    state = tmp_path / "state"
    result = CliRunner().invoke(cli, ["registry", "up", "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert "configured registry https://registry.example:8081 is used" in result.output
    assert not state.exists()


def test_status_without_a_registry_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["registry", "status", "--state-dir", str(tmp_path / "n")])
    assert result.exit_code == 1
    assert "no local registry recorded" in result.output


def test_down_without_a_registry_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["registry", "down", "--state-dir", str(tmp_path / "n")])
    assert result.exit_code == 0
    assert "no local registry was running" in result.output


def test_only_releases_the_project_runs_can_be_asked_for(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["registry", "up", "--apicurio-version", "2.6.13.Final", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "'2.6.13.Final' is not one of '3.3.3', '3.0.9'" in result.output


def test_registry_is_listed_among_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "registry" in result.output.split()
