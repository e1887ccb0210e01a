"""Signed, expiring document links (pure).

A link is ``/v1/documents/<token>`` where ``token = <payload>.<mac>``:

- ``payload`` = base64url (no padding) of compact JSON ``{"v": 1, "d": <document id>,
  "c": <customer id>, "e": <expiry, Unix seconds>}``;
- ``mac`` = base64url of HMAC-SHA256(secret, ``b"ondemand-link.v1." + payload``).

The MAC covers the document id, the customer and the expiry together, so none of them can be
changed (pointing a link at another document or customer, or extending it) without the
secret. Verification tries the current secret, then the previous one (rotation: links signed
before a rotation stay valid until they expire). The signature is checked *before* the expiry, so
"expired" is only ever said of an authentic link. The link is a capability: whoever holds it may
fetch the document until it expires, which is why its lifetime is short (minutes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from streams.errors import AirExstreamError

DOMAIN = b"ondemand-link.v1."
MAX_TOKEN_CHARS = 1024


class LinkProblem(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


class LinkError(AirExstreamError, ValueError):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Grant:
    """What an authentic, unexpired link gives access to."""

    document_id: str
    customer_id: str
    expires_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def sign_link(secret: bytes, document_id: str, customer_id: str, expires_at: int) -> str:
    if not secret:
        raise ValueError("the link secret must not be empty")
    body = json.dumps(
        {"v": 1, "d": document_id, "c": customer_id, "e": int(expires_at)},
        separators=(",", ":"),
        sort_keys=True,
    )
    payload = _b64(body.encode("utf-8"))
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify_link(secrets: Sequence[bytes], token: str, *, now: float) -> Grant:
    """The grant of ``token``, or :class:`LinkError` (malformed, bad signature, expired)."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise LinkError(LinkProblem.MALFORMED)
    payload, mac_text = token.split(".")
    try:
        mac = _unb64(mac_text)
        payload.encode("ascii")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise LinkError(LinkProblem.MALFORMED) from None
    if not any(s and hmac.compare_digest(_mac(s, payload), mac) for s in secrets):
        raise LinkError(LinkProblem.BAD_SIGNATURE)
    try:
        claims = json.loads(_unb64(payload))
        grant = Grant(str(claims["d"]), str(claims["c"]), int(claims["e"]))
        if claims.get("v") != 1:
            raise ValueError("version")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise LinkError(LinkProblem.MALFORMED) from None
    if now >= grant.expires_at:
        raise LinkError(LinkProblem.EXPIRED)
    return grant
