"""SASL_SSL material on disk: private files, credentials from the environment, and the written
certificates doing a real TLS handshake (in memory) with the project's own client TLS context."""

from __future__ import annotations

import ssl
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.config import KafkaSettings
from streams.localkafka.errors import CredentialsRefused, LocalKafkaError
from streams.localkafka.security import (
    ClientSecurity,
    ScramUser,
    SecurityFiles,
    new_tls_material,
)
from streams.localkafka.security_files import (
    client_user_from_environment,
    read_password,
    write_private,
    write_security_files,
)

pytestmark = pytest.mark.component


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


PASSWORD = "pw-from-test"


def written(tmp_path: Path, password: str = PASSWORD) -> SecurityFiles:
    files = SecurityFiles(tmp_path / "security")
    user = ScramUser(username="air-exstream", password=SecretStr(password))
    write_security_files(files, new_tls_material(now=datetime.now(UTC)), user)
    return files


def test_private_files_are_0600_even_when_they_existed_before(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert mode(path) == 0o600


def test_each_component_users_password_is_a_private_file(tmp_path: Path) -> None:
    files = SecurityFiles(tmp_path / "security")
    client = ScramUser(username="air-exstream", password=SecretStr(PASSWORD))
    sink = ScramUser(username="air-exstream-sink", password=SecretStr("sink-pw"))
    write_security_files(files, new_tls_material(now=datetime.now(UTC)), client, [sink])
    path = files.user_password_file("air-exstream-sink")
    assert path == files.directory / "users" / "air-exstream-sink.password"
    assert mode(files.users_directory) == 0o700
    assert mode(path) == 0o600
    assert read_password(path).get_secret_value() == "sink-pw"


def test_security_files_are_private_except_the_ca(tmp_path: Path) -> None:
    files = written(tmp_path)
    assert mode(files.directory) == 0o700
    assert mode(files.keystore_file) == 0o600
    assert mode(files.password_file) == 0o600
    assert files.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert read_password(files.password_file).get_secret_value() == "pw-from-test"


def test_a_missing_password_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match=r"cannot read the SASL password file .*nope"):
        read_password(tmp_path / "nope")


def test_without_credentials_in_the_environment_the_user_gets_a_random_password() -> None:
    first = client_user_from_environment({})
    second = client_user_from_environment({"KAFKA_SASL_USERNAME": "svc"})
    assert first.username == "air-exstream"
    assert second.username == "svc"
    assert first.password.get_secret_value() != second.password.get_secret_value()


def test_the_password_comes_from_the_file_or_the_variable(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("  from-the-file\n")
    by_file = client_user_from_environment({"KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert by_file.password.get_secret_value() == "from-the-file"
    by_env = client_user_from_environment({"KAFKA_SASL_PASSWORD": "from-env"})
    assert by_env.password.get_secret_value() == "from-env"
    with pytest.raises(LocalKafkaError, match="not both"):
        client_user_from_environment(
            {"KAFKA_SASL_PASSWORD": "x", "KAFKA_SASL_PASSWORD_FILE": str(secret)}
        )


def test_an_unusable_username_from_the_environment_is_refused() -> None:
    with pytest.raises(CredentialsRefused, match="not usable"):
        client_user_from_environment({"KAFKA_SASL_USERNAME": "two words"})


def test_the_printed_settings_give_kafka_settings_for_every_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = written(tmp_path)
    user = ScramUser(username="air-exstream", password=SecretStr("pw-from-test"))
    for name, value in ClientSecurity.for_cluster(files, user).environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9092")
    conf = settings.confluent_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "pw-from-test"
    assert conf["ssl.ca.location"] == str(files.ca_file)
    kwargs = settings.aiokafka_kwargs()
    assert kwargs["sasl_plain_password"] == "pw-from-test"
    assert kwargs["ssl_context"].check_hostname
    assert "pw-from-test" not in repr(settings)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake over memory buffers: no sockets, both ends in this thread."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_end = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_end = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", client_end), ("server", server_end)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def broker_context(files: SecurityFiles) -> ssl.SSLContext:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.keystore_file)  # key and chain in one PEM file, as Kafka reads
    return server


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_clients_trusting_the_ca_verify_the_broker(tmp_path: Path, hostname: str) -> None:
    files = written(tmp_path)
    client = KafkaSettings(security_protocol="SSL", ssl_cafile=files.ca_file).ssl_context()
    assert client is not None
    handshake(broker_context(files), client, hostname)


def test_the_broker_certificate_is_refused_for_another_host(tmp_path: Path) -> None:
    files = written(tmp_path)
    client = KafkaSettings(security_protocol="SSL", ssl_cafile=files.ca_file).ssl_context()
    assert client is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(broker_context(files), client, "kafka.example.com")


def test_clients_not_trusting_the_ca_refuse_the_broker(tmp_path: Path) -> None:
    files = written(tmp_path)
    other = written(tmp_path / "other")  # a CA of another cluster
    client = KafkaSettings(security_protocol="SSL", ssl_cafile=other.ca_file).ssl_context()
    assert client is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(broker_context(files), client, "127.0.0.1")
