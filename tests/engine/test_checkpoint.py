"""The offsets a clean stop leaves for the next engine on the same directory: written
atomically, taken once (the file removed), ignored when unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.engine import checkpoint

pytestmark = pytest.mark.unit


def test_the_offsets_written_are_taken_once(tmp_path: Path) -> None:
    offsets = {("app-prefs-changelog", 0): 120, ("app-prefs-changelog", 3): 7, ("other", 1): 0}
    checkpoint.write(tmp_path / "state", offsets)
    assert [p.name for p in (tmp_path / "state").iterdir()] == [checkpoint.FILE]
    assert checkpoint.take(tmp_path / "state") == offsets
    assert list((tmp_path / "state").iterdir()) == []  # a crash from now on leaves none
    assert checkpoint.take(tmp_path / "state") == {}


def test_no_file_no_offsets(tmp_path: Path) -> None:
    assert checkpoint.take(tmp_path) == {}


@pytest.mark.parametrize("text", ["{not json", '["a list"]', '{"topic": {"0": "x"}}'])
def test_an_unreadable_file_is_said_removed_and_gives_no_offsets(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / checkpoint.FILE).write_text(text)
    assert checkpoint.take(tmp_path) == {}
    assert not (tmp_path / checkpoint.FILE).exists()
    assert "replayed whole" in caplog.text
