"""Secrets from the environment or from files (mounted secrets), never from options or code."""

from __future__ import annotations

import os
from pathlib import Path

import click
from pydantic import SecretStr

from streams.config import ConfigError


def read_secret(name: str) -> str:
    """``$NAME`` or the contents of the file ``$NAME_FILE``; a clear error when neither is set."""
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if value:
        return value
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read {name}_FILE ({path}): {exc.strerror}") from exc
    raise click.UsageError(f"set {name} or {name}_FILE (secrets are never taken from options)")


def secret_or_file(value: SecretStr | None, path: Path | None, name: str) -> SecretStr | None:
    """The secret of ``$NAME`` (``value``), else the contents of ``$NAME_FILE`` (``path``,
    surrounding whitespace stripped), else None. For pydantic-settings models' validators."""
    if value is not None and value.get_secret_value():
        return value
    if path is None:
        return None
    try:
        return SecretStr(path.read_text().strip())
    except OSError as exc:
        raise ConfigError(f"cannot read {name}_FILE ({path}): {exc.strerror}") from exc


def required(secret: SecretStr | None, name: str) -> SecretStr:
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"set {name} or {name}_FILE (secrets are never taken from options)")
    return secret
