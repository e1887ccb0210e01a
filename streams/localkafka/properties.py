"""server.properties for one or three KRaft nodes on one host: pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class NodePorts:
    node_id: int
    broker: int
    controller: int


def node_properties(
    node: NodePorts, *, nodes: list[NodePorts], log_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The settings of ``node`` in a cluster of ``nodes`` (one combined broker/controller each).

    One node bootstraps its quorum from itself (formatted with ``--standalone``); three nodes use
    a static voter list (formatted without it). Internal topics get replication 3 and min ISR 2
    on three nodes so that losing one node keeps transactions and group offsets available.
    """
    size = len(nodes)
    replication = "3" if size >= 3 else "1"
    min_isr = "2" if size >= 3 else "1"
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
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.flush.interval.messages": "9223372036854775807",
        "unclean.leader.election.enable": "false",
    }
    if size == 1:
        props["controller.quorum.bootstrap.servers"] = f"{HOST}:{node.controller}"
    else:
        props["controller.quorum.voters"] = ",".join(
            f"{n.node_id}@{HOST}:{n.controller}" for n in nodes
        )
    props.update(extra or {})
    return props


def render(props: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


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
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
"""log4j2 configuration (properties format, needs no extra jars): one log file per node."""
