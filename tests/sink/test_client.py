"""How each Exstream answer is classified."""

from __future__ import annotations

import pytest

from streams.sink.client import Accepted, Rejected, Retry, classify

pytestmark = pytest.mark.unit


def test_classification() -> None:
    assert classify(202, {"jobId": "job-1"}, {}) == Accepted("job-1", {})
    dup = classify(409, {"jobs": ["job-0", "job-1"], "detail": "x"}, {})
    assert isinstance(dup, Accepted)
    assert dup.duplicate_jobs == ("job-0", "job-1")
    assert classify(429, {}, {"Retry-After": "7"}) == Retry(
        "HTTP 429", 7.0, pushback=True, throttled=True
    )
    assert classify(503, None, {}) == Retry("HTTP 503", None, pushback=True)
    assert classify(504, None, {}).pushback is True  # type: ignore[union-attr]
    assert classify(500, None, {"Retry-After": "soon"}) == Retry("HTTP 500", None)
    assert isinstance(classify(401, {"detail": "expired"}, {}), Retry)
    assert classify(422, {"detail": "unknown template"}, {}) == Rejected(422, "unknown template")
    assert classify(400, None, {}) == Rejected(400, "HTTP 400")
    assert classify(409, {"detail": "not cancellable"}, {}) == Rejected(409, "not cancellable")
