"""One SASL_SSL local cluster (ACLs enforced, a user per component) for the tests of this
package that need one: started once, on first use, and stopped after the package's last test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import cli
from streams.config import KafkaSettings
from streams.localkafka import LocalKafka
from topology.acls import Acls, load_acls
from topology.model import load_topology


@dataclass(frozen=True)
class SecureCluster:
    local: LocalKafka
    env: dict[str, str]
    """The ``export`` lines of ``air-exstream kafka status``: the admin (a super user)."""
    status_output: str
    password: str
    """The client password, read from the file the cluster wrote (tests only)."""
    broker_password: str
    acls: Acls
    """The principals of ``topology/acls.toml`` (unprefixed topology), each a user here."""

    @property
    def secrets(self) -> tuple[str, str]:
        return self.password, self.broker_password

    def env_of(self, role: str) -> dict[str, str]:
        """The ``KAFKA_*`` variables of the component ``role`` (``sink``, ``routing-worker``...)."""
        info = self.local.info()
        assert info is not None
        assert info.client_security is not None
        user = self.acls.principal(role).user
        return {"KAFKA_BOOTSTRAP_SERVERS": info.bootstrap_servers} | (
            info.client_security.as_user(user).environment()
        )

    def config_of(self, role: str) -> dict[str, str]:
        """confluent-kafka settings of the component ``role``, as the project builds them."""
        return settings_from(self.env_of(role)).confluent_config()

    def admin_config(self) -> dict[str, str]:
        return settings_from(self.env).confluent_config()


def settings_from(env: dict[str, str]) -> KafkaSettings:
    """The settings a client builds from exactly these variables (nothing else of the
    environment: the field names are given explicitly)."""
    return KafkaSettings(
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        security_protocol=env["KAFKA_SECURITY_PROTOCOL"],  # type: ignore[arg-type]
        sasl_mechanism=env["KAFKA_SASL_MECHANISM"],  # type: ignore[arg-type]
        sasl_username=env["KAFKA_SASL_USERNAME"],
        sasl_password_file=Path(env["KAFKA_SASL_PASSWORD_FILE"]),
        ssl_cafile=Path(env["KAFKA_SSL_CAFILE"]),
    )


@pytest.fixture(scope="package")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    state = tmp_path_factory.mktemp("sasl-ssl") / "state"
    acls = load_acls(load_topology("local"))
    users = [p.user for p in acls.principals if not p.super_user]
    local = LocalKafka(state, security="sasl_ssl", component_users=users, die_with_parent=True)
    local.start()
    try:
        status = CliRunner().invoke(cli, ["kafka", "status", "--state-dir", str(state)])
        assert status.exit_code == 0, status.output
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in status.output.splitlines()
            if line.startswith("export ")
        )
        password = Path(env["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
        properties = (state / "node-1" / "server.properties").read_text()
        broker_password = properties.split('password="', 1)[1].split('"', 1)[0]
        yield SecureCluster(local, env, status.output, password, broker_password, acls)
    finally:
        local.stop()
