"""Provisioning with fake ``java``/``mvn`` executables: no download, no registry."""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from streams.localregistry.errors import DownloadFailed, MavenMissing
from streams.localregistry.provision import (
    REGISTRY_JAVA_ENV,
    cache_dir,
    cached_app,
    candidate_javas,
    find_javas,
    installed_javas,
    resolve_app,
)
from streams.localregistry.releases import RELEASES, JavaRuntime

pytestmark = pytest.mark.component

NEWEST = RELEASES[0]


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def fake_java(path: Path, version: str) -> Path:
    return executable(path, f"#!/bin/sh\necho 'openjdk version \"{version}\" 2026-01-01' >&2\n")


@pytest.mark.unit
def test_the_explicit_java_is_the_only_candidate() -> None:
    env = {REGISTRY_JAVA_ENV: "/opt/java", "JAVA_HOME": "/jdk"}
    assert candidate_javas(env, on_path="/usr/bin/java", installed=[Path("/x")]) == ["/opt/java"]


@pytest.mark.unit
def test_java_home_then_path_then_installed_jdks_each_once() -> None:
    got = candidate_javas(
        {"JAVA_HOME": "/jdk"},
        on_path="/usr/bin/java",
        installed=[Path("/usr/lib/jvm/a/bin/java"), Path("/usr/bin/java")],
    )
    assert got == ["/jdk/bin/java", "/usr/bin/java", "/usr/lib/jvm/a/bin/java"]
    assert candidate_javas({}, on_path=None, installed=[]) == []


def test_installed_jdks_are_found_in_linux_and_macos_layouts(tmp_path: Path) -> None:
    linux = fake_java(tmp_path / "jvm" / "jdk-21" / "bin" / "java", "21.0.1")
    mac = fake_java(tmp_path / "mac" / "jdk-25.jdk" / "Contents" / "Home" / "bin" / "java", "25")
    (tmp_path / "jvm" / "docs-only").mkdir()
    not_executable = tmp_path / "jvm" / "broken" / "bin" / "java"
    not_executable.parent.mkdir(parents=True)
    not_executable.write_text("")
    dirs = [tmp_path / "jvm", tmp_path / "mac", tmp_path / "absent"]
    assert installed_javas(dirs) == [linux, mac]


def test_find_javas_reads_versions_and_skips_duplicates_and_broken_ones(tmp_path: Path) -> None:
    j17 = fake_java(tmp_path / "jdk17" / "bin" / "java", "17.0.15")
    link = tmp_path / "link-to-17"
    link.symlink_to(j17)
    junk = executable(tmp_path / "junk" / "bin" / "java", "#!/bin/sh\necho nothing\n")
    env = {REGISTRY_JAVA_ENV: str(j17)}
    assert find_javas(env) == [JavaRuntime(str(j17), 17)]
    env = {REGISTRY_JAVA_ENV: str(junk)}
    assert find_javas(env) == []
    env = {REGISTRY_JAVA_ENV: str(tmp_path / "missing")}
    assert find_javas(env) == []


def test_find_javas_dedupes_symlinks_by_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j21 = fake_java(tmp_path / "jdk21" / "bin" / "java", "21.0.2")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(j21)
    monkeypatch.setenv("PATH", str(bin_dir))
    got = find_javas({"JAVA_HOME": str(tmp_path / "jdk21"), "PATH": str(bin_dir)})
    assert [j.major for j in got if os.path.realpath(j.path) == str(j21)] == [21]


# ---------------------------------------------------------------------- the release


def archive_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``mvn`` on an otherwise empty PATH: copies ``$FAKE_ARCHIVE`` where ``dependency:copy``
    would put the release archive, or fails as ``$FAKE_MVN_FAIL`` says; logs its arguments."""
    bin_dir = tmp_path / "bin"
    script = f"""#!{sys.executable}
import os, shutil, sys
from pathlib import Path
Path(os.environ["FAKE_MVN_LOG"]).write_text("\\n".join(sys.argv[1:]))
if os.environ.get("FAKE_MVN_FAIL"):
    print("[ERROR] Could not resolve artifact: " + os.environ["FAKE_MVN_FAIL"])
    sys.exit(1)
out = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("-DoutputDirectory="))
art = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("-Dartifact="))
version = art.split(":")[2]
Path(out).mkdir(parents=True, exist_ok=True)
shutil.copy(os.environ["FAKE_ARCHIVE"], Path(out) / f"apicurio-registry-app-{{version}}-all.tar.gz")
"""
    executable(bin_dir / "mvn", script)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_MVN_LOG", str(tmp_path / "mvn.log"))
    return tmp_path


def test_the_release_is_fetched_once_and_unpacked_into_the_cache(
    fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = fake_mvn / "release.tar.gz"
    archive.write_bytes(archive_bytes({NEWEST.launcher: b"jar", "lib/main/a.jar": b"a"}))
    monkeypatch.setenv("FAKE_ARCHIVE", str(archive))
    base = fake_mvn / "cache"
    app = resolve_app(NEWEST, base)
    assert app == base / "app"
    assert (app / NEWEST.launcher).read_bytes() == b"jar"
    assert (app / "lib" / "main" / "a.jar").read_bytes() == b"a"
    args = (fake_mvn / "mvn.log").read_text().splitlines()
    assert "dependency:copy" in args
    assert f"-Dartifact={NEWEST.artifact}" in args
    assert [p.name for p in base.iterdir()] == ["app"], "no staging or archive left behind"
    (fake_mvn / "mvn.log").unlink()
    assert resolve_app(NEWEST, base) == app
    assert not (fake_mvn / "mvn.log").exists(), "a cached release is not fetched again"


def test_an_archive_without_the_launcher_leaves_no_cache(
    fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = fake_mvn / "release.tar.gz"
    archive.write_bytes(archive_bytes({"something-else.jar": b"x"}))
    monkeypatch.setenv("FAKE_ARCHIVE", str(archive))
    base = fake_mvn / "cache"
    with pytest.raises(DownloadFailed, match=f"has no {NEWEST.launcher}"):
        resolve_app(NEWEST, base)
    assert cached_app(NEWEST, base) is None
    assert list(base.iterdir()) == []


def test_an_archive_reaching_outside_its_directory_is_refused(
    fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = fake_mvn / "release.tar.gz"
    archive.write_bytes(archive_bytes({NEWEST.launcher: b"jar", "../../escaped": b"x"}))
    monkeypatch.setenv("FAKE_ARCHIVE", str(archive))
    base = fake_mvn / "cache"
    with pytest.raises(DownloadFailed, match="unpacking"):
        resolve_app(NEWEST, base)
    assert not (fake_mvn / "escaped").exists()
    assert cached_app(NEWEST, base) is None


def test_a_maven_failure_ends_with_its_output(
    fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_FAIL", NEWEST.artifact)
    with pytest.raises(DownloadFailed) as caught:
        resolve_app(NEWEST, fake_mvn / "cache")
    assert caught.value.retriable
    assert f"Could not resolve artifact: {NEWEST.artifact}" in str(caught.value)
    assert "exit 1" in str(caught.value)


def test_no_maven_says_how_to_get_it_or_avoid_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MavenMissing, match="KAFKA_SCHEMA_REGISTRY_URL"):
        resolve_app(NEWEST, tmp_path / "cache")


def test_the_cache_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/me")
    assert cache_dir(NEWEST) == Path(
        f"/var/cache/me/air-exstream/apicurio-registry-{NEWEST.version}"
    )
