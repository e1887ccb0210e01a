"""SASL_SSL material for a local node: certificates, SCRAM credentials, listener settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from streams.localkafka.errors import CredentialsRefused, LocalKafkaError
from streams.localkafka.properties import NodePorts, node_properties, render
from streams.localkafka.security import (
    BROKER_USERNAME,
    DEFAULT_USERNAME,
    MECHANISMS,
    ClientSecurity,
    ScramUser,
    SecurityFiles,
    argument_file,
    check_username,
    component_users,
    new_password,
    new_tls_material,
    new_users,
    salted_password,
    sasl_ssl_properties,
    scram_arguments,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FILES = SecurityFiles(Path("/state/security"))


PASSWORD = "s3cret-Pa55"


def user(name: str = "air-exstream", password: str = PASSWORD) -> ScramUser:
    return ScramUser(username=name, password=SecretStr(password))


# ------------------------------------------------------------------------------ certificates


def certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def test_the_ca_is_a_self_signed_ca_that_signs_nothing_but_leaves() -> None:
    (ca,) = certificates(new_tls_material(now=NOW).ca_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_the_broker_certificate_names_loopback_and_is_signed_by_the_ca() -> None:
    tls = new_tls_material(now=NOW)
    (ca,) = certificates(tls.ca_pem)
    leaf, chained_ca = certificates(tls.keystore_pem)
    assert chained_ca == ca  # the keystore carries the chain up to the CA
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages  # brokers are TLS clients of each other
    key_id = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_id = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert key_id.key_identifier == ca_id.digest


def test_the_keystore_key_is_unencrypted_pkcs8_and_matches_the_broker_certificate() -> None:
    tls = new_tls_material(now=NOW)
    assert tls.keystore_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")  # PKCS#8, no password
    key = serialization.load_pem_private_key(tls.keystore_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    leaf = certificates(tls.keystore_pem)[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_key().public_bytes(der, public) == leaf.public_key().public_bytes(der, public)
    assert "keystore_pem" not in repr(tls)


def test_certificates_are_valid_from_before_now_for_their_lifetime() -> None:
    tls = new_tls_material(now=NOW, lifetime=timedelta(days=10))
    for cert in [*certificates(tls.ca_pem), *certificates(tls.keystore_pem)]:
        assert cert.not_valid_before_utc < NOW  # an hour of clock skew tolerated
        assert cert.not_valid_after_utc == NOW + timedelta(days=10)


def test_each_start_makes_a_new_ca_and_key() -> None:
    first, second = new_tls_material(now=NOW), new_tls_material(now=NOW)
    assert first.ca_pem != second.ca_pem
    assert first.keystore_pem != second.keystore_pem


def test_other_host_names_become_dns_or_ip_names() -> None:
    tls = new_tls_material(now=NOW, hosts=["broker.test", "::1"])
    sans = certificates(tls.keystore_pem)[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert sans.value.get_values_for_type(x509.DNSName) == ["broker.test"]
    assert sans.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]
    with pytest.raises(ValueError, match="at least one host"):
        new_tls_material(now=NOW, hosts=[])


# ------------------------------------------------------------------------------ users


@pytest.mark.parametrize("name", ["air-exstream", "svc.routing_1", "ops@example.com", "A"])
def test_usable_usernames(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a,b", "a=b", '"a', "-a", "x" * 129, "é"])
def test_unusable_usernames_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(CredentialsRefused, match="letters, digits and"):
        check_username(name)


def test_credentials_errors_are_local_kafka_errors() -> None:
    assert issubclass(CredentialsRefused, LocalKafkaError)


def test_a_user_never_shows_its_password() -> None:
    shown = user(password="hunter2-hunter2")
    assert "hunter2" not in repr(shown)
    assert "hunter2" not in str(shown)
    assert "hunter2" not in f"{shown.password}"


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(CredentialsRefused, match="empty"):
        user(password="")


def test_random_passwords_are_long_url_safe_and_distinct() -> None:
    passwords = {new_password().get_secret_value() for _ in range(50)}
    assert len(passwords) == 50
    allowed = set(string.ascii_letters + string.digits + "-_")
    assert all(len(p) == 32 and set(p) <= allowed for p in passwords)


def test_new_users_default_to_air_exstream_and_a_separate_broker_user() -> None:
    client, broker = new_users(None)
    assert client.username == DEFAULT_USERNAME
    assert broker.username == BROKER_USERNAME
    assert client.password.get_secret_value() != broker.password.get_secret_value()
    again, other_broker = new_users(None)
    assert again.password.get_secret_value() != client.password.get_secret_value()
    assert other_broker.password.get_secret_value() != broker.password.get_secret_value()


def test_a_given_client_user_is_kept() -> None:
    given = user("svc", "from-a-file")
    client, broker = new_users(given)
    assert client == given
    assert broker.username == BROKER_USERNAME


def test_the_client_cannot_take_the_brokers_name() -> None:
    with pytest.raises(CredentialsRefused, match="brokers' own user"):
        new_users(user(BROKER_USERNAME))


def test_component_users_get_their_own_random_passwords() -> None:
    made = component_users(["air-exstream-router", "air-exstream-sink"], taken=["a", "b"])
    assert [u.username for u in made] == ["air-exstream-router", "air-exstream-sink"]
    assert len({u.password.get_secret_value() for u in made}) == 2
    with pytest.raises(CredentialsRefused, match="air-exstream"):
        component_users(["air-exstream"], taken=["air-exstream", BROKER_USERNAME])
    with pytest.raises(CredentialsRefused, match="twice"):
        component_users(["x", "x"], taken=[])
    with pytest.raises(CredentialsRefused, match="not usable"):
        component_users(["User:x"], taken=[])


# ------------------------------------------------------------------------------ SCRAM


def test_salted_password_follows_rfc_7677() -> None:
    """The SCRAM-SHA-256 exchange of RFC 7677 section 3: the salted password computed here yields
    exactly the client proof the RFC shows."""
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = salted_password("SCRAM-SHA-256", "pencil", salt, 4096)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = (
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        f"r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    ).encode()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


def test_salted_password_length_follows_the_mechanism() -> None:
    assert len(salted_password("SCRAM-SHA-512", "p", b"salt", 4096)) == 64
    assert len(salted_password("SCRAM-SHA-256", "p", b"salt", 4096)) == 32
    with pytest.raises(ValueError, match="unknown SCRAM mechanism"):
        salted_password("PLAIN", "p", b"salt", 4096)


def parse_add_scram(argument: str) -> tuple[str, dict[str, str]]:
    """What ``kafka-storage``'s ScramParser reads: ``MECH=[k=v,k=v]``, split on commas."""
    mechanism, _, body = argument.partition("=")
    assert body.startswith("[")
    assert body.endswith("]")
    fields = dict(part.split("=", 1) for part in body[1:-1].split(","))
    return mechanism, fields


def test_scram_arguments_create_every_user_for_every_mechanism() -> None:
    users = [user("air-exstream", "pw-client"), user(BROKER_USERNAME, "pw-broker")]
    args = scram_arguments(users, iterations=4096, salt=lambda: b"0123456789abcdef")
    assert args[::2] == ["--add-scram"] * 4
    seen = set()
    for argument, (name, password) in zip(
        args[1::2],
        [(u.username, u.password.get_secret_value()) for u in users for _ in MECHANISMS],
        strict=True,
    ):
        mechanism, fields = parse_add_scram(argument)
        seen.add((fields["name"], mechanism))
        assert fields["name"] == name
        assert base64.b64decode(fields["salt"]) == b"0123456789abcdef"
        assert fields["iterations"] == "4096"
        expected = salted_password(mechanism, password, b"0123456789abcdef", 4096)
        assert base64.b64decode(fields["saltedpassword"]) == expected
        assert "password" not in fields  # only the salted form is passed
    assert seen == {(u.username, m) for u in users for m in MECHANISMS}


def test_scram_arguments_never_carry_the_password_whatever_its_characters() -> None:
    awkward = 'a,b]=[c "d" \\e ünï'
    args = scram_arguments([user(password=awkward)])
    assert all(awkward not in a for a in args)
    for argument in args[1::2]:
        _, fields = parse_add_scram(argument)  # still one field per key: nothing to escape
        assert set(fields) == {"name", "salt", "saltedpassword", "iterations"}


def test_scram_arguments_salt_each_credential_afresh() -> None:
    args = scram_arguments([user()])
    salts = {parse_add_scram(a)[1]["salt"] for a in args[1::2]}
    assert len(salts) == len(MECHANISMS)


def test_argument_files_quote_every_argument() -> None:
    text = argument_file(["kafka.tools.StorageTool", "-c", "/a dir/x.properties", 'q"\\'])
    assert text.splitlines() == [
        '"kafka.tools.StorageTool"',
        '"-c"',
        '"/a dir/x.properties"',
        '"q\\"\\\\"',
    ]
    with pytest.raises(ValueError, match="spanning lines"):
        argument_file(["a\nb"])


# ------------------------------------------------------------------------------ properties


def secure_props(node: NodePorts, nodes: list[NodePorts]) -> dict[str, str]:
    broker = user(BROKER_USERNAME, "broker-pw")
    extra = sasl_ssl_properties(node, files=FILES, broker=broker)
    return node_properties(node, nodes=nodes, log_dir=Path("/d"), extra=extra)


def test_the_broker_port_becomes_a_sasl_ssl_listener_for_clients_and_brokers() -> None:
    node = NodePorts(1, 9092, 9093)
    props = secure_props(node, [node])
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "SASL_SSL://127.0.0.1:9092"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,SCRAM-SHA-256"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    # the quorum settings are the plaintext cluster's
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"


def test_the_broker_reads_pem_files_from_the_state_directory() -> None:
    node = NodePorts(1, 9092, 9093)
    props = secure_props(node, [node])
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == "/state/security/broker-keystore.pem"
    assert props["ssl.truststore.type"] == "PEM"
    assert props["ssl.truststore.location"] == "/state/security/ca.pem"
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    assert props["ssl.client.auth"] == "none"
    assert not any("password" in k and "jaas" not in k for k in props)  # no store passwords


def test_each_mechanism_gets_the_broker_users_jaas_login() -> None:
    node = NodePorts(1, 9092, 9093)
    props = secure_props(node, [node])
    for mechanism in ("scram-sha-512", "scram-sha-256"):
        jaas = props[f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config"]
        assert jaas == (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            'username="kafka-broker" password="broker-pw";'
        )
    render(props)  # one properties line each


def test_acls_are_enforced_with_the_brokers_and_the_admin_as_super_users() -> None:
    node = NodePorts(1, 9092, 9093)
    broker = user(BROKER_USERNAME, "broker-pw")
    extra = sasl_ssl_properties(node, files=FILES, broker=broker, super_users=["air-exstream"])
    assert extra["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert extra["super.users"] == "User:kafka-broker;User:air-exstream"
    assert extra["allow.everyone.if.no.acl.found"] == "false"
    # no super user besides the brokers unless one is named
    assert secure_props(node, [node])["super.users"] == "User:kafka-broker"


def test_the_controller_port_admits_only_the_nodes_themselves() -> None:
    node = NodePorts(1, 9092, 9093)
    props = secure_props(node, [node])
    assert props["listener.security.protocol.map"].split(",")[0] == "CONTROLLER:SSL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    # whoever presents a certificate of the cluster's CA (only the broker keystore holds one) is
    # the brokers' user
    assert props["listener.name.controller.ssl.principal.mapping.rules"] == (
        "RULE:^.*$/kafka-broker/"
    )
    assert props["ssl.client.auth"] == "none"  # clients authenticate with SCRAM, not certificates


def test_three_secure_nodes_keep_their_static_voters() -> None:
    nodes = [NodePorts(i, 10000 + i, 20000 + i) for i in (1, 2, 3)]
    props = secure_props(nodes[1], nodes)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:10002,CONTROLLER://127.0.0.1:20002"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:20001,2@127.0.0.1:20002,3@127.0.0.1:20003"
    )


def test_a_broker_password_that_would_break_the_jaas_line_is_refused() -> None:
    node = NodePorts(1, 9092, 9093)
    with pytest.raises(CredentialsRefused, match="quotes"):
        sasl_ssl_properties(node, files=FILES, broker=user(BROKER_USERNAME, 'a"b'))


# ------------------------------------------------------------------------------ client settings


def client_security() -> ClientSecurity:
    return ClientSecurity.for_cluster(FILES, user("svc", "pw-not-shown"))


def test_clients_are_told_the_kafka_variables_without_the_password() -> None:
    env = client_security().environment()
    assert env == {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD_FILE": "/state/security/client.password",
        "KAFKA_SSL_CAFILE": "/state/security/ca.pem",
    }
    assert "pw-not-shown" not in repr(client_security())


def test_the_readiness_probe_config_carries_the_password_given_to_it() -> None:
    conf = client_security().librdkafka_config(SecretStr("pw"))
    assert conf == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "pw",
        "ssl.ca.location": "/state/security/ca.pem",
    }


def test_client_security_round_trips_through_a_dict() -> None:
    assert ClientSecurity.from_dict(client_security().to_dict()) == client_security()
    with_users = ClientSecurity.for_cluster(
        FILES, user("svc"), [user("air-exstream-sink"), user("air-exstream-router")]
    )
    assert ClientSecurity.from_dict(with_users.to_dict()) == with_users
    assert "component_users" not in client_security().to_dict()  # as older versions wrote it


def test_each_component_user_has_its_own_password_file() -> None:
    client = ClientSecurity.for_cluster(FILES, user("svc"), [user("air-exstream-sink")])
    sink = client.as_user("air-exstream-sink")
    assert sink.environment()["KAFKA_SASL_USERNAME"] == "air-exstream-sink"
    assert sink.environment()["KAFKA_SASL_PASSWORD_FILE"] == (
        "/state/security/users/air-exstream-sink.password"
    )
    assert sink.ssl_cafile == client.ssl_cafile
    with pytest.raises(CredentialsRefused, match="no component user 'mallory'"):
        client.as_user("mallory")
