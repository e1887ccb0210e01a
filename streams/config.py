"""How to reach Kafka (and the schema registry): one model, mapped onto each client library.

Values come from the environment (prefix ``KAFKA_``) or from files: ``KAFKA_SASL_PASSWORD_FILE``
names a file holding the password, so secrets never need to sit in code or in a process listing.
Secrets are :class:`~pydantic.SecretStr` and never appear in ``repr`` or logs.

When ``KAFKA_BOOTSTRAP_SERVERS`` is unset, the commands use the project's own local broker
(``air-exstream kafka up``; its state file tells where it listens).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import AirExstreamError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class ConfigError(AirExstreamError):
    """The configuration is incomplete or contradictory."""


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str | None = None
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    client_id: str = "air-exstream"
    schema_registry_url: str | None = None
    """Confluent wire format when set (``mock://`` serves tests); single-object Avro otherwise."""

    @model_validator(mode="after")
    def _load_password_file(self) -> KafkaSettings:
        if self.sasl_password is None and self.sasl_password_file is not None:
            try:
                secret = self.sasl_password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read KAFKA_SASL_PASSWORD_FILE {self.sasl_password_file}: "
                    f"{exc.strerror}"
                ) from exc
            self.sasl_password = SecretStr(secret)
        if self.uses_sasl and (
            self.sasl_mechanism is None or not self.sasl_username or self.sasl_password is None
        ):
            raise ConfigError(
                f"security protocol {self.security_protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
            )
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def require_bootstrap(self) -> str:
        if not self.bootstrap_servers:
            raise ConfigError(
                "no Kafka cluster configured: set KAFKA_BOOTSTRAP_SERVERS or start the local "
                "one with `air-exstream kafka up`"
            )
        return self.bootstrap_servers

    def with_bootstrap(self, bootstrap_servers: str) -> KafkaSettings:
        return self.model_copy(update={"bootstrap_servers": bootstrap_servers})

    # ------------------------------------------------------------------ client mappings

    def confluent_config(self) -> dict[str, str]:
        """Settings for confluent-kafka's Producer, Consumer and AdminClient."""
        conf = {
            "bootstrap.servers": self.require_bootstrap(),
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.uses_sasl:
            assert self.sasl_mechanism is not None
            assert self.sasl_username is not None
            assert self.sasl_password is not None
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        if self.uses_tls:
            if self.ssl_cafile:
                conf["ssl.ca.location"] = str(self.ssl_cafile)
            if self.ssl_certfile:
                conf["ssl.certificate.location"] = str(self.ssl_certfile)
            if self.ssl_keyfile:
                conf["ssl.key.location"] = str(self.ssl_keyfile)
        return conf

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        if self.ssl_certfile:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.require_bootstrap(),
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.uses_sasl:
            assert self.sasl_password is not None
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs

    def faust_broker_url(self) -> str:
        return ";".join(f"kafka://{host}" for host in self.require_bootstrap().split(","))

    def faust_credentials(self) -> Any:
        """faust's credentials object for the configured security protocol (None for plaintext)."""
        import faust

        if self.uses_sasl:
            assert self.sasl_password is not None
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context())
        return None


def local_state_bootstrap(state_dir: Path | None = None) -> str | None:
    """Bootstrap servers of the project's local cluster when it runs, else None."""
    from streams.localkafka.runner import DEFAULT_STATE_DIR, LocalKafka

    local = LocalKafka(state_dir or DEFAULT_STATE_DIR)
    info = local.info()
    if info is None or not local.running_nodes():
        return None
    return info.bootstrap_servers


def resolve_kafka_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """Settings from the environment, with the bootstrap servers taken, in order, from the
    argument, ``KAFKA_BOOTSTRAP_SERVERS``, or the running local cluster."""
    settings = KafkaSettings()
    chosen = bootstrap_servers or settings.bootstrap_servers or local_state_bootstrap()
    if chosen is None:
        settings.require_bootstrap()  # raises the explanatory error
    return settings.with_bootstrap(str(chosen))
