from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streams.engine.instance import FILE_NAME, claim

pytestmark = pytest.mark.unit


def test_the_same_directory_gives_the_same_id_after_release(tmp_path: Path) -> None:
    first = claim(tmp_path / "state")
    first_id = first.instance_id
    first.release()
    second = claim(tmp_path / "state")
    assert second.instance_id == first_id
    assert (tmp_path / "state" / FILE_NAME).read_text().strip() == first_id
    second.release()


def test_another_directory_gives_another_id(tmp_path: Path) -> None:
    a, b = claim(tmp_path / "a"), claim(tmp_path / "b")
    assert a.instance_id != b.instance_id
    a.release()
    b.release()


def test_a_directory_held_by_a_live_process_gives_a_fresh_id(tmp_path: Path) -> None:
    held = claim(tmp_path)
    # flock is per open file description: another process sees the lock
    code = (
        "import sys; from pathlib import Path; from streams.engine.instance import claim; "
        f"print(claim(Path({str(tmp_path)!r})).instance_id)"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert other
    assert other != held.instance_id
    assert (tmp_path / FILE_NAME).read_text().strip() == held.instance_id
    held.release()


def test_a_dead_holder_leaves_its_id_to_the_next_process(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; from streams.engine.instance import claim; "
        f"print(claim(Path({str(tmp_path)!r})).instance_id)"
    )
    run = [sys.executable, "-c", code]
    first = subprocess.run(run, capture_output=True, text=True, check=True, timeout=60)
    second = subprocess.run(run, capture_output=True, text=True, check=True, timeout=60)
    assert first.stdout.strip() == second.stdout.strip() != ""
