"""``air-exstream webhook``: secrets from the environment or files, never from options."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from streams.cli import cli
from streams.webhook.cli import webhook_secrets

pytestmark = pytest.mark.unit

VARS = [
    "EXSTREAM_WEBHOOK_SECRET",
    "EXSTREAM_WEBHOOK_SECRET_FILE",
    "EXSTREAM_WEBHOOK_SECRET_PREVIOUS",
    "EXSTREAM_WEBHOOK_SECRET_PREVIOUS_FILE",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


def test_the_current_secret_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXSTREAM_WEBHOOK_SECRET", "now")
    assert webhook_secrets() == [b"now"]


def test_the_previous_secret_from_a_file_is_added(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    current = tmp_path / "current"
    current.write_text("now\n")
    previous = tmp_path / "previous"
    previous.write_text("before\n")
    monkeypatch.setenv("EXSTREAM_WEBHOOK_SECRET_FILE", str(current))
    monkeypatch.setenv("EXSTREAM_WEBHOOK_SECRET_PREVIOUS_FILE", str(previous))
    assert webhook_secrets() == [b"now", b"before"]


def test_a_missing_secret_is_a_clear_usage_error() -> None:
    with pytest.raises(click.UsageError, match="EXSTREAM_WEBHOOK_SECRET"):
        webhook_secrets()


def test_the_command_refuses_to_start_without_a_secret() -> None:
    result = CliRunner().invoke(cli, ["webhook", "--port", "0"])
    assert result.exit_code != 0
    assert "EXSTREAM_WEBHOOK_SECRET" in result.output


def test_the_command_is_registered() -> None:
    result = CliRunner().invoke(cli, ["webhook", "--help"])
    assert result.exit_code == 0
    assert "--prefix" in result.output
    assert "--bootstrap-servers" in result.output


def test_the_secrets_are_secret_strings_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.webhook.settings import WebhookSecrets

    monkeypatch.setenv("EXSTREAM_WEBHOOK_SECRET", "hook-now")
    monkeypatch.setenv("EXSTREAM_WEBHOOK_SECRET_PREVIOUS", "hook-before")
    secrets = WebhookSecrets()
    assert secrets.keys() == [b"hook-now", b"hook-before"]
    shown = repr(secrets) + str(secrets.model_dump())
    assert "hook-now" not in shown
    assert "hook-before" not in shown
