"""The registry's operating-system side: launching its JVM and knowing which pid is ours.

A pid from a state file is trusted only while the process behind it is a live JVM whose command
line carries this state directory's marker property (read from ``/proc/<pid>/cmdline``, or ``ps``
where there is no ``/proc``). A pid reused by any other process is therefore never signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from streams.localregistry.releases import MARKER_PROPERTY

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""JVMs started by this Python process: kept so they are reaped once they exit (no zombies)."""


def marker_argument(state_dir: Path) -> str:
    return f"-D{MARKER_PROPERTY}={state_dir}"


def launch(cmd: Sequence[str], *, output: Path) -> int:
    """Start ``cmd`` detached (own session, no terminal, output appended to ``output``)."""
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the starting terminal does not reach it
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _cmdline(pid: int) -> list[str] | None:
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        # a process reads as empty for an instant while it execs (setpriv -> java): re-read
        for _ in range(50):
            try:
                if (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                    return None  # exited, not yet reaped
                raw = (proc / "cmdline").read_bytes()
            except OSError:
                return None
            if raw:
                return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
            time.sleep(0.005)
        return None
    try:  # no /proc (macOS): ps shows the full command line with -ww
        out = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split() if out.returncode == 0 and out.stdout.strip() else None


def is_registry_process(pid: int, state_dir: Path) -> bool:
    """True while ``pid`` is a live registry JVM started for ``state_dir``."""
    _reap_exited()
    args = _cmdline(pid)
    return args is not None and marker_argument(state_dir) in args


def stop_process(pid: int, state_dir: Path, *, timeout_s: float) -> bool:
    """SIGTERM the registry if ``pid`` is still ours, SIGKILL it after ``timeout_s``.
    Returns whether it was running."""
    if not is_registry_process(pid, state_dir):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_registry_process(pid, state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_registry_process(pid, state_dir):  # checked again right before the kill
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=10)
    return True


def _reap_exited() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


_WIDTH = 400
_PROBLEM = re.compile(r"\b(ERROR|FATAL)\b|^Caused by: |Exception: ")


def log_excerpt(path: Path, *, problems: int = 8, last: int = 8) -> str:
    """What a person needs from a registry log: its distinct error lines (stack frames left
    out), then its last lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  ({path} is missing)\n"
    found: list[str] = []
    for line in lines:
        if _PROBLEM.search(line) and not line.startswith(("\t", " ")) and line not in found:
            found.append(line)
    ending = [line for line in lines if line.strip() and not line.startswith(("\t", " "))]
    parts = [f"  {line[:_WIDTH]}\n" for line in found[:problems]]
    if ending:
        parts.append("  ...\n" if parts else "")
        parts.extend(f"  {line[:_WIDTH]}\n" for line in ending[-last:])
    return "".join(parts) or f"  ({path} is empty)\n"
