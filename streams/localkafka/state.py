"""The state file: a started cluster, recorded so another process can report on or stop it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.localkafka.properties import HOST
from streams.localkafka.security import ClientSecurity


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """One running (or last-run) node: its ports, the pid of its JVM and its log file."""

    node_id: int
    broker_port: int
    controller_port: int
    pid: int
    log_file: str

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.broker_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterInfo:
    """A local cluster as recorded in ``<state_dir>/state.json``."""

    cluster_id: str
    state_dir: str
    kafka_version: str
    nodes: tuple[NodeInfo, ...]
    client_security: ClientSecurity | None = None
    """How clients authenticate (SASL_SSL clusters); None: PLAINTEXT."""

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of every node's client listener, comma separated (librdkafka style)."""
        return ",".join(n.bootstrap for n in self.nodes)

    def node(self, node_id: int) -> NodeInfo | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def replace_node(self, node: NodeInfo) -> ClusterInfo:
        nodes = tuple(node if n.node_id == node.node_id else n for n in self.nodes)
        return dataclasses.replace(self, nodes=nodes)

    def add_node(self, node: NodeInfo) -> ClusterInfo:
        return dataclasses.replace(self, nodes=(*self.nodes, node))

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "cluster_id": self.cluster_id,
            "state_dir": self.state_dir,
            "kafka_version": self.kafka_version,
            # redundant with the nodes, written for shell users (`jq -r .bootstrap_servers`)
            "bootstrap_servers": self.bootstrap_servers,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "broker_port": n.broker_port,
                    "controller_port": n.controller_port,
                    "pid": n.pid,
                    "log_file": n.log_file,
                }
                for n in self.nodes
            ],
        }
        if self.client_security is not None:
            doc["client_security"] = self.client_security.to_dict()
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        raw = json.loads(text)
        return cls(
            cluster_id=raw["cluster_id"],
            state_dir=raw["state_dir"],
            kafka_version=raw.get("kafka_version", "unknown"),
            nodes=tuple(
                NodeInfo(
                    node_id=int(n["node_id"]),
                    broker_port=int(n["broker_port"]),
                    controller_port=int(n["controller_port"]),
                    pid=int(n["pid"]),
                    log_file=str(n["log_file"]),
                )
                for n in raw["nodes"]
            ),
            client_security=(
                ClientSecurity.from_dict(raw["client_security"])
                if raw.get("client_security")
                else None
            ),
        )


def read_state(path: Path) -> ClusterInfo | None:
    """The recorded cluster, or None when there is no (readable) state file."""
    try:
        return ClusterInfo.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # a torn or hand-edited file describes no processes we could safely signal
        return None


def write_state(path: Path, info: ClusterInfo) -> None:
    """Replace the state file atomically, so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)
