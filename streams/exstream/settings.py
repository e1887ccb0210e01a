"""Where Exstream is and who the project is to it: one settings model from the environment.

Variables (prefix ``EXSTREAM_``), every one also a keyword argument:

- ``EXSTREAM_URL``: base URL of the Exstream host (``/orchestration`` and ``/design`` below it;
  default: the local emulator, ``http://127.0.0.1:8780``);
- ``EXSTREAM_ORCHESTRATION_URL``, ``EXSTREAM_DESIGN_URL``: those services' bases when they live
  elsewhere (default ``EXSTREAM_URL``);
- ``EXSTREAM_OTDS_URL``: base URL of OTDS (default ``EXSTREAM_URL``);
- ``EXSTREAM_OTDS_STYLE``: ``self-hosted`` (``/otdsws/otdstenant/{tenant}/oauth2/token``, the
  default) or ``cloud`` (``/otdstenant/{tenant}/oauth2/token``);
- ``EXSTREAM_TENANT``: the OTDS tenant id (default ``air``);
- ``EXSTREAM_CLIENT_ID``: the OTDS OAuth2 client, client-credentials grant (``air-exstream``);
- ``EXSTREAM_CLIENT_SECRET`` or ``EXSTREAM_CLIENT_SECRET_FILE``: its secret (required);
- ``EXSTREAM_SCOPE``: the OAuth2 scope asked for (``otds:groups``);
- ``EXSTREAM_DOMAIN``: the Exstream domain id in every path (``air``);
- ``EXSTREAM_BATCH_SERVICE``: the batch input channel's service name (``air-batch``);
- ``EXSTREAM_TIMEOUT_S``: per-request timeout (30);
- ``EXSTREAM_TOKEN_MARGIN_S``: a token is replaced this long before it expires (60).

The secret is a :class:`~pydantic.SecretStr` (never shown by ``repr`` or logs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.config import ConfigError
from streams.exstream.paths import OtdsStyle

DEFAULT_URL = "http://127.0.0.1:8780"


class ExstreamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXSTREAM_", extra="ignore")

    url: str = DEFAULT_URL
    orchestration_url: str | None = None
    design_url: str | None = None
    otds_url: str | None = None
    otds_style: OtdsStyle = "self-hosted"
    tenant: str = "air"
    client_id: str = "air-exstream"
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    scope: str = "otds:groups"
    domain: str = "air"
    batch_service: str = "air-batch"
    timeout_s: float = 30.0
    token_margin_s: float = 60.0

    @model_validator(mode="after")
    def _check(self) -> ExstreamSettings:
        if self.client_secret_file is not None and self.client_secret is None:
            try:
                self.client_secret = SecretStr(self.client_secret_file.read_text().strip())
            except OSError as exc:
                raise ConfigError(
                    f"cannot read EXSTREAM_CLIENT_SECRET_FILE {self.client_secret_file}: "
                    f"{exc.strerror}"
                ) from exc
        if self.client_secret is None or not self.client_secret.get_secret_value():
            raise ConfigError(
                "set EXSTREAM_CLIENT_SECRET or EXSTREAM_CLIENT_SECRET_FILE "
                "(secrets are never taken from options)"
            )
        if self.timeout_s <= 0 or self.token_margin_s < 0:
            raise ConfigError("EXSTREAM_TIMEOUT_S must be positive, EXSTREAM_TOKEN_MARGIN_S >= 0")
        for name in ("tenant", "domain", "batch_service", "client_id"):
            if not getattr(self, name).strip():
                raise ConfigError(f"EXSTREAM_{name.upper()} must not be empty")
        return self

    @property
    def orchestration_base(self) -> str:
        return (self.orchestration_url or self.url).rstrip("/")

    @property
    def design_base(self) -> str:
        return (self.design_url or self.url).rstrip("/")

    @property
    def otds_base(self) -> str:
        return (self.otds_url or self.url).rstrip("/")

    @property
    def secret(self) -> str:
        assert self.client_secret is not None  # the validator guarantees it
        return self.client_secret.get_secret_value()

    def described(self) -> dict[str, Any]:
        """The settings for a log line or a summary: every value but the secret."""
        return self.model_dump(exclude={"client_secret", "client_secret_file"})


def exstream_settings(**overrides: Any) -> ExstreamSettings:
    """Settings from the environment, ``overrides`` (not None) taking precedence.

    Raises :class:`~streams.config.ConfigError` with the variable to set."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "EXSTREAM_CLIENT_SECRET" in os.environ and "client_secret_file" in given:
        given.pop("client_secret_file")
    return ExstreamSettings(**given)
