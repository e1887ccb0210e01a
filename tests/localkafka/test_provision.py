"""Provisioning with fake ``java``/``mvn`` executables on PATH: no download, no broker."""

from __future__ import annotations

import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from streams.localkafka.errors import DownloadFailed, JavaMissing, JavaTooOld, MavenMissing
from streams.localkafka.provision import (
    KAFKA_VERSION,
    POM,
    cache_dir,
    check_java,
    parse_java_major,
    resolve_jars,
)

pytestmark = pytest.mark.component


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An otherwise empty PATH that tests fill with fake executables."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def install(bin_dir: Path, name: str, script: str) -> None:
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ("no version here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_pom_pins_the_runner_version_and_the_slf4j1_binding() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()  # noqa: S314 - the project's own file
    deps = {
        d.findtext("m:artifactId", namespaces=ns): d.findtext("m:version", namespaces=ns)
        for d in root.iterfind("m:dependencies/m:dependency", ns)
    }
    assert deps == {"kafka_2.13": KAFKA_VERSION, "log4j-slf4j-impl": "2.24.3"}


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "air-exstream" / f"kafka-{KAFKA_VERSION}"


def test_missing_java_says_what_to_do(fake_bin: Path) -> None:
    with pytest.raises(JavaMissing, match=r"not on PATH.*KAFKA_BOOTSTRAP_SERVERS"):
        check_java()


def test_old_java_is_refused(fake_bin: Path) -> None:
    install(fake_bin, "java", "echo 'java version \"1.8.0_292\"' >&2\n")
    with pytest.raises(JavaTooOld, match=r"needs Java 17\+.*is Java 8"):
        check_java()


def test_java_17_is_accepted(fake_bin: Path) -> None:
    install(fake_bin, "java", "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    assert check_java() == str(fake_bin / "java")


def test_missing_maven_with_an_empty_cache(fake_bin: Path, tmp_path: Path) -> None:
    with pytest.raises(MavenMissing, match="`mvn` is not on PATH"):
        resolve_jars(tmp_path / "cache")


def test_failed_download_shows_mavens_output_and_leaves_no_half_cache(
    fake_bin: Path, tmp_path: Path
) -> None:
    install(
        fake_bin,
        "mvn",
        'for a; do case "$a" in -DoutputDirectory=*) d="${a#-DoutputDirectory=}";; esac; done\n'
        ': > "$d/half-written.jar"\n'  # shell builtins only: PATH holds just the fakes
        "echo '[ERROR] Failed to execute goal: Could not transfer artifact: Connection refused'\n"
        "exit 1\n",
    )
    base = tmp_path / "cache"
    with pytest.raises(DownloadFailed, match="Connection refused") as caught:
        resolve_jars(base)
    assert caught.value.retriable
    assert list(base.iterdir()) == []  # neither libs/ nor a staging directory


def test_download_is_renamed_into_place_once_and_then_reused(
    fake_bin: Path, tmp_path: Path
) -> None:
    install(
        fake_bin,
        "mvn",
        'for a; do case "$a" in -DoutputDirectory=*) d="${a#-DoutputDirectory=}";; esac; done\n'
        f': > "$d/kafka_2.13-{KAFKA_VERSION}.jar"; : > "$d/scala-library.jar"\n',
    )
    base = tmp_path / "cache"
    libs = resolve_jars(base)
    assert libs == base / "libs"
    assert sorted(p.name for p in libs.iterdir()) == [
        f"kafka_2.13-{KAFKA_VERSION}.jar",
        "scala-library.jar",
    ]
    assert [p.name for p in base.iterdir()] == ["libs"]
    (fake_bin / "mvn").unlink()  # the cache alone must do now
    assert resolve_jars(base) == libs
