"""The webhook receiver's secrets, from the environment or mounted files (never options).

``EXSTREAM_WEBHOOK_SECRET`` (or ``EXSTREAM_WEBHOOK_SECRET_FILE``) is the current secret;
``EXSTREAM_WEBHOOK_SECRET_PREVIOUS`` (or ``..._PREVIOUS_FILE``) the one being rotated out, still
accepted. Both are :class:`~pydantic.SecretStr`: never shown by ``repr`` or logs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator
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
