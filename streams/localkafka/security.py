"""What a local node needs to serve clients over SASL_SSL: pure functions, no I/O.

A SASL_SSL cluster differs from the default one in its client listener only. Each node's broker
port speaks SASL_SSL (TLS, then SCRAM authentication) and serves the brokers' own traffic too
(replication, transaction markers), so nothing on the broker port is unauthenticated; the
controller port stays PLAINTEXT on loopback, as the quorum needs no client access.

- TLS: a throwaway certificate authority made at every fresh start, and one broker certificate
  it signs for ``127.0.0.1`` and ``localhost`` (EC P-256 keys: made in milliseconds, read by the
  JVM, OpenSSL and Python alike). The broker reads them as PEM files (``ssl.keystore.type=PEM``):
  no keytool step and no store password to keep; clients only need the CA file.
- SASL: SCRAM-SHA-512 (and SCRAM-SHA-256, for clients that ask for it). Credentials are written
  into the cluster's metadata when its storage is formatted (``kafka-storage --add-scram``) as a
  salt and a salted password computed here, so the clear password appears in no command line,
  argument file or log. Two users: the clients' (``air-exstream`` unless given) and the brokers'
  own for their traffic among themselves, whose random password lives in ``server.properties``
  (written 0600) and is handed to no client.
- Passwords come from the caller (a file or the environment, see
  :mod:`streams.localkafka.security_files`) or are made here per cluster with :mod:`secrets`.
- Authorization: Kafka's KRaft ``StandardAuthorizer`` (the ACLs of ``topology/acls.toml``,
  created by ``air-exstream topology apply``); what no ACL allows is denied. Super users: the
  brokers' own user and the client user (the operators' admin principal). Every *component
  user* (one per principal of ``topology/acls.toml``: the routing worker, the sink...) is a
  SCRAM user with its own random password, and may do only what its ACLs allow. The controller
  port speaks TLS with client certificates required: only holders of the broker keystore (the
  nodes themselves) connect, and they are mapped to the brokers' own user, so the quorum's
  traffic is authorized without a password and no anonymous principal needs any right.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from streams.localkafka.errors import CredentialsRefused
from streams.localkafka.properties import HOST, NodePorts

if TYPE_CHECKING:
    from cryptography import x509

Security = Literal["plaintext", "sasl_ssl"]
"""How clients reach a local cluster: PLAINTEXT (the default) or SASL_SSL."""

SECURITY_CHOICES: tuple[Security, ...] = ("plaintext", "sasl_ssl")

LISTENER = "SASL_SSL"
"""Name (and protocol) of the client listener of a SASL_SSL cluster."""

CLIENT_MECHANISM = "SCRAM-SHA-512"
"""The mechanism clients are told to use (and the brokers use among themselves)."""

MECHANISMS: tuple[str, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256")
"""Every mechanism the client listener accepts; each user gets a credential for each."""

SCRAM_ITERATIONS = 8192
"""PBKDF2 rounds of the stored credentials (Kafka accepts 4096 to 16384)."""

DEFAULT_USERNAME = "air-exstream"
BROKER_USERNAME = "kafka-broker"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
"""KRaft's ACL authorizer (ACLs live in the cluster's metadata log)."""
CERTIFICATE_HOSTS: tuple[str, ...] = (HOST, "localhost")
CERTIFICATE_LIFETIME = timedelta(days=365)
_CLOCK_SKEW = timedelta(hours=1)

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_DIGESTS = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}


# ---------------------------------------------------------------------------------- users


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramUser:
    """A SCRAM user. The password is a :class:`~pydantic.SecretStr`: ``repr``/``str`` mask it."""

    username: str
    password: SecretStr = field(repr=False)

    def __post_init__(self) -> None:
        check_username(self.username)
        if not self.password.get_secret_value():
            raise CredentialsRefused(f"the SASL password of {self.username!r} is empty")


def check_username(username: str) -> str:
    """``username`` when usable as a SCRAM user in ``--add-scram`` and in a JAAS line: a letter
    or digit, then letters, digits, ``. _ @ -`` (at most 128 characters)."""
    if not _USERNAME.fullmatch(username):
        raise CredentialsRefused(
            f"SASL username {username!r} is not usable by the local cluster: use letters, "
            "digits and . _ @ - (starting with a letter or digit, at most 128 characters)"
        )
    return username


def new_password() -> SecretStr:
    """A random password (192 bits, URL-safe text: no quoting needed anywhere)."""
    return SecretStr(secrets.token_urlsafe(24))


def new_users(client: ScramUser | None) -> tuple[ScramUser, ScramUser]:
    """``(client, broker)``: the given client user or ``air-exstream`` with a random password,
    and the brokers' own user with a random password."""
    client = client or ScramUser(username=DEFAULT_USERNAME, password=new_password())
    if client.username == BROKER_USERNAME:
        raise CredentialsRefused(
            f"{BROKER_USERNAME!r} is the brokers' own user; choose another name"
        )
    return client, ScramUser(username=BROKER_USERNAME, password=new_password())


def component_users(usernames: Sequence[str], *, taken: Sequence[str]) -> tuple[ScramUser, ...]:
    """One SCRAM user with a random password per name in ``usernames`` (the components'
    principals), none of them one of the ``taken`` names (the client's and the brokers')."""
    clash = sorted(set(usernames) & set(taken))
    if clash:
        raise CredentialsRefused(
            f"component user(s) {', '.join(clash)} would be the client's or the brokers' user"
        )
    if len(set(usernames)) != len(usernames):
        raise CredentialsRefused("a component user is named twice")
    return tuple(
        ScramUser(username=check_username(name), password=new_password()) for name in usernames
    )


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """SCRAM's ``SaltedPassword`` (RFC 5802 ``Hi``, i.e. PBKDF2-HMAC) as Kafka computes it: the
    password's UTF-8 bytes, no SASLprep."""
    digest = _DIGESTS.get(mechanism)
    if digest is None:
        raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
    return hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)


def scram_arguments(
    users: Sequence[ScramUser],
    *,
    iterations: int = SCRAM_ITERATIONS,
    salt: Callable[[], bytes] = lambda: secrets.token_bytes(32),
) -> list[str]:
    """``kafka-storage format`` arguments creating every user for every mechanism:
    ``--add-scram SCRAM-SHA-512=[name=...,salt=...,saltedpassword=...,iterations=...]``.

    Only salts and salted passwords are passed (base64), never the password itself; a password
    may therefore hold any character, commas and brackets included."""
    out: list[str] = []
    for user in users:
        for mechanism in MECHANISMS:
            grain = salt()
            derived = salted_password(
                mechanism, user.password.get_secret_value(), grain, iterations
            )
            out += [
                "--add-scram",
                f"{mechanism}=[name={check_username(user.username)},"
                f"salt={_b64(grain)},saltedpassword={_b64(derived)},iterations={iterations}]",
            ]
    return out


def argument_file(args: Sequence[str]) -> str:
    """The text of a Java launcher ``@argfile`` holding ``args`` (one per line, each quoted), so
    that arguments carrying credentials stay out of the process listing."""
    lines = []
    for arg in args:
        if "\n" in arg or "\r" in arg:
            raise ValueError("an argument file cannot hold an argument spanning lines")
        quoted = arg.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'"{quoted}"\n')
    return "".join(lines)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# ---------------------------------------------------------------------------------- TLS


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsMaterial:
    """A throwaway CA and the broker's PEM keystore (its key, its certificate, the CA's)."""

    ca_pem: bytes
    """The CA certificate: what clients trust (``KAFKA_SSL_CAFILE``)."""
    keystore_pem: bytes = field(repr=False)
    """Unencrypted PKCS#8 private key, then the broker certificate and the CA certificate."""


def new_tls_material(
    *,
    now: datetime,
    hosts: Sequence[str] = CERTIFICATE_HOSTS,
    lifetime: timedelta = CERTIFICATE_LIFETIME,
) -> TlsMaterial:
    """A new CA (``CN=air-exstream local Kafka CA``) and a broker certificate it signs, valid
    from an hour before ``now`` (clock skew) for ``lifetime``, naming every one of ``hosts``
    (IP addresses as IP SANs, names as DNS SANs) so clients verifying the hostname accept it."""
    # imported here: every `air-exstream` command loads this module, few of them make certificates
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts:
        raise ValueError("a broker certificate needs at least one host name")
    not_before, not_after = now - _CLOCK_SKEW, now + lifetime

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "air-exstream local Kafka CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            # clientAuth too: a broker is a TLS client of the others
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return TlsMaterial(ca_pem=ca_pem, keystore_pem=key_pem + cert.public_bytes(pem) + ca_pem)


def _san(host: str) -> x509.GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


# ---------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class SecurityFiles:
    """Where a cluster's security material lives: ``<state_dir>/security/`` (mode 0700)."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        return self.directory / "broker-keystore.pem"

    @property
    def password_file(self) -> Path:
        """The client user's password (0600): ``KAFKA_SASL_PASSWORD_FILE``."""
        return self.directory / "client.password"

    @property
    def users_directory(self) -> Path:
        """The component users' passwords, one 0600 file each (directory 0700)."""
        return self.directory / "users"

    def user_password_file(self, username: str) -> Path:
        return self.users_directory / f"{check_username(username)}.password"


def sasl_ssl_properties(
    node: NodePorts, *, files: SecurityFiles, broker: ScramUser, super_users: Sequence[str] = ()
) -> dict[str, str]:
    """The ``server.properties`` settings that turn ``node``'s broker port into a SASL_SSL
    listener (brokers talk to each other through it too), with the ACL authorizer on and
    ``super_users`` (user names) besides the brokers' own; laid over
    :func:`~streams.localkafka.properties.node_properties`. Holds the broker user's password:
    the file it goes to must be private."""
    supers = [BROKER_USERNAME, *(u for u in super_users if u != BROKER_USERNAME)]
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{check_username(broker.username)}" '
        f'password="{_jaas_quotable(broker.password.get_secret_value())}";'
    )
    props = {
        "listeners": f"{LISTENER}://{HOST}:{node.broker},CONTROLLER://{HOST}:{node.controller}",
        "advertised.listeners": f"{LISTENER}://{HOST}:{node.broker}",
        "inter.broker.listener.name": LISTENER,
        # the quorum's port: TLS, and only holders of the broker keystore get in (client
        # certificates required), mapped to the brokers' user, a super user
        "listener.security.protocol.map": f"CONTROLLER:SSL,{LISTENER}:SASL_SSL",
        "listener.name.controller.ssl.client.auth": "required",
        "listener.name.controller.ssl.principal.mapping.rules": f"RULE:^.*$/{BROKER_USERNAME}/",
        "authorizer.class.name": AUTHORIZER,
        "super.users": ";".join(f"User:{check_username(u)}" for u in supers),
        "allow.everyone.if.no.acl.found": "false",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": CLIENT_MECHANISM,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.keystore_file),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca_file),
        "ssl.client.auth": "none",
        "ssl.endpoint.identification.algorithm": "https",
    }
    for mechanism in MECHANISMS:
        props[f"listener.name.{LISTENER.lower()}.{mechanism.lower()}.sasl.jaas.config"] = jaas
    return props


def _jaas_quotable(password: str) -> str:
    # a JAAS value is a quoted string and a properties value treats backslashes as escapes
    if any(c in password for c in '"\\\n\r'):
        raise CredentialsRefused("the broker password cannot hold quotes, backslashes or newlines")
    return password


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSecurity:
    """How clients reach a SASL_SSL cluster, without the password itself (a file names it).
    Recorded in the state file so ``air-exstream kafka status`` can print it."""

    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password_file: str
    ssl_cafile: str
    component_users: tuple[tuple[str, str], ...] = ()
    """``(user name, password file)`` of each component user (ACLs decide what it may do)."""

    @classmethod
    def for_cluster(
        cls, files: SecurityFiles, client: ScramUser, components: Sequence[ScramUser] = ()
    ) -> ClientSecurity:
        return cls(
            security_protocol="SASL_SSL",
            sasl_mechanism=CLIENT_MECHANISM,
            sasl_username=client.username,
            sasl_password_file=str(files.password_file),
            ssl_cafile=str(files.ca_file),
            component_users=tuple(
                (u.username, str(files.user_password_file(u.username))) for u in components
            ),
        )

    def as_user(self, username: str) -> ClientSecurity:
        """The same settings for one of the component users (by name)."""
        for name, password_file in self.component_users:
            if name == username:
                return dataclasses.replace(
                    self, sasl_username=name, sasl_password_file=password_file
                )
        raise CredentialsRefused(f"the cluster has no component user {username!r}")

    def environment(self) -> dict[str, str]:
        """The ``KAFKA_*`` variables :class:`streams.config.KafkaSettings` reads (bootstrap
        servers aside)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.sasl_username,
            "KAFKA_SASL_PASSWORD_FILE": self.sasl_password_file,
            "KAFKA_SSL_CAFILE": self.ssl_cafile,
        }

    def librdkafka_config(self, password: SecretStr) -> dict[str, str]:
        """confluent-kafka settings for the runner's own readiness probe (the environment, which
        :class:`~streams.config.KafkaSettings` would also read, plays no part here)."""
        return {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": password.get_secret_value(),
            "ssl.ca.location": self.ssl_cafile,
        }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password_file": self.sasl_password_file,
            "ssl_cafile": self.ssl_cafile,
        }
        if self.component_users:
            doc["component_users"] = dict(self.component_users)
        return doc

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ClientSecurity:
        users = raw.get("component_users") or {}
        return cls(
            security_protocol=str(raw["security_protocol"]),
            sasl_mechanism=str(raw["sasl_mechanism"]),
            sasl_username=str(raw["sasl_username"]),
            sasl_password_file=str(raw["sasl_password_file"]),
            ssl_cafile=str(raw["ssl_cafile"]),
            component_users=tuple((str(k), str(v)) for k, v in dict(users).items()),
        )
