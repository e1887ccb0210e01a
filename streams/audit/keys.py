"""The checkpoint keys on disk and in the environment: Ed25519, PEM.

- The **private key** (the audit writer's) comes from ``AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE`` (a
  PKCS#8 PEM file, e.g. a mounted secret) or ``AIR_EXSTREAM_AUDIT_SIGNING_KEY`` (the PEM text),
  never from options or code, and is never logged.
- **Public keys** (the verifiers') are PEM files; one file may hold several keys one after the
  other (``-----BEGIN PUBLIC KEY-----`` blocks), which is how a rotation is accepted: old and new.
- :func:`generate` makes a pair: the private key written 0600, the public key 0644.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from streams.audit.checkpoints import key_id_of
from streams.errors import AirExstreamError

SIGNING_KEY_ENV = "AIR_EXSTREAM_AUDIT_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE"
PUBLIC_KEYS_FILE_ENV = "AIR_EXSTREAM_AUDIT_PUBLIC_KEYS_FILE"
_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class CheckpointKeyError(AirExstreamError):
    """A checkpoint key that cannot be read or used (the message names the file, never a key)."""


def private_key_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CheckpointKeyError(f"{where} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(
            f"{where} is not an Ed25519 key (audit checkpoints are signed with Ed25519)"
        )
    return key


def signing_key_from_environment(
    environ: Mapping[str, str] | None = None,
) -> Ed25519PrivateKey | None:
    """The audit writer's private key, or None when neither variable is set (checkpoints off)."""
    env = os.environ if environ is None else environ
    text = env.get(SIGNING_KEY_ENV)
    path = env.get(SIGNING_KEY_FILE_ENV)
    if text and path:
        raise CheckpointKeyError(f"set {SIGNING_KEY_ENV} or {SIGNING_KEY_FILE_ENV}, not both")
    if text:
        return private_key_from_pem(text.encode(), SIGNING_KEY_ENV)
    if path:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise CheckpointKeyError(
                f"cannot read {SIGNING_KEY_FILE_ENV} ({path}): {exc.strerror}"
            ) from exc
        return private_key_from_pem(pem, f"{SIGNING_KEY_FILE_ENV} ({path})")
    return None


def public_keys_from_pem(pem: bytes, where: str) -> dict[str, Ed25519PublicKey]:
    """Every public key in ``pem`` (one or more blocks), by key id."""
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise CheckpointKeyError(f"{where} holds no PEM public key")
    keys: dict[str, Ed25519PublicKey] = {}
    for block in blocks:
        try:
            key = load_pem_public_key(block)
        except ValueError as exc:
            raise CheckpointKeyError(f"{where} holds an unreadable public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise CheckpointKeyError(f"{where} holds a key that is not Ed25519")
        keys[key_id_of(key)] = key
    return keys


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The accepted public keys of every file in ``paths``, by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise CheckpointKeyError(
                f"cannot read the public key file {path}: {exc.strerror}"
            ) from exc
        keys.update(public_keys_from_pem(pem, str(path)))
    return keys


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_file: Path
    public_file: Path
    key_id: str


def generate(private_file: Path, public_file: Path) -> KeyPair:
    """A new Ed25519 key pair: the private key in ``private_file`` (0600, PKCS#8 PEM, created,
    never overwritten) and the public key in ``public_file`` (SubjectPublicKeyInfo PEM)."""
    for path in (private_file, public_file):
        if path.exists():
            raise CheckpointKeyError(
                f"{path} exists; keys are never overwritten (choose another name)"
            )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    private_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    public_file.parent.mkdir(parents=True, exist_ok=True)
    public_file.write_bytes(public_pem(key.public_key()))
    return KeyPair(private_file, public_file, key_id_of(key.public_key()))
