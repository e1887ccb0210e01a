"""Exstream settings from the environment, paths for both OTDS shapes, error parsing (pure)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.config import ConfigError
from streams.exstream import paths
from streams.exstream.errors import (
    ExstreamAuthError,
    ExstreamNotFound,
    ExstreamRejected,
    ExstreamThrottled,
    ExstreamTimeout,
    ExstreamUnavailable,
    error_for,
    parse_error_body,
)
from streams.exstream.settings import exstream_settings

pytestmark = pytest.mark.unit


def test_settings_come_from_the_environment_and_the_secret_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("EXSTREAM_URL", "https://exstream.example/")
    monkeypatch.setenv("EXSTREAM_OTDS_URL", "https://otds.example")
    monkeypatch.setenv("EXSTREAM_OTDS_STYLE", "cloud")
    monkeypatch.setenv("EXSTREAM_TENANT", "t-1")
    monkeypatch.setenv("EXSTREAM_DOMAIN", "d-1")
    monkeypatch.setenv("EXSTREAM_CLIENT_SECRET_FILE", str(secret))
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET", raising=False)
    s = exstream_settings()
    assert s.secret == "s3cret"
    assert s.orchestration_base == s.design_base == "https://exstream.example"
    assert s.otds_base == "https://otds.example"
    assert "s3cret" not in repr(s)
    assert "client_secret" not in s.described()
    assert exstream_settings(url="http://127.0.0.1:1").orchestration_base == "http://127.0.0.1:1"


def test_a_missing_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("EXSTREAM_CLIENT_SECRET_FILE", raising=False)
    with pytest.raises(ConfigError, match="EXSTREAM_CLIENT_SECRET or EXSTREAM_CLIENT_SECRET_FILE"):
        exstream_settings()


def test_paths() -> None:
    assert paths.otds_token("self-hosted", "t") == "/otdsws/otdstenant/t/oauth2/token"
    assert paths.otds_token("cloud", "t") == "/otdstenant/t/oauth2/token"
    assert paths.ondemand_generate("d") == "/orchestration/api/v1/inputs/ondemand/d/generate"
    assert paths.batch_input("d", "s v") == "/orchestration/api/v1/inputs/batch/d/s%20v"
    assert paths.runtime_filter(externalId="x", statuses=None, mode="BATCH") == (
        "externalId:x;mode:BATCH"
    )


@pytest.mark.parametrize(
    ("status", "kind", "retriable"),
    [
        (429, ExstreamThrottled, True),
        (500, ExstreamUnavailable, True),
        (503, ExstreamUnavailable, True),
        (504, ExstreamTimeout, True),
        (401, ExstreamAuthError, False),
        (404, ExstreamNotFound, False),
        (400, ExstreamRejected, False),
        (409, ExstreamRejected, False),
        (413, ExstreamRejected, False),
    ],
)
def test_every_status_is_a_typed_error(status: int, kind: type, retriable: bool) -> None:
    error = error_for(status, b"", {}, what="x")
    assert type(error) is kind
    assert error.retriable is retriable
    assert error.status == status


def test_both_public_error_shapes_are_parsed() -> None:
    spring = orjson.dumps(
        {
            "timestamp": 1,
            "status": 400,
            "error": "Bad Request",
            "message": "m",
            "details": "d",
            "errorCode": 7,
            "path": "/p",
        }
    )
    assert parse_error_body(spring) == ("m; d", "7")
    envelope = orjson.dumps(
        {"status": "error", "data": [{"errorMessage": "e", "statusCode": "500"}]}
    )
    assert parse_error_body(envelope) == ("e", "500")
    assert parse_error_body(b"<html>") == ("", None)
    assert parse_error_body(b"[]") == ("", None)
