"""The broker's operating-system side: ports, JVM processes, and knowing which pids are ours.

A pid from a state file is trusted only while the process behind it is still a ``kafka.Kafka``
JVM started with that node's ``server.properties`` (read from ``/proc/<pid>/cmdline``, or ``ps``
where there is no ``/proc``). A pid reused by any other process is therefore never signalled.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from streams.localkafka.errors import PortInUse
from streams.localkafka.properties import HOST

MAIN_CLASS = "kafka.Kafka"

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""JVMs started by this Python process: kept so they are reaped once they exit (no zombies) and
so no Popen object is collected while its process runs."""


def pick_free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback right now.

    Chosen at random below the kernel's ephemeral range where there is room: ports from that
    range are handed to every outgoing connection on the host, so one picked from it can be
    taken by some client's socket before the broker binds it. All candidate sockets are held
    until all are picked, so no port is returned twice.
    """
    low, _ = _ephemeral_range()
    sockets: list[socket.socket] = []
    try:
        candidates = random.sample(range(_LOW_PORT, low), k=min(50 * count, low - _LOW_PORT))
        for port in candidates if low - _LOW_PORT >= 100 * count else []:
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        while len(sockets) < count:  # no room below the range: let the kernel choose
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


_LOW_PORT = 20000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535  # the IANA dynamic range (macOS and others)


def port_is_free(port: int) -> bool:
    """True when a server could listen on ``port``. SO_REUSEADDR as Kafka sets it, so a port
    whose old connections linger in TIME_WAIT (a node just stopped) counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def require_free(ports: Iterable[int]) -> None:
    for port in ports:
        if not port_is_free(port):
            raise PortInUse(
                f"port {port} on {HOST} is already in use: stop what holds it, or choose other "
                "ports (omit them to let the runner pick free ones)"
            )


def launch(cmd: Sequence[str], *, output: Path) -> int:
    """Start ``cmd`` detached (own session, no terminal, output appended to ``output``)."""
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the starting terminal does not reach the broker
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _cmdline(pid: int) -> list[str] | None:
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        # A live process reads as empty for an instant while it execs (here: setpriv -> java),
        # and a kernel thread always does; re-read briefly before concluding it is not ours.
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


def is_broker_process(pid: int, properties: Path) -> bool:
    """True while ``pid`` is a live ``kafka.Kafka`` JVM started with exactly ``properties``."""
    _reap_exited()
    args = _cmdline(pid)
    return args is not None and MAIN_CLASS in args and str(properties) in args


def stop_processes(
    targets: Sequence[tuple[int, Path]], *, timeout_s: float, sig: signal.Signals = signal.SIGTERM
) -> list[int]:
    """Signal every ``(pid, properties)`` that is still ours, all at once, and wait for them.

    Processes still alive ``timeout_s`` after ``sig`` get SIGKILL. Signalling all nodes together
    matters: a KRaft broker stopped after the majority of controllers is gone waits a long time
    for a controlled shutdown no one can grant. Returns the pids that were signalled.
    """
    ours = [(pid, props) for pid, props in targets if is_broker_process(pid, props)]
    for pid, _ in ours:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    alive = list(ours)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [(pid, props) for pid, props in alive if is_broker_process(pid, props)]
    for pid, props in alive:
        if is_broker_process(pid, props):  # checked again right before the kill
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid, _ in alive:
        proc = _CHILDREN.pop(pid, None)
        if proc is not None:
            proc.wait(timeout=10)
    _reap_exited()
    return [pid for pid, _ in ours]


def _reap_exited() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, indented, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"  ({path} is missing)\n"
    return "".join(f"  {line}\n" for line in text) or f"  ({path} is empty)\n"


_TIMESTAMP = re.compile(r"^\[[^\]]*\] ")
_PROBLEM = re.compile(r"^\[[^\]]*\] (ERROR|FATAL) |^Caused by: ")


def log_excerpt(path: Path, *, problems: int = 8, last: int = 6) -> str:
    """What a person needs from a broker log: its distinct ERROR/FATAL and ``Caused by`` lines
    (stack frames left out), then its last lines."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  ({path} is missing)\n"
    seen: set[str] = set()
    found: list[str] = []
    for line in lines:
        key = _TIMESTAMP.sub("", line)
        if _PROBLEM.search(line) and key not in seen:
            seen.add(key)
            found.append(line)
    ending = [line for line in lines if line.strip() and not line.startswith(("\t", " "))]
    parts = [f"  {line}\n" for line in found[:problems]]
    if ending:
        parts.append("  ...\n" if parts else "")
        parts.extend(f"  {line}\n" for line in ending[-last:])
    return "".join(parts) or f"  ({path} is empty)\n"
