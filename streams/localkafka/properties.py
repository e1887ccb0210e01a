"""What a local KRaft node is configured with: pure functions, no I/O.

Every node is a combined broker and controller on the loopback interface. One node bootstraps its
quorum from itself (formatted with ``--standalone``); three nodes share a static voter list and the
same cluster id (formatted without it).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
"""Local clusters listen on loopback only."""


@dataclass(frozen=True, slots=True)
class NodePorts:
    node_id: int
    broker: int
    controller: int


def node_properties(
    node: NodePorts, *, nodes: list[NodePorts], log_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The ``server.properties`` settings of ``node`` in a cluster of ``nodes``.

    With three nodes the internal topics (group offsets, transaction state, share-group state)
    get replication factor 3 and min ISR 2, and new topics default to three replicas, so that
    losing one node keeps transactions, group offsets and acks=all producers available.
    ``extra`` overrides any setting.
    """
    if node not in nodes:
        raise ValueError(f"node {node.node_id} is not one of the cluster's nodes")
    replicated = len(nodes) >= 3
    replication = "3" if replicated else "1"
    min_isr = "2" if replicated else "1"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "listeners": f"PLAINTEXT://{HOST}:{node.broker},CONTROLLER://{HOST}:{node.controller}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{node.broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": replication,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # tests start consumers right after the broker; the default 3 s delay only slows them
        "group.initial.rebalance.delay.ms": "0",
        # a typo in a topic name should fail loudly instead of creating a new topic
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
    }
    if replicated:
        props["controller.quorum.voters"] = ",".join(
            f"{n.node_id}@{HOST}:{n.controller}" for n in nodes
        )
    else:
        props["controller.quorum.bootstrap.servers"] = f"{HOST}:{node.controller}"
    props.update(extra or {})
    return props


def render(props: dict[str, str]) -> str:
    """Java properties text, one ``key=value`` line per setting, in the given order."""
    for key, value in props.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise ValueError(f"setting {key!r} cannot be written as one properties line")
    return "".join(f"{k}={v}\n" for k, v in props.items())


def cluster_id_text(raw: bytes) -> str | None:
    """Kafka's text form of a 16-byte Uuid (URL-safe base64, unpadded), as ``StorageTool
    random-uuid`` prints it; None for the values Kafka itself never hands out (all zeros, or text
    starting with ``-`` which its command lines would read as an option)."""
    if len(raw) != 16:
        raise ValueError("a Kafka Uuid has 16 bytes")
    if raw == bytes(16):
        return None
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return None if text.startswith("-") else text


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = file
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
"""log4j2 configuration (properties format, needs no extra jars): one log file per JVM, named by
the ``kafka.logs.file`` system property."""
