"""Release choice, settings and command line of the local registry: pure logic."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.localregistry.errors import LocalRegistryError, NoSuitableJava
from streams.localregistry.releases import (
    CCOMPAT_PATH,
    HOST,
    MARKER_PROPERTY,
    RELEASES,
    JavaRuntime,
    Release,
    choose,
    launch_command,
    port_conflict,
    release,
    runtime_properties,
    url,
)

pytestmark = pytest.mark.unit

NEWEST, JAVA17_RELEASE = RELEASES
J17 = JavaRuntime("/usr/bin/java", 17)
J21 = JavaRuntime("/opt/jdk-21/bin/java", 21)
J25 = JavaRuntime("/usr/lib/jvm/temurin-25/bin/java", 25)


def test_releases_are_listed_newest_first_and_the_oldest_runs_on_java_17() -> None:
    versions = [tuple(int(p) for p in r.version.split(".")) for r in RELEASES]
    assert versions == sorted(versions, reverse=True)
    assert min(r.min_java for r in RELEASES) == 17, "the broker's Java must be enough"


def test_the_newest_release_is_taken_when_some_java_can_run_it() -> None:
    assert choose([J17, J25]) == (NEWEST, J25)
    assert choose([J21, J25]) == (NEWEST, J21), "the first Java new enough, in preference order"


def test_only_java_17_gets_the_newest_release_that_runs_on_it() -> None:
    assert choose([J17]) == (JAVA17_RELEASE, J17)


def test_a_release_asked_for_needs_a_java_new_enough_for_it() -> None:
    assert choose([J17, J25], version=JAVA17_RELEASE.version) == (JAVA17_RELEASE, J17)
    with pytest.raises(NoSuitableJava, match=rf"{NEWEST.version} needs Java {NEWEST.min_java}"):
        choose([J17], version=NEWEST.version)


def test_no_java_new_enough_says_what_was_found_and_what_to_do() -> None:
    with pytest.raises(NoSuitableJava) as caught:
        choose([JavaRuntime("/usr/bin/java", 11)])
    message = str(caught.value)
    assert "/usr/bin/java (Java 11)" in message
    assert "openjdk-17" in message
    assert "KAFKA_SCHEMA_REGISTRY_URL" in message
    with pytest.raises(NoSuitableJava, match="found: none"):
        choose([])


def test_an_unknown_release_is_refused() -> None:
    with pytest.raises(LocalRegistryError, match=r"2\.6\.13\.Final is not one the project runs"):
        release("2.6.13.Final")


def test_the_url_is_the_confluent_compatible_api_on_loopback() -> None:
    assert url(18081) == f"http://127.0.0.1:18081{CCOMPAT_PATH}"
    assert CCOMPAT_PATH == "/apis/ccompat/v7"


@pytest.mark.parametrize("picked", RELEASES, ids=lambda r: r.version)
def test_every_listener_is_bound_to_loopback_and_nothing_goes_to_tmp(picked: Release) -> None:
    work = Path("/state/work")
    props = runtime_properties(picked, http_port=18081, management_port=18082, work_dir=work)
    hosts = {key: value for key, value in props.items() if key.endswith(".host")}
    assert hosts, "Quarkus binds 0.0.0.0 unless told"
    assert set(hosts.values()) == {HOST}
    assert props["quarkus.http.port"] == "18081"
    if picked.management_interface:
        assert props["quarkus.management.host"] == HOST
        assert props["quarkus.management.port"] == "18082"
    else:
        assert not any(key.startswith("quarkus.management") for key in props)
    # the releases default their scratch and snapshot files to /tmp
    assert not any(value.startswith("/tmp") for value in props.values())
    assert props["java.io.tmpdir"] == str(work)


def test_a_release_with_a_management_interface_needs_its_port() -> None:
    with pytest.raises(ValueError, match="management port"):
        runtime_properties(NEWEST, http_port=1, management_port=None, work_dir=Path("/w"))


def test_the_command_line_carries_the_marker_and_starts_the_release_launcher() -> None:
    state = Path("/state")
    props = {"quarkus.http.port": "18081"}
    cmd = launch_command(
        NEWEST, java="/jdk/bin/java", app_dir=Path("/cache/app"), state_dir=state, properties=props
    )
    assert cmd[0] == "/jdk/bin/java"
    assert f"-D{MARKER_PROPERTY}=/state" in cmd
    assert "-Dquarkus.http.port=18081" in cmd
    assert cmd[-2:] == ["-jar", f"/cache/app/{NEWEST.launcher}"]
    # system properties must come before -jar, or they become the application's arguments
    assert all(arg.startswith("-") for arg in cmd[1 : cmd.index("-jar")])


def test_setpriv_wraps_the_command_so_the_registry_dies_with_its_parent() -> None:
    cmd = launch_command(
        NEWEST,
        java="java",
        app_dir=Path("/a"),
        state_dir=Path("/s"),
        properties={},
        setpriv="/usr/bin/setpriv",
    )
    assert cmd[:4] == ["/usr/bin/setpriv", "--pdeathsig", "TERM", "java"]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("ERROR Port 18081 seems to be in use by another process. Quarkus may already run", True),
        ("Caused by: java.net.BindException: Address already in use", True),
        ("ERROR Failed to start application: java.lang.UnsupportedClassVersionError", False),
        ("", False),
    ],
)
def test_port_conflicts_are_recognised_in_the_log(log: str, expected: bool) -> None:
    assert port_conflict(log) is expected


def test_the_archive_is_the_runnable_application_on_maven_central() -> None:
    assert NEWEST.artifact == f"io.apicurio:apicurio-registry-app:{NEWEST.version}:tar.gz:all"
