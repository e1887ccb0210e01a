"""HMAC signing of delivery-event requests: the sender signs, the webhook receiver verifies.

Header ``X-Exstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. The
timestamp is inside the signed message, so a captured callback cannot be re-sent later with a new
timestamp; the receiver refuses signatures older than its tolerance (stale or replayed) and
compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

from streams.errors import AirExstreamError

SIGNATURE_HEADER = "X-Exstream-Signature"
EVENT_ID_HEADER = "X-Exstream-Event-Id"


class SignatureError(AirExstreamError, ValueError):
    """A callback whose signature is missing, malformed, wrong or outside the time tolerance."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secrets: list[bytes], header: str | None, body: bytes, *, now: int, tolerance_s: int = 300
) -> int:
    """Check ``header`` against ``body``; returns the signed timestamp.

    ``secrets`` may hold several keys (the current one and the one being rotated out): any match
    is accepted. Raises :class:`SignatureError` with a code: MISSING, MALFORMED, STALE, MISMATCH.
    """
    if not header:
        raise SignatureError("MISSING", f"no {SIGNATURE_HEADER} header")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("MALFORMED", "signature header is not t=...,v1=...")
        parts[key] = value
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        raise SignatureError("MALFORMED", "signature header is not t=...,v1=...")
    timestamp = int(parts["t"])
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("STALE", f"signature timestamp is {now - timestamp} s from now")
    for secret in secrets:
        expected = sign(secret, body, timestamp).partition(",v1=")[2]
        if hmac.compare_digest(expected, parts["v1"]):
            return timestamp
    raise SignatureError("MISMATCH", "signature does not match the body")
