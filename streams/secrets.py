"""Secrets from the environment or from files (mounted secrets), never from options or code."""

from __future__ import annotations

import os
from pathlib import Path

import click


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
