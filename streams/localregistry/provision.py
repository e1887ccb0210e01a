"""What the registry needs on this host: a Java new enough, and its release from Maven Central.

Each release is fetched once through Maven (``mvn dependency:copy`` of the runnable archive) and
unpacked into ``$XDG_CACHE_HOME/air-exstream/apicurio-registry-<version>/app`` (``~/.cache`` when
unset). The archive is unpacked into a temporary sibling directory that is renamed into place
only once complete, so an interrupted download never leaves a half cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from streams.localkafka.provision import parse_java_major
from streams.localregistry.errors import DownloadFailed, MavenMissing
from streams.localregistry.releases import JavaRuntime, Release

REGISTRY_JAVA_ENV = "AIR_EXSTREAM_REGISTRY_JAVA"
"""A ``java`` executable to run the registry with; when set, no other Java is considered."""
JVM_DIRS = (Path("/usr/lib/jvm"), Path("/Library/Java/JavaVirtualMachines"))
DOWNLOAD_TIMEOUT_S = 900.0
_STALE_STAGING_S = 3600.0


def cache_dir(chosen: Release) -> Path:
    """Where this release is cached (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "air-exstream" / f"apicurio-registry-{chosen.version}"


# ---------------------------------------------------------------------- Java


def candidate_javas(
    env: Mapping[str, str], *, on_path: str | None, installed: Iterable[Path]
) -> list[str]:
    """The ``java`` executables to consider, in order of preference: ``$JAVA_HOME/bin/java``,
    the one on PATH, then the JDKs installed in the usual places. Only the one named by
    ``AIR_EXSTREAM_REGISTRY_JAVA`` when that is set."""
    explicit = env.get(REGISTRY_JAVA_ENV)
    if explicit:
        return [explicit]
    paths: list[str] = []
    if env.get("JAVA_HOME"):
        paths.append(str(Path(env["JAVA_HOME"]) / "bin" / "java"))
    if on_path:
        paths.append(on_path)
    paths.extend(str(p) for p in installed)
    return list(dict.fromkeys(paths))


def installed_javas(dirs: Iterable[Path] = JVM_DIRS) -> list[Path]:
    """``java`` executables of the JDKs under ``dirs`` (Debian's and macOS's JVM directories)."""
    found: list[Path] = []
    for top in dirs:
        if not top.is_dir():
            continue
        for home in sorted(top.iterdir()):
            for relative in ("bin/java", "Contents/Home/bin/java"):
                exe = home / relative
                if exe.is_file() and os.access(exe, os.X_OK):
                    found.append(exe)
    return found


def java_major(java: str) -> int | None:
    """The major version of ``java`` (None when it cannot be run or read)."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(out.stderr + out.stdout)


def find_javas(env: Mapping[str, str] | None = None) -> list[JavaRuntime]:
    """Every usable Java on this host, in order of preference, each once (by real path)."""
    env = os.environ if env is None else env
    paths = candidate_javas(env, on_path=shutil.which("java"), installed=installed_javas())
    seen: set[str] = set()
    found: list[JavaRuntime] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not Path(real).is_file():
            continue
        seen.add(real)
        major = java_major(path)
        if major is not None:
            found.append(JavaRuntime(path, major))
    return found


# ---------------------------------------------------------------------- the release


def cached_app(chosen: Release, base: Path | None = None) -> Path | None:
    """The unpacked release when complete, else None."""
    app = (base or cache_dir(chosen)) / "app"
    return app if (app / chosen.launcher).is_file() else None


def resolve_app(chosen: Release, base: Path | None = None) -> Path:
    """The directory of the unpacked release, fetching it through Maven on first use.

    Safe to call from several processes at once: each works in its own staging directory and
    the first rename wins; the others use the winner's complete copy.
    """
    base = base or cache_dir(chosen)
    found = cached_app(chosen, base)
    if found is not None:
        return found
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenMissing(
            f"Apicurio Registry {chosen.version} is not cached yet and `mvn` is not on PATH to "
            f"fetch it from Maven Central (once, into {base}). Install Maven 3.8+ (e.g. "
            "`apt-get install maven`), or set KAFKA_SCHEMA_REGISTRY_URL to use an existing "
            "registry."
        )
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(base)
    staging = Path(tempfile.mkdtemp(prefix=".app-", dir=base))
    try:
        archive = _download(mvn, chosen, staging)
        unpacked = staging / "app"
        _unpack(archive, unpacked)
        if not (unpacked / chosen.launcher).is_file():
            raise DownloadFailed(
                f"the archive {chosen.artifact} has no {chosen.launcher}: not the layout this "
                "project knows for that release"
            )
        app = base / "app"
        try:
            unpacked.rename(app)
        except OSError:
            if cached_app(chosen, base) is None:  # not a lost race: a real failure
                raise
        return app
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(mvn: str, chosen: Release, staging: Path) -> Path:
    output = staging / "download"
    cmd = [
        mvn,
        "-q",
        "-B",
        "dependency:copy",
        f"-Dartifact={chosen.artifact}",
        f"-DoutputDirectory={output}",
    ]
    try:
        # run where there is no pom.xml: the goal needs no project
        proc = subprocess.run(
            cmd,
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
            timeout=DOWNLOAD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise DownloadFailed(
            f"Maven did not finish fetching Apicurio Registry {chosen.version} within "
            f"{DOWNLOAD_TIMEOUT_S:.0f} s"
        ) from exc
    archive = output / f"apicurio-registry-app-{chosen.version}-all.tar.gz"
    if proc.returncode == 0 and archive.is_file():
        return archive
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:] or ["(no output)"]
    raise DownloadFailed(
        f"fetching Apicurio Registry {chosen.version} ({chosen.artifact}) from Maven Central "
        f"failed (`mvn dependency:copy`, exit {proc.returncode}). Last lines of its output:\n  "
        + "\n  ".join(tail)
    )


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack with tarfile's ``data`` filter: no file or link outside ``dest``, no devices,
    no set-id bits (Python 3.11.4+)."""
    if not hasattr(tarfile, "data_filter"):
        raise DownloadFailed(
            "unpacking the registry needs Python 3.11.4 or newer (tarfile filters)"
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadFailed(f"unpacking {archive.name} failed: {exc}") from exc
    finally:
        archive.unlink(missing_ok=True)


def _remove_stale_staging(base: Path) -> None:
    """Staging directories left by a download that was killed (its ``finally`` never ran)."""
    cutoff = time.time() - _STALE_STAGING_S
    for leftover in base.glob(".app-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
