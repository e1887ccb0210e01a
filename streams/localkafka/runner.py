"""Provision, start and stop a real Apache Kafka broker (KRaft) on this host.

The broker's jars come from Maven Central through the committed ``pom.xml`` and are cached per
version under the user's cache directory, so only the first start downloads anything. A cluster
lives in a state directory (``.kafka-local/`` by default) holding each node's data, logs and a
``state.json`` that lets another process report on or stop it. ``stop`` only ever signals the
processes this runner started: a pid is trusted only while its command line still names
``kafka.Kafka`` and this state directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from streams.localkafka.errors import (
    BrokerStartFailed,
    DownloadFailed,
    JavaMissing,
    LocalKafkaError,
    MavenMissing,
    PortInUse,
)
from streams.localkafka.properties import HOST, LOG4J2, NodePorts, node_properties, render

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).with_name("pom.xml")
DEFAULT_STATE_DIR = Path(".kafka-local")
JVM_FLAGS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: int
    broker_port: int
    controller_port: int
    pid: int
    log_file: str


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    cluster_id: str
    state_dir: str
    nodes: tuple[NodeInfo, ...]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{n.broker_port}" for n in self.nodes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterInfo:
        raw = json.loads(text)
        return cls(
            cluster_id=raw["cluster_id"],
            state_dir=raw["state_dir"],
            nodes=tuple(NodeInfo(**n) for n in raw["nodes"]),
        )


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "air-exstream" / f"kafka-{KAFKA_VERSION}"


def java_major_version() -> int:
    java = shutil.which("java")
    if java is None:
        raise JavaMissing(
            "Java 17+ is needed to run the local Kafka broker and `java` is not on PATH. "
            "Install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) or set "
            "KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=30
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise JavaMissing(f"could not read the Java version from: {out.stderr.strip()[:200]}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    return major


def resolve_jars(target: Path | None = None) -> Path:
    """The directory of broker jars, downloading them through Maven on first use.

    The download goes into a temporary directory that is renamed into place only when Maven
    succeeded, so an interrupted download never leaves a half-filled cache behind.
    """
    libs = (target or cache_dir()) / "libs"
    if any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MavenMissing(
            "Maven is needed once to download the Kafka broker's jars from Maven Central and "
            "`mvn` is not on PATH. Install it (e.g. `apt-get install maven`) or set "
            "KAFKA_BOOTSTRAP_SERVERS to use an existing cluster."
        )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    try:
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if proc.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise DownloadFailed(
                "downloading the Kafka broker jars from Maven Central failed:\n  "
                + "\n  ".join(tail)
            )
        if libs.exists():  # another process won the race; keep theirs
            return libs
        staging.rename(libs)
        return libs
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Brokers started by this process, kept so they are reaped (not left as zombies) when stopped."""


def _pid_is_ours(pid: int, state_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "kafka.Kafka" in cmdline and str(state_dir.resolve()) in cmdline


class LocalKafka:
    """One local cluster of 1 or 3 combined broker/controller nodes.

    ``start()`` is idempotent: when the state directory already describes a running cluster it
    returns that cluster's info. ``stop()`` terminates exactly the processes recorded in it.
    """

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        nodes: int = 1,
        ports: list[tuple[int, int]] | None = None,
        extra_properties: dict[str, str] | None = None,
    ) -> None:
        if nodes not in (1, 3):
            raise LocalKafkaError(f"a local cluster has 1 or 3 nodes, not {nodes}")
        self.state_dir = Path(state_dir).resolve()
        self.nodes = nodes
        self._ports = ports
        self._extra = extra_properties or {}

    # ------------------------------------------------------------------ state file

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def info(self) -> ClusterInfo | None:
        """The recorded cluster, if any (whether or not its processes still run)."""
        if not self.state_file.exists():
            return None
        return ClusterInfo.from_json(self.state_file.read_text())

    def running_nodes(self) -> list[NodeInfo]:
        info = self.info()
        if info is None:
            return []
        return [n for n in info.nodes if _pid_is_ours(n.pid, self.state_dir)]

    def _write_state(self, info: ClusterInfo) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(info.to_json())
        tmp.replace(self.state_file)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ClusterInfo:
        info = self.info()
        if info is not None and len(self.running_nodes()) == len(info.nodes):
            return info
        if info is not None:
            self.stop()  # a partial or dead cluster: start afresh
        major = java_major_version()
        if major < 17:
            raise JavaMissing(f"Java 17+ is needed to run Kafka {KAFKA_VERSION}; found {major}")
        libs = resolve_jars()
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        self.state_dir.mkdir(parents=True)
        ports = self._choose_ports()
        all_ports = [NodePorts(i + 1, b, c) for i, (b, c) in enumerate(ports)]
        cluster_id = self._java(libs, ["kafka.tools.StorageTool", "random-uuid"]).strip()
        cluster_id = cluster_id.splitlines()[-1]
        (self.state_dir / "log4j2.properties").write_text(LOG4J2)
        for node in all_ports:
            self._format(libs, node, all_ports, cluster_id)
        started = tuple(self._launch(libs, node) for node in all_ports)
        info = ClusterInfo(cluster_id=cluster_id, state_dir=str(self.state_dir), nodes=started)
        self._write_state(info)
        try:
            self._wait_ready(info, {n.node_id for n in started})
        except BaseException:
            self.stop()
            raise
        return info

    def stop(self) -> int:
        """Stop every node this state directory started; returns how many were running."""
        info = self.info()
        if info is None:
            return 0
        running = [n for n in info.nodes if _pid_is_ours(n.pid, self.state_dir)]
        for node in running:
            self._terminate(node)
        self.state_file.unlink(missing_ok=True)
        return len(running)

    def stop_node(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node (SIGTERM, or SIGKILL with ``kill``) and leave the others running."""
        node = self._node(node_id)
        if _pid_is_ours(node.pid, self.state_dir):
            self._terminate(node, sig=signal.SIGKILL if kill else signal.SIGTERM)

    def start_node(self, node_id: int) -> ClusterInfo:
        """Restart a stopped node with its existing data; waits until it has joined again."""
        info = self.info()
        if info is None:
            raise LocalKafkaError("no cluster recorded in " + str(self.state_dir))
        node = self._node(node_id)
        if _pid_is_ours(node.pid, self.state_dir):
            return info
        libs = resolve_jars()
        restarted = self._launch(libs, NodePorts(node_id, node.broker_port, node.controller_port))
        info = ClusterInfo(
            cluster_id=info.cluster_id,
            state_dir=info.state_dir,
            nodes=tuple(restarted if n.node_id == node_id else n for n in info.nodes),
        )
        self._write_state(info)
        self._wait_ready(info, {n.node_id for n in info.nodes})
        return info

    # ------------------------------------------------------------------ internals

    def _node(self, node_id: int) -> NodeInfo:
        info = self.info()
        for node in info.nodes if info else ():
            if node.node_id == node_id:
                return node
        raise LocalKafkaError(f"node {node_id} is not part of the cluster in {self.state_dir}")

    def _choose_ports(self) -> list[tuple[int, int]]:
        if self._ports is None:
            return [(free_port(), free_port()) for _ in range(self.nodes)]
        if len(self._ports) != self.nodes:
            raise LocalKafkaError(
                f"{self.nodes} nodes need {self.nodes} (broker, controller) pairs"
            )
        for pair in self._ports:
            for port in pair:
                if not port_is_free(port):
                    raise PortInUse(
                        f"port {port} on {HOST} is already in use; stop what holds it or choose "
                        "other ports (omit them to pick free ones)"
                    )
        return list(self._ports)

    def _node_dir(self, node_id: int) -> Path:
        return self.state_dir / f"node-{node_id}"

    def _format(self, libs: Path, node: NodePorts, nodes: list[NodePorts], cluster_id: str) -> None:
        node_dir = self._node_dir(node.node_id)
        (node_dir / "data").mkdir(parents=True)
        props = node_properties(node, nodes=nodes, log_dir=node_dir / "data", extra=self._extra)
        (node_dir / "server.properties").write_text(render(props))
        args = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"]
        args.append(str(node_dir / "server.properties"))
        if len(nodes) == 1:
            args.append("--standalone")
        self._java(libs, args)

    def _java(self, libs: Path, args: list[str]) -> str:
        log_cfg = self.state_dir / "log4j2.properties"
        cmd = ["java", "-cp", f"{libs}/*"]
        if log_cfg.exists():
            tool_log = self.state_dir / "tools.log"
            cmd += [f"-Dlog4j2.configurationFile={log_cfg}", f"-Dkafka.logs.file={tool_log}"]
        proc = subprocess.run(
            [*cmd, *args], capture_output=True, text=True, check=False, timeout=120
        )
        if proc.returncode != 0:
            raise BrokerStartFailed(
                f"`{' '.join(args[:2])}` failed: {(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        return proc.stdout

    def _launch(self, libs: Path, node: NodePorts) -> NodeInfo:
        node_dir = self._node_dir(node.node_id)
        log_file = node_dir / "server.log"
        console = node_dir / "console.log"
        cmd = [
            "java",
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.file={log_file}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(node_dir / "server.properties"),
        ]
        with console.open("ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _CHILDREN[proc.pid] = proc
        return NodeInfo(node.node_id, node.broker, node.controller, proc.pid, str(log_file))

    def _wait_ready(self, info: ClusterInfo, expected: set[int]) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + START_TIMEOUT_S
        admin = AdminClient({"bootstrap.servers": info.bootstrap_servers, "log_level": 0})
        while time.monotonic() < deadline:
            for node in info.nodes:
                if node.node_id in expected and not _pid_is_ours(node.pid, self.state_dir):
                    raise BrokerStartFailed(
                        f"Kafka node {node.node_id} exited during startup. Last log lines:\n"
                        + _tail(Path(node.log_file))
                        + _tail(Path(node.log_file).with_name("console.log"))
                    )
            try:
                meta = admin.list_topics(timeout=2)
                if expected <= set(meta.brokers):
                    return
            except Exception:  # noqa: BLE001, S110 - not reachable yet; retried until the deadline
                pass
            time.sleep(0.3)
        raise BrokerStartFailed(
            f"Kafka did not serve requests within {START_TIMEOUT_S:.0f} s; see the logs in "
            f"{self.state_dir}"
        )

    def _terminate(self, node: NodeInfo, sig: signal.Signals = signal.SIGTERM) -> None:
        try:
            os.kill(node.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _pid_is_ours(node.pid, self.state_dir) or _is_zombie(node.pid):
                _reap(node.pid)
                return
            time.sleep(0.2)
        os.kill(node.pid, signal.SIGKILL)
        _reap(node.pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=STOP_TIMEOUT_S)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join(text) + "\n"


@contextmanager
def running_cluster(state_dir: Path | str, *, nodes: int = 1) -> Iterator[ClusterInfo]:
    """A local cluster for the duration of a ``with`` block."""
    kafka = LocalKafka(state_dir, nodes=nodes)
    info = kafka.start()
    try:
        yield info
    finally:
        kafka.stop()
