"""The local registry for real: the CLI lifecycle, what it listens on, start failures."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli
from streams.localregistry import LocalRegistry, processes, runner
from streams.localregistry.errors import RegistryStartFailed
from streams.localregistry.runner import answers

pytestmark = pytest.mark.e2e

EXPORT = re.compile(
    r"^export KAFKA_SCHEMA_REGISTRY_URL=(http://127\.0\.0\.1:(\d+)/apis/ccompat/v7)$"
)


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(hex local address, port) of every TCP socket ``pid`` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append((address, int(port, 16)))
    return found


LOOPBACK = {
    "0100007F",  # 127.0.0.1 (tcp)
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1 (tcp6, how the JVM binds it)
    "00000000000000000000000001000000",  # ::1
}


def test_cli_up_status_down_on_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_SCHEMA_REGISTRY_URL", raising=False)
    state = str(tmp_path / "cli-state")
    cli_runner = CliRunner()
    up = cli_runner.invoke(cli, ["registry", "up", "--state-dir", state])
    try:
        assert up.exit_code == 0, up.output
        assert re.search(r"Apicurio Registry \S+ up in [\d.]+ s \(Java: ", up.output)
        export = next(m for line in up.output.splitlines() if (m := EXPORT.match(line)))
        url, port = export.group(1), int(export.group(2))
        assert answers(url)
        info = LocalRegistry(state).info()
        assert info is not None
        listening = listening_addresses(info.pid)
        assert port in {p for _, p in listening}
        assert {address for address, _ in listening} <= LOOPBACK, listening

        again = cli_runner.invoke(cli, ["registry", "up", "--state-dir", state])
        assert again.exit_code == 0, again.output
        assert "already running" in again.output
        assert f"export KAFKA_SCHEMA_REGISTRY_URL={url}" in again.output.splitlines()
        status = cli_runner.invoke(cli, ["registry", "status", "--state-dir", state])
        assert status.exit_code == 0, status.output
        assert ": answering" in status.output
    finally:
        down = cli_runner.invoke(cli, ["registry", "down", "--state-dir", state])
    assert down.exit_code == 0
    assert down.output == "stopped the local registry\n"
    assert not processes.is_registry_process(info.pid, Path(state).resolve())
    assert not answers(url)
    after = cli_runner.invoke(cli, ["registry", "status", "--state-dir", state])
    assert after.exit_code == 1
    assert "no local registry recorded" in after.output


def test_a_registry_exiting_during_startup_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port grabbed between the check and the JVM's bind: it dies, the error says why."""
    monkeypatch.setattr(runner, "port_is_free", lambda port: True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        local = LocalRegistry(tmp_path / "s", port=port, die_with_parent=True)
        with pytest.raises(RegistryStartFailed, match="exited during startup") as caught:
            local.start()
    assert caught.value.port_conflict, str(caught.value)
    assert str(port) in str(caught.value)
    assert local.info() is None  # nothing left recorded (or running)


def test_a_picked_port_taken_before_the_bind_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pick = runner.pick_free_ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks: list[list[int]] = []

        def pick(count: int) -> list[int]:
            # the first pick hands out the squatted port, as a race with another process would
            ports = real_pick(count)
            if not picks:
                ports[-1] = taken
            picks.append(ports)
            return ports

        monkeypatch.setattr(runner, "pick_free_ports", pick)
        with LocalRegistry(tmp_path / "s", die_with_parent=True) as info:
            assert len(picks) == 2
            assert info.http_port != taken
            assert answers(info.url)
