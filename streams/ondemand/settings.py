"""The on-demand service's secrets, from the environment or mounted files (never options).

- ``ONDEMAND_URL_SECRET`` / ``_FILE`` signs document links; while rotating,
  ``ONDEMAND_URL_SECRET_PREVIOUS`` / ``_FILE`` still verifies the links signed before;
- ``ONDEMAND_API_KEYS_FILE`` (or ``ONDEMAND_API_KEYS``, the same JSON inline): the portal's API
  keys (the file wins when both are set).

All are :class:`~pydantic.SecretStr`: never shown by ``repr`` or logs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.config import ConfigError
from streams.secrets import required, secret_or_file

URL_SECRET_ENV = "ONDEMAND_URL_SECRET"  # noqa: S105 (a variable name, not a secret)
KEYS_ENV = "ONDEMAND_API_KEYS"


class OnDemandSecrets(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONDEMAND_", extra="ignore")

    url_secret: SecretStr | None = None
    url_secret_file: Path | None = None
    url_secret_previous: SecretStr | None = None
    url_secret_previous_file: Path | None = None
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> OnDemandSecrets:
        self.url_secret = required(
            secret_or_file(self.url_secret, self.url_secret_file, URL_SECRET_ENV), URL_SECRET_ENV
        )
        self.url_secret_previous = secret_or_file(
            self.url_secret_previous, self.url_secret_previous_file, f"{URL_SECRET_ENV}_PREVIOUS"
        )
        if self.api_keys_file is not None:  # the file wins over the inline JSON
            self.api_keys = secret_or_file(None, self.api_keys_file, KEYS_ENV)
        if self.api_keys is None or not self.api_keys.get_secret_value():
            raise ConfigError(f"set {KEYS_ENV}_FILE (or {KEYS_ENV}) to the portal's API keys")
        return self

    def link_keys(self) -> list[bytes]:
        """The current link secret, then the previous one when set (rotation)."""
        out = [required(self.url_secret, URL_SECRET_ENV).get_secret_value().encode()]
        if self.url_secret_previous is not None:
            out.append(self.url_secret_previous.get_secret_value().encode())
        return out

    def api_keys_json(self) -> str:
        return required(self.api_keys, KEYS_ENV).get_secret_value()


class OnDemandSettings(BaseSettings):
    """How the service runs: environment prefix ``AIR_EXSTREAM_ONDEMAND_`` (e.g.
    ``AIR_EXSTREAM_ONDEMAND_BUDGET_S``); each command-line option overrides its variable."""

    model_config = SettingsConfigDict(
        env_prefix="AIR_EXSTREAM_ONDEMAND_", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8782, ge=0, le=65535)
    budget_s: float = Field(default=5.0, ge=0.1)
    """Time per document (Exstream + Kafka) before answering 504."""
    max_concurrency: int = Field(default=64, ge=1)
    link_ttl_s: int = Field(default=300, ge=1)
    public_url: str | None = None
    """Base URL of signed links (default: the request's origin)."""
    cache_entries: int = Field(default=256, ge=0)
    cache_mib: int = Field(default=64, ge=0)
