"""The sink's settings: the environment, then the options, in one pydantic-settings model."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from streams.sink.runner import SinkSettings

pytestmark = pytest.mark.unit

TOPICS: dict[str, Any] = {"commands_topic": "c", "submissions_topic": "s", "batches_topic": "b"}


def test_the_environment_sets_the_sink_and_keywords_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SinkSettings(**TOPICS).batch_size == 200
    monkeypatch.setenv("AIR_EXSTREAM_SINK_BATCH_SIZE", "50")
    monkeypatch.setenv("AIR_EXSTREAM_SINK_GROUP_ID", "sink-b")
    settings = SinkSettings(**TOPICS)
    assert (settings.batch_size, settings.group_id) == (50, "sink-b")
    assert SinkSettings(**TOPICS, batch_size=10).batch_size == 10


def test_settings_are_frozen() -> None:
    settings = SinkSettings(**TOPICS)
    with pytest.raises(ValidationError, match="frozen"):
        settings.batch_size = 1  # type: ignore[misc]


def test_the_cli_overrides_only_the_options_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.sink import cli

    seen: list[SinkSettings] = []

    async def fake_run(_kafka: object, _codecs: object, settings: SinkSettings, *_: object) -> None:
        seen.append(settings)

    monkeypatch.setattr(cli, "_run", fake_run)
    monkeypatch.setattr(cli, "exstream_settings", lambda url=None: None)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("AIR_EXSTREAM_SINK_BATCH_SIZE", "50")
    monkeypatch.setenv("AIR_EXSTREAM_SINK_MAX_LIMIT", "8")
    result = CliRunner().invoke(cli.sink, ["--max-concurrency", "16"])
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert (settings.batch_size, settings.max_limit, settings.initial_limit) == (50, 16, 4)
