"""Portal API keys: who is calling, and may they have this customer's documents (pure).

Scheme: ``Authorization: Bearer <key_id>.<secret>``. Each key is bound to exactly one customer
id (the portal session's customer). Only the SHA-256 of the secret is stored (the secrets are
random, 32+ bytes, so a plain digest is enough: there is nothing to brute-force); the digest
of the presented secret is compared in constant time, and an unknown key id costs the same
comparison against a dummy digest. Rotation: several keys may be active at once (issue the new
key, move the portal to it, delete the old entry).

Key file (``ONDEMAND_API_KEYS_FILE``, JSON)::

    {"portal-2026-01": {"sha256": "<hex digest of the secret>", "customer_id": "cust-000042"}}

``"secret"`` (clear text) is accepted instead of ``"sha256"`` for local use; it is hashed on
load and never kept. ``"expires_at"`` (Unix seconds) optionally ends a key's life.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streams.errors import AirExstreamError

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DUMMY = hashlib.sha256(b"no such key").hexdigest()


class AuthError(AirExstreamError, ValueError):
    """The key file is unusable (the message names the entry, never a secret)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    digest: str
    """Hex SHA-256 of the secret."""
    customer_id: str
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    key_id: str
    customer_id: str


class Denial(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SECRET = "bad_secret"  # noqa: S105 (a reason code, not a secret)
    EXPIRED = "expired"


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of ``secret``'s UTF-8 bytes. Never raises: a presented secret holding bytes that
    are not UTF-8 (aiohttp hands them over as lone surrogates) is hashed too, and simply matches
    no key, instead of failing the request with a server error."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(key_id: str, customer_id: str) -> tuple[str, ApiKey]:
    """A fresh bearer credential ``<key_id>.<secret>`` and the entry to store for it."""
    secret = secrets.token_urlsafe(32)
    return f"{key_id}.{secret}", ApiKey(key_id, hash_secret(secret), customer_id)


class KeyStore:
    def __init__(self, keys: Mapping[str, ApiKey] | list[ApiKey]) -> None:
        entries = list(keys.values()) if isinstance(keys, Mapping) else list(keys)
        self._keys = {k.key_id: k for k in entries}

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def from_json(cls, raw: Any) -> KeyStore:
        if not isinstance(raw, dict) or not raw:
            raise AuthError("the API key file must be a non-empty JSON object {key_id: {...}}")
        keys: list[ApiKey] = []
        for key_id, entry in raw.items():
            if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
                raise AuthError("API key ids are 1..64 characters of [A-Za-z0-9_-]")
            if not isinstance(entry, dict):
                raise AuthError(f"API key {key_id}: the entry must be an object")
            customer = entry.get("customer_id")
            if not isinstance(customer, str) or not customer:
                raise AuthError(f"API key {key_id}: customer_id is required")
            digest = entry.get("sha256")
            clear = entry.get("secret")
            if isinstance(digest, str) and _HEX64.match(digest.lower()):
                digest = digest.lower()
            elif isinstance(clear, str) and len(clear) >= 16:
                digest = hash_secret(clear)
            else:
                raise AuthError(
                    f"API key {key_id}: needs 'sha256' (64 hex digits) or 'secret' (16+ chars)"
                )
            expires = entry.get("expires_at")
            if expires is not None and not isinstance(expires, int | float):
                raise AuthError(f"API key {key_id}: expires_at must be Unix seconds")
            keys.append(ApiKey(key_id, digest, customer, float(expires) if expires else None))
        return cls(keys)

    def authenticate(self, authorization: str | None, *, now: float) -> Principal | Denial:
        """The caller of ``Authorization: Bearer <key_id>.<secret>``, or why not."""
        if not authorization:
            return Denial.MISSING
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return Denial.MALFORMED
        key_id, dot, secret = credential.strip().partition(".")
        if not dot or not secret or not _KEY_ID.match(key_id):
            return Denial.MALFORMED
        key = self._keys.get(key_id)
        presented = hash_secret(secret)
        matches = hmac.compare_digest(presented, key.digest if key else _DUMMY)
        if key is None:
            return Denial.UNKNOWN_KEY
        if not matches:
            return Denial.BAD_SECRET
        if key.expires_at is not None and now >= key.expires_at:
            return Denial.EXPIRED
        return Principal(key.key_id, key.customer_id)


def may_access(principal: Principal, customer_id: str) -> bool:
    """A key reads only the documents of the customer it is bound to."""
    return hmac.compare_digest(principal.customer_id.encode(), customer_id.encode())
