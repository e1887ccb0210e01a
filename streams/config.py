"""How to reach Kafka (and the schema registry): one settings model, mapped onto each client.

Values come from the environment (prefix ``KAFKA_``, e.g. ``KAFKA_BOOTSTRAP_SERVERS``,
``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SCHEMA_REGISTRY_URL``) or from keyword arguments. The SASL
password may instead be read from a file named by ``KAFKA_SASL_PASSWORD_FILE`` (a mounted secret),
so it never has to sit in the environment or a process listing. Secrets are
:class:`~pydantic.SecretStr`: ``repr``, ``str`` and ``model_dump`` show ``**********``; only the
client mappings below hand the clear value to the client libraries.

``bootstrap_servers=None`` means "the project's local broker": :func:`resolve_kafka_settings`
fills it in from the running local cluster (``air-exstream kafka up``).
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
    """The configuration is incomplete or contradictory; the message names the variables."""


class KafkaSettings(BaseSettings):
    """Connection settings shared by every Kafka client of the project."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str | None = None
    """``host:port[,host:port...]``; None: the project's local broker."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    """A file holding the SASL password (surrounding whitespace is stripped)."""
    ssl_cafile: Path | None = None
    """CA bundle to verify the brokers; the system's trust store when unset."""
    ssl_certfile: Path | None = None
    """Client certificate (PEM) for mutual TLS."""
    ssl_keyfile: Path | None = None
    """Private key (PEM) of ``ssl_certfile``, when not in the same file."""
    client_id: str = "air-exstream"
    schema_registry_url: str | None = None
    """Confluent wire format when set (``mock://`` serves tests); single-object Avro otherwise."""

    @model_validator(mode="after")
    def _check(self) -> KafkaSettings:
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise ConfigError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
            try:
                secret = self.sasl_password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read KAFKA_SASL_PASSWORD_FILE {self.sasl_password_file}: "
                    f"{exc.strerror}"
                ) from exc
            self.sasl_password = SecretStr(secret)
        if self.uses_sasl and (
            self.sasl_mechanism is None or not self.sasl_username or not self.sasl_password
        ):
            raise ConfigError(
                f"security protocol {self.security_protocol} needs KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
            )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ConfigError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def require_bootstrap(self) -> str:
        """The bootstrap servers, or a ConfigError saying how to get a cluster."""
        if not self.bootstrap_servers:
            raise ConfigError(
                "no Kafka cluster configured: set KAFKA_BOOTSTRAP_SERVERS or start the local "
                "one with `air-exstream kafka up`"
            )
        return self.bootstrap_servers

    def with_bootstrap(self, bootstrap_servers: str) -> KafkaSettings:
        return self.model_copy(update={"bootstrap_servers": bootstrap_servers})

    def _sasl(self) -> tuple[SaslMechanism, str, str]:
        # the validator guarantees all three when SASL is on; checked again for the type checker
        if self.sasl_mechanism is None or self.sasl_username is None or not self.sasl_password:
            raise ConfigError(f"{self.security_protocol} needs SASL mechanism, user and password")
        return self.sasl_mechanism, self.sasl_username, self.sasl_password.get_secret_value()

    # ------------------------------------------------------------------ client mappings

    def confluent_config(self) -> dict[str, str]:
        """librdkafka settings for confluent-kafka's Producer, Consumer and AdminClient."""
        conf = {
            "bootstrap.servers": self.require_bootstrap(),
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.uses_sasl:
            mechanism, username, password = self._sasl()
            conf |= {
                "sasl.mechanism": mechanism,
                "sasl.username": username,
                "sasl.password": password,
            }
        if self.uses_tls:
            for key, path in (
                ("ssl.ca.location", self.ssl_cafile),
                ("ssl.certificate.location", self.ssl_certfile),
                ("ssl.key.location", self.ssl_keyfile),
            ):
                if path is not None:
                    conf[key] = str(path)
        return conf

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client TLS context (hostname checked), None without TLS."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None
            )
            if self.ssl_certfile is not None:
                context.load_cert_chain(
                    str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
                )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the TLS files (KAFKA_SSL_CAFILE={self.ssl_cafile}, "
                f"KAFKA_SSL_CERTFILE={self.ssl_certfile}, KAFKA_SSL_KEYFILE={self.ssl_keyfile}): "
                f"{exc}"
            ) from exc
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.require_bootstrap(),
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.uses_sasl:
            mechanism, username, password = self._sasl()
            kwargs |= {
                "sasl_mechanism": mechanism,
                "sasl_plain_username": username,
                "sasl_plain_password": password,
            }
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs


def local_state_bootstrap(state_dir: Path | None = None) -> str | None:
    """Bootstrap servers of the project's local cluster when all its nodes run, else None."""
    from streams.localkafka.runner import DEFAULT_STATE_DIR, LocalKafka

    local = LocalKafka(state_dir or DEFAULT_STATE_DIR)
    info = local.info()
    return info.bootstrap_servers if info is not None and local.is_running() else None


def resolve_kafka_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """Settings from the environment, with the bootstrap servers taken, in order, from the
    argument, ``KAFKA_BOOTSTRAP_SERVERS``, or the running local cluster (``.kafka-local/``).
    Raises ConfigError when none of them gives a cluster."""
    settings = KafkaSettings()
    chosen = bootstrap_servers or settings.bootstrap_servers or local_state_bootstrap()
    if chosen is None:
        settings.require_bootstrap()  # raises the explanatory error
    return settings.with_bootstrap(str(chosen))
