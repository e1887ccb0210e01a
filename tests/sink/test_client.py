"""How each typed Exstream error is read by the sink (it asks ``retriable``, never a message)."""

from __future__ import annotations

import orjson
import pytest

from streams.exstream.errors import ExstreamTimeout, ExstreamUnavailable, error_for
from streams.sink.client import Rejected, Retry, classify

pytestmark = pytest.mark.unit


def spring(status: int, message: str) -> bytes:
    return orjson.dumps({"status": status, "message": message, "error": "x", "path": "/p"})


def test_classification() -> None:
    throttled = classify(error_for(429, b"", {"Retry-After": "7"}, what="t"))
    assert throttled == Retry("HTTP 429", 7.0, pushback=True, throttled=True)
    assert classify(error_for(503, b"", {}, what="t")) == Retry("HTTP 503", None, pushback=True)
    timeout = classify(error_for(504, b"", {}, what="t"))
    assert isinstance(timeout, Retry)
    assert timeout.pushback
    assert timeout.ambiguous
    assert classify(error_for(500, b"", {"Retry-After": "soon"}, what="t")) == Retry("HTTP 500")
    assert classify(error_for(422, spring(422, "unknown template"), {}, what="t")) == Rejected(
        422, "unknown template"
    )
    assert classify(error_for(400, b"", {}, what="t")) == Rejected(
        400, "Exstream answered 400 to t"
    )
    assert isinstance(classify(error_for(401, b"", {}, what="t")), Rejected)  # after a refresh


def test_connection_errors() -> None:
    lost = classify(ExstreamTimeout("connection lost"))
    assert isinstance(lost, Retry)
    assert lost.ambiguous
    refused = classify(ExstreamUnavailable("cannot reach"))
    assert isinstance(refused, Retry)
    assert not refused.ambiguous


def test_orchestration_error_envelope_is_parsed() -> None:
    body = orjson.dumps(
        {"status": "error", "data": [{"errorMessage": "bad driver", "statusCode": "400"}]}
    )
    error = error_for(400, body, {}, what="t")
    assert error.detail == "bad driver"
    assert error.error_code == "400"
    assert not error.retriable
