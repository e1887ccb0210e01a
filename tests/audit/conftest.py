"""An audit trail on the real broker: its two topics (a prefixed copy of the topology's), a key
pair, the writer's real chaining and signing, and ``audit verify`` as an operator runs it."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streams.audit.checkpoints import CheckpointPolicy, CheckpointSigner
from streams.audit.cli import audit as audit_cli
from streams.audit.keys import KeyPair, generate, signing_key_from_environment
from tests.audit.forgery import TrailWriter
from tests.conftest import KafkaCluster
from topology import names
from topology.apply import apply_topology
from topology.model import Topology, load_topology

CLOCK_SKEW_S = 0.5
"""One host: the writer's clock is the broker's."""


@dataclass
class Trail:
    kafka: KafkaCluster
    topology: Topology
    keys: KeyPair
    writer: TrailWriter

    @property
    def audit_topic(self) -> str:
        return self.topology.name(names.AUDIT)

    @property
    def checkpoints_topic(self) -> str:
        return self.topology.name(names.AUDIT_CHECKPOINTS)

    def verify(self, *extra: str, signed: bool = True) -> Result:
        """``air-exstream audit verify`` on this trail (with the public key unless not
        ``signed``)."""
        args = [
            "verify",
            "--bootstrap-servers",
            self.kafka.bootstrap_servers,
            "--prefix",
            self.topology.prefix,
            "--clock-skew-s",
            str(CLOCK_SKEW_S),
        ]
        if signed:
            args += ["--public-key", str(self.keys.public_file)]
        return CliRunner().invoke(audit_cli, [*args, *extra])

    def recreate(self, *logical: str) -> None:
        """Delete the topics and create them again, empty, as an attacker with ordinary client
        access to a cluster without ACLs can."""
        admin = self.kafka.admin()
        chosen = [self.topology.name(n) for n in logical]
        for future in admin.delete_topics(chosen).values():
            future.result(30)
        _create(admin, self.kafka, _only(self.topology, logical))


def _only(topology: Topology, logical: tuple[str, ...] | list[str]) -> Topology:
    return dataclasses.replace(topology, topics=tuple(topology.topic(n) for n in logical))


def _create(admin: AdminClient, kafka: KafkaCluster, topology: Topology) -> None:
    """Create the topics, retrying while a deleted topic of the same name is still going."""
    deadline = time.monotonic() + 60
    while True:
        gone = not set(topology.names) & set(admin.list_topics(timeout=10).topics)
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    while True:
        try:
            apply_topology(kafka.client_config(), topology)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def trail_factory(kafka: KafkaCluster, tmp_path: Path) -> Iterator[Callable[..., Trail]]:
    """``create(**policy) -> Trail``: fresh audit and checkpoints topics, a new key pair, and a
    writer signing partition 0 with ``CheckpointPolicy(**policy)`` (by record count only unless
    ``every_ms`` is given, so that tests know which heads are signed)."""

    def create(**policy: int) -> Trail:
        policy.setdefault("every_ms", 10**9)
        topology = load_topology("local", prefix=f"at{uuid.uuid4().hex[:8]}.")
        _create(kafka.admin(), kafka, _only(topology, [names.AUDIT, names.AUDIT_CHECKPOINTS]))
        keys = generate(tmp_path / f"{topology.prefix}key", tmp_path / f"{topology.prefix}pub")
        key = signing_key_from_environment(
            {"AIR_EXSTREAM_AUDIT_SIGNING_KEY_FILE": str(keys.private_file)}
        )
        assert key is not None
        signer = CheckpointSigner(key, keys.key_id, CheckpointPolicy(**policy))
        writer = TrailWriter(
            kafka.client_config(),
            topology.name(names.AUDIT),
            topology.name(names.AUDIT_CHECKPOINTS),
            signer,
        )
        writers.append(writer)
        return Trail(kafka, topology, keys, writer)

    writers: list[TrailWriter] = []
    yield create
    for writer in writers:
        writer.close()
