from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import ConfigError, KafkaSettings

pytestmark = pytest.mark.unit


def test_plaintext_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h1:9092,h2:9092")
    s = KafkaSettings()
    assert s.confluent_config()["bootstrap.servers"] == "h1:9092,h2:9092"
    assert s.aiokafka_kwargs()["security_protocol"] == "PLAINTEXT"
    assert s.faust_broker_url() == "kafka://h1:9092;kafka://h2:9092"
    assert s.faust_credentials() is None


def test_sasl_ssl_maps_to_every_client_and_hides_the_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr3t-value\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "h:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    s = KafkaSettings()
    conf = s.confluent_config()
    assert conf["sasl.password"] == "s3cr3t-value"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["security.protocol"] == "SASL_SSL"
    kwargs = s.aiokafka_kwargs()
    assert kwargs["sasl_plain_password"] == "s3cr3t-value"
    assert kwargs["ssl_context"] is not None
    assert "s3cr3t-value" not in repr(s)
    assert "s3cr3t-value" not in str(s.model_dump())
    creds = s.faust_credentials()
    assert creds.username == "router"


def test_sasl_without_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    with pytest.raises(ConfigError, match="needs KAFKA_SASL_MECHANISM"):
        KafkaSettings()


def test_unreadable_password_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read KAFKA_SASL_PASSWORD_FILE"):
        KafkaSettings()


def test_missing_bootstrap_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ConfigError, match="air-exstream kafka up"):
        KafkaSettings().confluent_config()
