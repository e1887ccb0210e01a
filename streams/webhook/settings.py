"""The webhook receiver's secrets, from the environment or mounted files (never options).

``EXSTREAM_WEBHOOK_SECRET`` (or ``EXSTREAM_WEBHOOK_SECRET_FILE``) is the current secret;
``EXSTREAM_WEBHOOK_SECRET_PREVIOUS`` (or ``..._PREVIOUS_FILE``) the one being rotated out, still
accepted. Both are :class:`~pydantic.SecretStr`: never shown by ``repr`` or logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.secrets import required, secret_or_file

SECRET_ENV = "EXSTREAM_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a secret)


class WebhookSecrets(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXSTREAM_WEBHOOK_", extra="ignore")

    secret: SecretStr | None = None
    secret_file: Path | None = None
    secret_previous: SecretStr | None = None
    secret_previous_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> WebhookSecrets:
        self.secret = required(
            secret_or_file(self.secret, self.secret_file, SECRET_ENV), SECRET_ENV
        )
        self.secret_previous = secret_or_file(
            self.secret_previous, self.secret_previous_file, f"{SECRET_ENV}_PREVIOUS"
        )
        return self

    def keys(self) -> list[bytes]:
        """The current secret, then the previous one when set (key rotation)."""
        out = [required(self.secret, SECRET_ENV).get_secret_value().encode()]
        if self.secret_previous is not None:
            out.append(self.secret_previous.get_secret_value().encode())
        return out


class WebhookSettings(BaseSettings):
    """How the receiver runs: environment prefix ``AIR_EXSTREAM_WEBHOOK_`` (e.g.
    ``AIR_EXSTREAM_WEBHOOK_TOLERANCE_S``); each command-line option overrides its variable."""

    model_config = SettingsConfigDict(
        env_prefix="AIR_EXSTREAM_WEBHOOK_", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8781, ge=0, le=65535)
    auth: Literal["hmac", "bearer"] = "hmac"
    """``hmac``: signed bodies within ``tolerance_s``; ``bearer``: the secret as a bearer token."""
    tolerance_s: int = Field(default=300, ge=1)
    kafka_timeout_s: float = Field(default=10.0, ge=1.0)
    """How long a write may wait for Kafka's confirmation before answering 503."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    max_events: int = Field(default=1000, ge=1)
    retry_after_s: int = Field(default=5, ge=1)
