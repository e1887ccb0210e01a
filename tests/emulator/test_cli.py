"""The emulator's command line: secrets only from the environment or files."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams.emulator.cli import _outage, exstream_emulator
from streams.secrets import read_secret

pytestmark = pytest.mark.unit


def test_secret_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXSTREAM_CLIENT_SECRET", "from-env")
    assert read_secret("EXSTREAM_CLIENT_SECRET") == "from-env"
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET")
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("EXSTREAM_CLIENT_SECRET_FILE", str(secret))
    assert read_secret("EXSTREAM_CLIENT_SECRET") == "from-file"
    monkeypatch.setenv("EXSTREAM_CLIENT_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(click.UsageError, match="cannot read EXSTREAM_CLIENT_SECRET_FILE"):
        read_secret("EXSTREAM_CLIENT_SECRET")


def test_missing_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET_FILE", raising=False)
    result = CliRunner().invoke(exstream_emulator, ["--port", "0"])
    assert result.exit_code == 2
    assert "set EXSTREAM_CLIENT_SECRET or EXSTREAM_CLIENT_SECRET_FILE" in result.output


def test_bad_fault_options_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXSTREAM_CLIENT_SECRET", "x")
    result = CliRunner().invoke(exstream_emulator, ["--error-rate", "3"])
    assert result.exit_code == 2
    assert "error_rate must be within 0..1" in result.output
    assert _outage("5:35") == (5.0, 35.0)
    with pytest.raises(click.BadParameter):
        _outage("5-35")
