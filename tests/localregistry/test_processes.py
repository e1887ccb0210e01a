"""Which pids are the registry's, stopping them, the state directory, log excerpts: with
stand-in processes, no JVM."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from streams.localregistry import LocalRegistry
from streams.localregistry.errors import LocalRegistryError, StateDirRefused
from streams.localregistry.processes import (
    is_registry_process,
    launch,
    log_excerpt,
    marker_argument,
    stop_process,
)
from streams.localregistry.state import RegistryInfo, write_state

pytestmark = pytest.mark.component


def stand_in(tmp_path: Path, state_dir: Path, *, ignore_term: bool = False) -> int:
    """A process whose command line carries ``state_dir``'s marker, as the registry's does."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('up', flush=True)\ntime.sleep(60)\n"
    log = tmp_path / f"stand-in-{time.monotonic_ns()}.log"
    pid = launch([sys.executable, "-c", code, marker_argument(state_dir)], output=log)
    deadline = time.monotonic() + 10
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)  # until the signal disposition is in place
    return pid


def test_only_the_process_with_the_state_dirs_marker_is_ours(tmp_path: Path) -> None:
    mine, other = tmp_path / "a", tmp_path / "b"
    assert not is_registry_process(os.getpid(), mine)
    pid = stand_in(tmp_path, mine)
    try:
        assert is_registry_process(pid, mine)
        assert not is_registry_process(pid, other)
        assert not stop_process(pid, other, timeout_s=1)  # not signalled
        assert is_registry_process(pid, mine)
        assert stop_process(pid, mine, timeout_s=10)
        assert not is_registry_process(pid, mine)
    finally:
        if is_registry_process(pid, mine):
            os.kill(pid, signal.SIGKILL)


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    pid = stand_in(tmp_path, tmp_path / "a", ignore_term=True)
    started = time.monotonic()
    assert stop_process(pid, tmp_path / "a", timeout_s=0.5)
    assert not is_registry_process(pid, tmp_path / "a")
    assert time.monotonic() - started < 10


def test_down_never_signals_a_recorded_pid_that_is_not_its_registry(tmp_path: Path) -> None:
    local = LocalRegistry(tmp_path / "s")
    local.state_dir.mkdir(parents=True)
    # a state file naming this very test process, which carries no marker of that state dir
    write_state(
        local.state_file,
        RegistryInfo(
            state_dir=str(local.state_dir),
            version="3.3.3",
            java="java",
            pid=os.getpid(),
            http_port=1,
            management_port=2,
            log_file="l",
        ),
    )
    assert not local.is_running()
    assert not local.stop()  # and this process lives on to check it
    assert not local.state_file.exists(), "the stale record is forgotten"


def test_a_foreign_non_empty_state_dir_is_never_used(tmp_path: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(StateDirRefused, match="not empty"):
        LocalRegistry(tmp_path).start()
    assert precious.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_stop_without_a_registry_creates_nothing(tmp_path: Path) -> None:
    assert not LocalRegistry(tmp_path / "none").stop()
    assert not (tmp_path / "none").exists()


def test_a_port_asked_for_that_is_taken_is_refused_before_launching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from streams.localregistry import runner

    monkeypatch.setattr(runner, "resolve_app", lambda chosen: tmp_path / "app")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(LocalRegistryError, match=f"port {port} on 127.0.0.1 is already in use"):
            LocalRegistry(tmp_path / "s", port=port).start()
    assert not (tmp_path / "s" / "state.json").exists()


def test_log_excerpt_keeps_errors_and_causes_without_stack_frames(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_text(
        "2026-12-02 17:47:20 INFO [io.qua] starting\n"
        "2026-12-02 17:47:20 ERROR [io.qua.run.Quarkus] Error running Quarkus: "
        "java.lang.UnsupportedClassVersionError: compiled by a more recent Java\n"
        "\tat java.base/java.lang.ClassLoader.defineClass1(Native Method)\n"
        "Caused by: java.net.BindException: Address already in use\n"
        "\tat io.vertx.core.net.impl.TCPServerBase.listen(TCPServerBase.java:1)\n"
        "2026-12-02 17:47:21 INFO [io.qua] stopped\n"
    )
    excerpt = log_excerpt(log)
    assert "UnsupportedClassVersionError" in excerpt
    assert "Caused by: java.net.BindException" in excerpt
    assert "\tat " not in excerpt
    assert excerpt.rstrip().endswith("stopped")
    assert "missing" in log_excerpt(tmp_path / "absent.log")
