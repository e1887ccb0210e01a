"""KafkaSettings: the environment, mapped onto confluent-kafka and aiokafka."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from streams.config import ConfigError, KafkaSettings, resolve_kafka_settings

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states its environment; nothing leaks in from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (usable as CA and as client certificate) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "air-exstream-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


# ---------------------------------------------------------------------- PLAINTEXT


def test_plaintext_maps_to_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h1:9092,h2:9092")
    s = KafkaSettings()
    assert s.confluent_config() == {
        "bootstrap.servers": "h1:9092,h2:9092",
        "security.protocol": "PLAINTEXT",
        "client.id": "air-exstream",
    }
    assert s.aiokafka_kwargs() == {
        "bootstrap_servers": "h1:9092,h2:9092",
        "security_protocol": "PLAINTEXT",
        "client_id": "air-exstream",
    }
    assert s.ssl_context() is None


def test_keyword_arguments_and_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    s = KafkaSettings(bootstrap_servers="b:1", client_id="sink-7")
    assert s.confluent_config()["client.id"] == "sink-7"
    assert s.aiokafka_kwargs()["client_id"] == "sink-7"


def test_schema_registry_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KafkaSettings().schema_registry_url is None
    monkeypatch.setenv("KAFKA_SCHEMA_REGISTRY_URL", "mock://tests")
    assert KafkaSettings().schema_registry_url == "mock://tests"


def test_unknown_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValidationError, match="security_protocol"):
        KafkaSettings()


# ---------------------------------------------------------------------- SASL


def test_sasl_plaintext_maps_to_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9094")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    s = KafkaSettings()
    conf = s.confluent_config()
    assert conf["security.protocol"] == "SASL_PLAINTEXT"
    assert (conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]) == (
        "PLAIN",
        "router",
        SECRET,
    )
    assert not any(key.startswith("ssl.") for key in conf)
    kwargs = s.aiokafka_kwargs()
    assert kwargs["sasl_mechanism"] == "PLAIN"
    assert kwargs["sasl_plain_username"] == "router"
    assert kwargs["sasl_plain_password"] == SECRET
    assert "ssl_context" not in kwargs
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"


def test_sasl_ssl_with_password_file_maps_to_every_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    s = KafkaSettings()
    conf = s.confluent_config()
    assert conf["sasl.password"] == SECRET  # the trailing newline of the file is not part of it
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["security.protocol"] == "SASL_SSL"
    kwargs = s.aiokafka_kwargs()
    assert kwargs["sasl_plain_password"] == SECRET
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["security_protocol"] == "SASL_SSL"


def test_secrets_never_show_in_repr_str_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    s = KafkaSettings(
        bootstrap_servers="h:1",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="u",
        sasl_password=SECRET,
    )
    for shown in (repr(s), str(s), str(s.model_dump()), s.model_dump_json(), f"{s!r}"):
        assert SECRET not in shown
    assert "**********" in repr(s)


@pytest.mark.parametrize("missing", ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "password"])
def test_sasl_without_all_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    env.pop("KAFKA_SASL_PASSWORD" if missing == "password" else missing)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="needs KAFKA_SASL_MECHANISM"):
        KafkaSettings()


def test_unreadable_password_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read KAFKA_SASL_PASSWORD_FILE"):
        KafkaSettings()


def test_password_and_password_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "p").write_text("x")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "y")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "p"))
    with pytest.raises(ConfigError, match="not both"):
        KafkaSettings()


# ---------------------------------------------------------------------- SSL


def test_mutual_tls_maps_to_every_client(
    monkeypatch: pytest.MonkeyPatch, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(cert))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(cert))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(key))
    s = KafkaSettings()
    conf = s.confluent_config()
    assert conf["security.protocol"] == "SSL"
    assert conf["ssl.ca.location"] == str(cert)
    assert conf["ssl.certificate.location"] == str(cert)
    assert conf["ssl.key.location"] == str(key)
    assert not any(k.startswith("sasl.") for k in conf)
    context = s.aiokafka_kwargs()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1  # only the configured CA, not the system store
    assert s.aiokafka_kwargs()["security_protocol"] == "SSL"


def test_unloadable_tls_files_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    s = KafkaSettings(
        bootstrap_servers="h:1", security_protocol="SSL", ssl_cafile=tmp_path / "ca.pem"
    )
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        s.aiokafka_kwargs()


def test_key_without_certificate_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", "/k.pem")
    with pytest.raises(ConfigError, match="without KAFKA_SSL_CERTFILE"):
        KafkaSettings()


# ---------------------------------------------------------------------- bootstrap resolution


def test_missing_bootstrap_explains_what_to_do() -> None:
    with pytest.raises(ConfigError, match="air-exstream kafka up"):
        KafkaSettings().confluent_config()


def test_resolution_order_argument_then_environment_then_local_broker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .kafka-local/ here: no local broker
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        resolve_kafka_settings()
    assert resolve_kafka_settings("arg:1").bootstrap_servers == "arg:1"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:1")
    assert resolve_kafka_settings().bootstrap_servers == "env:1"
    assert resolve_kafka_settings("arg:1").bootstrap_servers == "arg:1"
