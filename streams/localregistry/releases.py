"""Which Apicurio Registry release runs, on which Java, with which command line (pure logic).

Apicurio Registry publishes its server on Maven Central as a ready-to-run Quarkus application
(``io.apicurio:apicurio-registry-app:<version>:tar.gz:all``). Release 3.3 needs Java 21; the
newest release that still runs on Java 17 is 3.0.9. The runner takes the newest release that a
Java found on this host can run, so a host with only Java 17 (what the local broker needs) still
gets a registry. Both serve the Confluent-compatible API under :data:`CCOMPAT_PATH`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.localregistry.errors import LocalRegistryError, NoSuitableJava

HOST = "127.0.0.1"
CCOMPAT_PATH = "/apis/ccompat/v7"
"""Apicurio's Confluent Schema Registry API (v7); the URL clients use ends with it."""
MARKER_PROPERTY = "air-exstream.registry.state"
"""A system property naming the state directory: how a pid is recognised as this runner's."""

JVM_FLAGS = (
    "-Xms64m",
    "-Xmx384m",
    # a registry answers a few requests per client and caches: the C1 compiler alone and a serial
    # GC start it in ~2.6 s instead of ~3.9 s and leave the shared cores to the broker and tests
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """One Apicurio Registry release as published on Maven Central."""

    version: str
    min_java: int
    launcher: str
    """The jar ``java -jar`` starts, relative to the unpacked archive."""
    management_interface: bool
    """Serves health and metrics on a second port (3.1+), which must be bound to loopback too."""

    @property
    def artifact(self) -> str:
        """Maven coordinates of the runnable archive (the Quarkus application with its libs)."""
        return f"io.apicurio:apicurio-registry-app:{self.version}:tar.gz:all"


RELEASES: tuple[Release, ...] = (
    Release(version="3.3.3", min_java=21, launcher="quarkus-run.jar", management_interface=True),
    Release(
        version="3.0.9",
        min_java=17,
        launcher="apicurio-registry-app-3.0.9-runner.jar",
        management_interface=False,
    ),
)
"""Newest first."""


@dataclass(frozen=True, slots=True)
class JavaRuntime:
    """A ``java`` executable and its major version."""

    path: str
    major: int


def release(version: str) -> Release:
    """The release of ``version``; a clear error for one the project does not run."""
    for candidate in RELEASES:
        if candidate.version == version:
            return candidate
    known = ", ".join(r.version for r in RELEASES)
    raise LocalRegistryError(f"Apicurio Registry {version} is not one the project runs ({known})")


def choose(
    javas: Sequence[JavaRuntime], *, version: str | None = None
) -> tuple[Release, JavaRuntime]:
    """The newest release some Java in ``javas`` can run (or ``version``), and that Java.

    ``javas`` is in order of preference; the first one new enough is taken.
    """
    candidates = [release(version)] if version is not None else list(RELEASES)
    for wanted in candidates:
        for java in javas:
            if java.major >= wanted.min_java:
                return wanted, java
    found = ", ".join(f"{j.path} (Java {j.major})" for j in javas) or "none"
    need = ", ".join(f"{r.version} needs Java {r.min_java}+" for r in candidates)
    oldest = min(r.min_java for r in candidates)
    raise NoSuitableJava(
        f"no Java on this host can run the local schema registry (Apicurio Registry {need}). "
        f"Java runtimes found: {found}. Install a JDK (e.g. `apt-get install "
        f"openjdk-{oldest}-jre-headless`), point AIR_EXSTREAM_REGISTRY_JAVA or JAVA_HOME at one, "
        "or set KAFKA_SCHEMA_REGISTRY_URL to use an existing registry."
    )


def url(port: int) -> str:
    """What ``KAFKA_SCHEMA_REGISTRY_URL`` is for a registry listening on ``port``."""
    return f"http://{HOST}:{port}{CCOMPAT_PATH}"


def runtime_properties(
    chosen: Release, *, http_port: int, management_port: int | None, work_dir: Path
) -> dict[str, str]:
    """The Quarkus/Apicurio settings the runner overrides (as ``-D`` system properties).

    Every listener on loopback (Quarkus binds 0.0.0.0 by default), storage in memory (H2, the
    release's default), scratch files in the state directory instead of ``/tmp``, no access log
    and a small connection pool.
    """
    props = {
        "quarkus.http.host": HOST,
        "quarkus.http.port": str(http_port),
        "quarkus.http.access-log.enabled": "false",
        "apicurio.storage.snapshot.location": str(work_dir),
        "apicurio.import.work-dir": str(work_dir),
        "apicurio.datasource.jdbc.initial-size": "2",
        "apicurio.datasource.jdbc.min-size": "2",
        "java.io.tmpdir": str(work_dir),
    }
    if chosen.management_interface:
        if management_port is None:
            raise ValueError(f"Apicurio Registry {chosen.version} needs a management port")
        props["quarkus.management.host"] = HOST
        props["quarkus.management.port"] = str(management_port)
    return props


def launch_command(
    chosen: Release,
    *,
    java: str,
    app_dir: Path,
    state_dir: Path,
    properties: dict[str, str],
    setpriv: str | None = None,
) -> list[str]:
    """The registry's command line. ``setpriv``: util-linux ``setpriv`` to end the registry
    (SIGTERM) when the thread that launched it ends; it execs java in place (same pid)."""
    cmd = [
        java,
        *JVM_FLAGS,
        f"-D{MARKER_PROPERTY}={state_dir}",
        *(f"-D{key}={value}" for key, value in properties.items()),
        "-jar",
        str(app_dir / chosen.launcher),
    ]
    return [setpriv, "--pdeathsig", "TERM", *cmd] if setpriv else cmd


def port_conflict(log_text: str) -> bool:
    """True when a registry log says its port was taken (Quarkus and Vert.x wordings)."""
    return "Address already in use" in log_text or "seems to be in use by another process" in (
        log_text
    )
