"""The start-up shared by the service commands (webhook, ondemand): logging, Kafka, topology."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import click
import pytest
from click.testing import CliRunner

import topology.apply
from streams.service_cli import LOG_FORMAT, kafka_options, start_service
from topology import names
from topology.model import Topology, default_profile

pytestmark = pytest.mark.unit


@pytest.fixture
def logging_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``logging.basicConfig`` was called with (not called for real: it is global)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, str], Topology]]:
    """The topologies ``apply_topology`` was asked to create (no cluster is contacted)."""
    calls: list[tuple[dict[str, str], Topology]] = []

    def record(admin_config: Mapping[str, str], topo: Topology) -> None:
        calls.append((dict(admin_config), topo))

    monkeypatch.setattr(topology.apply, "apply_topology", record)
    return calls


@pytest.mark.parametrize(
    ("loglevel", "profile", "prefix", "apply"),
    [("debug", "local", "t1-", False), ("info", None, "", True)],
)
def test_logging_kafka_and_topology_then_the_topics_when_asked(
    logging_calls: list[dict[str, Any]],
    applied: list[tuple[dict[str, str], Topology]],
    loglevel: str,
    profile: str | None,
    prefix: str,
    apply: bool,
) -> None:
    kafka, topo = start_service(
        loglevel=loglevel,
        bootstrap_servers="broker-1:9092",
        profile=profile,
        prefix=prefix,
        apply_topology=apply,
    )
    assert logging_calls == [{"level": loglevel.upper(), "format": LOG_FORMAT}]
    assert kafka.bootstrap_servers == "broker-1:9092"
    assert topo.profile == (profile or default_profile())
    assert topo.name(names.DELIVERY_EVENTS) == f"{prefix}{names.DELIVERY_EVENTS}"
    assert applied == ([(kafka.confluent_config(), topo)] if apply else [])


def test_kafka_options_give_the_parameters_start_service_takes() -> None:
    seen: list[dict[str, Any]] = []

    @click.command()
    @kafka_options
    def command(**params: Any) -> None:
        seen.append(params)

    runner = CliRunner()
    given = ["--bootstrap-servers", "b:9092", "--profile", "local", "--prefix", "p-"]
    assert runner.invoke(command, []).exit_code == 0
    assert runner.invoke(command, [*given, "--no-apply-topology"]).exit_code == 0
    defaults = {"bootstrap_servers": None, "profile": None, "prefix": "", "apply_topology": True}
    chosen = {"bootstrap_servers": "b:9092", "profile": "local", "prefix": "p-"}
    assert seen == [defaults, {**chosen, "apply_topology": False}]
    help_text = runner.invoke(command, ["--help"]).output
    order = ["--bootstrap-servers", "--profile", "--prefix", "--apply-topology"]
    assert [help_text.index(name) for name in order] == sorted(
        help_text.index(name) for name in order
    )


def test_settings_from_the_environment_options_override_and_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streams.ondemand.settings import OnDemandSettings
    from streams.service_cli import settings_from
    from streams.webhook.settings import WebhookSettings

    monkeypatch.setenv("AIR_EXSTREAM_WEBHOOK_TOLERANCE_S", "60")
    monkeypatch.setenv("AIR_EXSTREAM_WEBHOOK_PORT", "9000")
    hook = settings_from(WebhookSettings, port=9100, tolerance_s=None)
    assert (hook.tolerance_s, hook.port, hook.auth) == (60, 9100, "hmac")
    monkeypatch.setenv("AIR_EXSTREAM_ONDEMAND_BUDGET_S", "2.5")
    assert settings_from(OnDemandSettings).budget_s == 2.5
    monkeypatch.setenv("AIR_EXSTREAM_WEBHOOK_AUTH", "basic")
    with pytest.raises(click.UsageError, match="AIR_EXSTREAM_WEBHOOK_AUTH"):
        settings_from(WebhookSettings)
