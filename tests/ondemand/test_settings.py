"""The on-demand service's secrets: environment or mounted files, SecretStr, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import ConfigError
from streams.ondemand.settings import OnDemandSecrets

pytestmark = pytest.mark.unit

VARS = [
    f"ONDEMAND_{name}{suffix}"
    for name in ("URL_SECRET", "URL_SECRET_PREVIOUS", "API_KEYS")
    for suffix in ("", "_FILE")
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)


def test_secrets_from_the_environment_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONDEMAND_URL_SECRET", "link-now")
    monkeypatch.setenv("ONDEMAND_API_KEYS", '{"keys": []}')
    secrets = OnDemandSecrets()
    assert secrets.link_keys() == [b"link-now"]
    assert secrets.api_keys_json() == '{"keys": []}'
    shown = repr(secrets) + str(secrets.model_dump())
    assert "link-now" not in shown
    assert "keys" not in shown.replace("api_keys", "")


def test_secrets_from_files_and_the_keys_file_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "now").write_text("link-now\n")
    (tmp_path / "before").write_text("link-before\n")
    (tmp_path / "keys").write_text('{"from": "file"}\n')
    monkeypatch.setenv("ONDEMAND_URL_SECRET_FILE", str(tmp_path / "now"))
    monkeypatch.setenv("ONDEMAND_URL_SECRET_PREVIOUS_FILE", str(tmp_path / "before"))
    monkeypatch.setenv("ONDEMAND_API_KEYS_FILE", str(tmp_path / "keys"))
    monkeypatch.setenv("ONDEMAND_API_KEYS", '{"from": "env"}')
    secrets = OnDemandSecrets()
    assert secrets.link_keys() == [b"link-now", b"link-before"]
    assert secrets.api_keys_json() == '{"from": "file"}'


def test_missing_or_unreadable_secrets_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="ONDEMAND_URL_SECRET or ONDEMAND_URL_SECRET_FILE"):
        OnDemandSecrets()
    monkeypatch.setenv("ONDEMAND_URL_SECRET", "link-now")
    with pytest.raises(ConfigError, match="ONDEMAND_API_KEYS_FILE"):
        OnDemandSecrets()
    monkeypatch.setenv("ONDEMAND_API_KEYS_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="cannot read ONDEMAND_API_KEYS_FILE"):
        OnDemandSecrets()
