"""What the Exstream client's answers mean for the sink: :class:`Accepted`, :class:`Retry` or
:class:`Rejected` (pure classification of :mod:`streams.exstream` outcomes).

- :class:`Accepted`: a job holds the batch (just submitted, or found by its external id);
- :class:`Retry`: the error is ``retriable`` (429, 5xx, timeouts, connection errors); ``ambiguous``
  when the request may have reached Exstream (look the batch up before sending it again);
  ``throttled`` for 429 (Exstream is up and asks for less), ``pushback`` to lower concurrency;
- :class:`Rejected`: retrying cannot help (400, 413, 422, ...): split or dead-letter.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.exstream.errors import ExstreamError, ExstreamThrottled


@dataclass(frozen=True, slots=True)
class Accepted:
    job_id: str
    recovered: bool = False
    """Found by its external id (submitted before a crash or an ambiguous failure)."""


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    retry_after_s: float | None = None
    pushback: bool = False
    throttled: bool = False
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    status: int
    detail: str


Outcome = Accepted | Retry | Rejected


def classify(error: ExstreamError) -> Retry | Rejected:
    """The sink's reading of one failed call."""
    if error.retriable:
        reason = f"HTTP {error.status}" if error.status else type(error).__name__
        return Retry(
            reason,
            error.retry_after_s,
            pushback=error.pushback,
            throttled=isinstance(error, ExstreamThrottled),
            ambiguous=error.ambiguous,
        )
    return Rejected(error.status or 0, error.detail or str(error))
