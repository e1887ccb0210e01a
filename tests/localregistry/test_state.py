from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.localregistry.state import RegistryInfo, read_state, write_state

pytestmark = pytest.mark.unit

INFO = RegistryInfo(
    state_dir="/s",
    version="3.3.3",
    java="/jdk/bin/java",
    pid=4242,
    http_port=18081,
    management_port=18082,
    log_file="/s/registry.log",
)


def test_round_trip_and_url_for_shell_users() -> None:
    text = INFO.to_json()
    assert RegistryInfo.from_json(text) == INFO
    assert json.loads(text)["url"] == "http://127.0.0.1:18081/apis/ccompat/v7"


def test_a_release_without_management_port_round_trips() -> None:
    info = RegistryInfo.from_json(INFO.to_json().replace("18082", "null"))
    assert info.management_port is None


@pytest.mark.parametrize("content", ["", "{", '{"pid": 1}', '{"pid": "x", "state_dir": 1}', "[]"])
def test_a_torn_or_foreign_state_file_describes_nothing(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    assert read_state(path) is None


def test_write_replaces_atomically_and_read_finds_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert read_state(path) is None
    write_state(path, INFO)
    assert read_state(path) == INFO
    assert not path.with_name("state.json.tmp").exists()
