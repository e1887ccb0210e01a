"""Typed errors of the Exstream client. Retry logic asks ``retriable``, never a message.

Both public error shapes are parsed (:func:`parse_error_body`): the Spring-style body
``{timestamp, status, error, message, details, errorCode, path}`` and Orchestration's envelope
``{"status": "error", "data": [{errorMessage, statusCode, engineOutputContext}]}``.

=====================================  ==========================  ==========  =========
answer                                  error                       retriable   ambiguous
=====================================  ==========================  ==========  =========
429                                     :class:`ExstreamThrottled`  yes         no
500, 502, 503, connection refused       :class:`ExstreamUnavailable` yes        no
504, client timeout, connection reset   :class:`ExstreamTimeout`    yes         yes
401/403 after one token refresh         :class:`ExstreamAuthError`  no          no
404                                     :class:`ExstreamNotFound`   no          no
other 4xx (400, 409, 413, 422, ...)     :class:`ExstreamRejected`   no          no
=====================================  ==========================  ==========  =========

*Ambiguous*: the request may have reached Exstream and done its work (the answer was lost); a
caller that must not do the work twice looks it up before trying again.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.errors import AirExstreamError


class ExstreamError(AirExstreamError):
    """Base of every error of the Exstream client."""

    ambiguous: bool = False
    default_pushback: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        error_code: str | None = None,
        retry_after_s: float | None = None,
        pushback: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.pushback = self.default_pushback if pushback is None else pushback
        """Exstream asks the client to slow down (429, 503, timeouts)."""
        self.status = status
        self.detail = detail
        self.error_code = error_code
        self.retry_after_s = retry_after_s


class ExstreamThrottled(ExstreamError):
    retriable = True
    default_pushback = True


class ExstreamUnavailable(ExstreamError):
    """5xx or no connection; ``pushback`` for 503 (Exstream says it is overloaded)."""

    retriable = True


class ExstreamTimeout(ExstreamError):
    retriable = True
    ambiguous = True
    default_pushback = True


class ExstreamAuthError(ExstreamError):
    """OTDS refused the credentials, or a fresh token was refused: configuration, not weather."""


class ExstreamNotFound(ExstreamError):
    pass


class ExstreamRejected(ExstreamError):
    """The request itself is wrong for Exstream: retrying it unchanged cannot help."""


def parse_error_body(raw: bytes) -> tuple[str, str | None]:
    """``(detail, error code)`` from either public error shape; ``("", None)`` when neither."""
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return "", None
    if not isinstance(body, dict):
        return "", None
    data = body.get("data")
    if body.get("status") == "error" and isinstance(data, list) and data:
        first = data[0] if isinstance(data[0], dict) else {}
        code = first.get("statusCode")
        return str(first.get("errorMessage") or ""), None if code is None else str(code)
    parts = [body.get("message"), body.get("details")]
    detail = "; ".join(str(p) for p in parts if isinstance(p, str) and p)
    if not detail and isinstance(body.get("error"), str):
        detail = body["error"]
    code = body.get("errorCode")
    return detail, None if code is None else str(code)


def retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_for(status: int, raw: bytes, headers: Any, *, what: str) -> ExstreamError:
    """The typed error of a non-2xx answer to ``what`` (e.g. ``"batch submission"``)."""
    detail, code = parse_error_body(raw)
    after = retry_after(headers.get("Retry-After")) if headers is not None else None
    message = f"Exstream answered {status} to {what}" + (f": {detail}" if detail else "")
    kwargs: dict[str, Any] = {
        "status": status,
        "detail": detail,
        "error_code": code,
        "retry_after_s": after,
    }
    if status == 429:
        return ExstreamThrottled(message, **kwargs)
    if status in (504, 408):
        return ExstreamTimeout(message, **kwargs)
    if status >= 500:
        return ExstreamUnavailable(message, pushback=status == 503, **kwargs)
    if status in (401, 403):
        return ExstreamAuthError(message, **kwargs)
    if status == 404:
        return ExstreamNotFound(message, **kwargs)
    return ExstreamRejected(message, **kwargs)
