"""What the broker needs on this host: Java 17+, and its jars from Maven Central (cached).

The jars are resolved once per Kafka version into ``$XDG_CACHE_HOME/air-exstream/kafka-<ver>/libs``
(``~/.cache`` when unset). Maven writes into a temporary sibling directory that is renamed into
place only after it succeeded, so an interrupted or failed download never leaves a half cache: the
``libs`` directory either holds the complete classpath or does not exist.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from streams.localkafka.errors import (
    DownloadFailed,
    JavaMissing,
    JavaTooOld,
    MavenMissing,
)

KAFKA_VERSION = "4.1.1"
"""Must match the versions pinned in ``pom.xml`` (a unit test checks)."""
POM = Path(__file__).with_name("pom.xml")
MIN_JAVA = 17
DOWNLOAD_TIMEOUT_S = 900.0
_STALE_STAGING_S = 3600.0


def cache_dir() -> Path:
    """Where this Kafka version's jars are cached (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "air-exstream" / f"kafka-{KAFKA_VERSION}"


def parse_java_major(version_output: str) -> int | None:
    """The major version from ``java -version`` output (``1.8.0_292`` is 8), None if absent."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def check_java() -> str:
    """The ``java`` executable to use; raises when it is missing or older than 17."""
    java = shutil.which("java")
    if java is None:
        raise JavaMissing(
            f"Java {MIN_JAVA}+ is needed to run the local Kafka broker and `java` is not on "
            f"PATH. Install a JDK (e.g. `apt-get install openjdk-{MIN_JAVA}-jre-headless`), or "
            "set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaMissing(f"could not run `{java} -version`: {exc}") from exc
    text = out.stderr + out.stdout
    major = parse_java_major(text)
    if major is None:
        raise JavaMissing(f"could not read the Java version of {java} from: {text.strip()[:300]}")
    if major < MIN_JAVA:
        raise JavaTooOld(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major}. Put a "
            f"newer JDK first on PATH, or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    return java


def cached_libs(base: Path | None = None) -> Path | None:
    """The cached jar directory when complete, else None."""
    libs = (base or cache_dir()) / "libs"
    return libs if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file() else None


def resolve_jars(base: Path | None = None) -> Path:
    """The directory of broker jars, downloading them through Maven on first use.

    Safe to call from several processes at once: each downloads into its own staging directory
    and the first rename wins; the others use the winner's complete copy.
    """
    base = base or cache_dir()
    found = cached_libs(base)
    if found is not None:
        return found
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenMissing(
            "the Kafka broker's jars are not cached yet and `mvn` is not on PATH to download "
            f"them from Maven Central (once, into {base}). Install Maven 3.8+ (e.g. "
            "`apt-get install maven`), or set KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    base.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(base)
    staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=base))
    try:
        _maven_copy_dependencies(mvn, staging)
        libs = base / "libs"
        try:
            staging.rename(libs)
        except OSError:
            if cached_libs(base) is None:  # not a lost race: a real failure
                raise
        return libs
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _maven_copy_dependencies(mvn: str, output: Path) -> None:
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output}",
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=DOWNLOAD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise DownloadFailed(
            f"Maven did not finish downloading the Kafka jars within {DOWNLOAD_TIMEOUT_S:.0f} s"
        ) from exc
    if proc.returncode == 0 and (output / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        return
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:] or ["(no output)"]
    raise DownloadFailed(
        f"downloading the Kafka {KAFKA_VERSION} jars from Maven Central failed "
        f"(`mvn dependency:copy-dependencies`, exit {proc.returncode}). Last lines of its "
        "output:\n  " + "\n  ".join(tail)
    )


def _remove_stale_staging(base: Path) -> None:
    """Staging directories left by a download that was killed (its ``finally`` never ran)."""
    cutoff = time.time() - _STALE_STAGING_S
    for leftover in base.glob(".libs-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
