"""Start and stop a real schema registry (Apicurio Registry) on this host, on loopback.

A registry lives in a state directory (``.registry-local/`` by default): its log, a scratch
directory and ``state.json`` (pid, ports, release, URL) that lets another process report on or
stop it. Storage is in memory, like the local broker's data it starts empty on every fresh start;
see ``docs/schema-registry.md`` for why. Only directories this runner created (or empty ones) are
used. ``stop`` signals only the process this runner started (see
:mod:`streams.localregistry.processes`). Concurrent calls on one state directory are serialized
by a lock file.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from streams.localkafka.processes import pick_free_ports, port_is_free, tail
from streams.localregistry import processes
from streams.localregistry.errors import LocalRegistryError, RegistryStartFailed, StateDirRefused
from streams.localregistry.processes import log_excerpt
from streams.localregistry.provision import find_javas, resolve_app
from streams.localregistry.releases import (
    HOST,
    JavaRuntime,
    Release,
    choose,
    launch_command,
    port_conflict,
    runtime_properties,
)
from streams.localregistry.state import RegistryInfo, read_state, write_state

__all__ = ["DEFAULT_STATE_DIR", "LocalRegistry", "answers"]

DEFAULT_STATE_DIR = Path(".registry-local")
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
_MARKER = ".air-exstream-registry"
_LOG = "registry.log"
_WORK = "work"
_OWN_FILES = ("state.json", "state.json.tmp", _LOG)
# no proxy from the environment: the registry is on loopback
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalRegistry:
    """One local Apicurio Registry in ``state_dir``, serving the Confluent-compatible API.

    ``start()`` is idempotent: when ``state_dir`` describes a running registry it returns that
    one unchanged (whatever ``version`` says). A recorded registry that no longer runs is
    forgotten and a fresh, empty one started. Also a context manager: ``with
    LocalRegistry(path) as info:`` starts, then stops on exit.
    """

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        port: int | None = None,
        version: str | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        die_with_parent: bool = False,
    ) -> None:
        """``port``: the HTTP port (a free one is picked when omitted). ``version``: the
        Apicurio Registry release (the newest one a Java on this host can run when omitted).
        ``die_with_parent``: the registry gets SIGTERM when the thread that launched it ends (its
        process dying by any means; Linux, through util-linux ``setpriv``; ignored where that is
        missing). For test sessions, so a killed run leaves no registry behind; not for
        ``registry up``, whose process exits right after starting it."""
        self.state_dir = Path(state_dir).resolve()
        self._port = port
        self._version = version
        self._start_timeout_s = start_timeout_s
        self._die_with_parent = die_with_parent

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def info(self) -> RegistryInfo | None:
        """The recorded registry, if any, whether or not its process still runs."""
        return read_state(self.state_file)

    def is_running(self) -> bool:
        """True when a registry is recorded and its process runs (and is provably ours)."""
        info = self.info()
        return info is not None and self._alive(info)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RegistryInfo:
        """Start the registry and return once its Confluent-compatible API answers.

        Raises NoSuitableJava, MavenMissing, DownloadFailed, StateDirRefused, LocalRegistryError
        (a port asked for is taken) or RegistryStartFailed (with the end of its log); on failure
        the process started by this call has been stopped again.
        """
        self._check_ownership()
        with self._locked():
            info = self.info()
            if info is not None and self._alive(info):
                return info
            if info is not None:
                self._stop_recorded(info)
            chosen, java = choose(find_javas(), version=self._version)
            app = resolve_app(chosen)
            attempts = 3 if self._port is None else 1
            for attempt in range(1, attempts + 1):
                try:
                    return self._start_fresh(chosen, java, app)
                except RegistryStartFailed as exc:
                    # a picked port taken by someone else before the JVM bound it: pick again
                    if not exc.port_conflict or attempt == attempts:
                        raise
            raise AssertionError("unreachable: the last attempt returns or raises")

    def stop(self) -> bool:
        """Stop the recorded registry (SIGTERM, SIGKILL after 20 s) and forget it. Returns
        whether it was running. Its log stays until the next start."""
        if not self.state_file.exists():
            return False
        with self._locked():
            info = self.info()
            return False if info is None else self._stop_recorded(info)

    def __enter__(self) -> RegistryInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ state directory

    def _check_ownership(self) -> None:
        """Refuse a non-empty directory this runner did not create: start() deletes its log."""
        if not self.state_dir.exists() or (self.state_dir / _MARKER).exists():
            return
        if not self.state_dir.is_dir() or any(self.state_dir.iterdir()):
            raise StateDirRefused(
                f"{self.state_dir} is not empty and was not created by `air-exstream registry "
                "up`; choose another --state-dir (or empty this one)"
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / _MARKER).touch()
        gitignore = self.state_dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# local schema registry state and logs, never committed\n*\n")
        with (self.state_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _clean(self) -> None:
        shutil.rmtree(self.state_dir / _WORK, ignore_errors=True)
        for name in _OWN_FILES:
            (self.state_dir / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ the process

    def _ports(self, chosen: Release) -> tuple[int, int | None]:
        """(HTTP port, management port or None): the one asked for, free ones for the rest."""
        if self._port is not None and not port_is_free(self._port):
            raise LocalRegistryError(
                f"port {self._port} on {HOST} is already in use: stop what holds it, or choose "
                "another port (omit it to let the runner pick a free one)"
            )
        count = (self._port is None) + chosen.management_interface
        picked = pick_free_ports(count) if count else []
        http = self._port if self._port is not None else picked.pop()
        return http, (picked.pop() if chosen.management_interface else None)

    def _start_fresh(self, chosen: Release, java: JavaRuntime, app: Path) -> RegistryInfo:
        """Launch a new, empty registry from the (locked) state directory; wait until ready."""
        self._clean()
        work = self.state_dir / _WORK
        work.mkdir()
        http_port, management_port = self._ports(chosen)
        properties = runtime_properties(
            chosen, http_port=http_port, management_port=management_port, work_dir=work
        )
        setpriv = shutil.which("setpriv") if self._die_with_parent else None
        cmd = launch_command(
            chosen,
            java=java.path,
            app_dir=app,
            state_dir=self.state_dir,
            properties=properties,
            setpriv=setpriv,
        )
        log_file = self.state_dir / _LOG
        pid = processes.launch(cmd, output=log_file)
        info = RegistryInfo(
            state_dir=str(self.state_dir),
            version=chosen.version,
            java=java.path,
            pid=pid,
            http_port=http_port,
            management_port=management_port,
            log_file=str(log_file),
        )
        try:
            write_state(self.state_file, info)
            self._wait_ready(info)
        except BaseException:
            self._stop_recorded(info)
            raise
        return info

    def _alive(self, info: RegistryInfo) -> bool:
        return processes.is_registry_process(info.pid, self.state_dir)

    def _stop_recorded(self, info: RegistryInfo) -> bool:
        stopped = processes.stop_process(info.pid, self.state_dir, timeout_s=STOP_TIMEOUT_S)
        self.state_file.unlink(missing_ok=True)
        return stopped

    def _wait_ready(self, info: RegistryInfo) -> None:
        """Until the Confluent-compatible API lists subjects (an empty list on a fresh start)."""
        deadline = time.monotonic() + self._start_timeout_s
        log = Path(info.log_file)
        while True:
            if not self._alive(info):
                excerpt = log_excerpt(log)
                raise RegistryStartFailed(
                    f"Apicurio Registry {info.version} exited during startup (Java: "
                    f"{info.java}). From its log {log}:\n{excerpt}",
                    port_conflict=port_conflict(excerpt),
                )
            if answers(info.url):
                return
            if time.monotonic() > deadline:
                raise RegistryStartFailed(
                    f"Apicurio Registry {info.version} did not answer on {info.url} within "
                    f"{self._start_timeout_s:.0f} s. The end of its log {log}:\n{tail(log, 15)}"
                )
            time.sleep(0.1)


def answers(registry_url: str, *, timeout_s: float = 2.0) -> bool:
    """True when the Confluent-compatible API at ``registry_url`` lists its subjects."""
    try:
        with _OPENER.open(f"{registry_url}/subjects", timeout=timeout_s) as response:
            return response.status == 200 and isinstance(json.loads(response.read()), list)
    except (urllib.error.URLError, OSError, ValueError):
        return False
