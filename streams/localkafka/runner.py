"""Start and stop a real Apache Kafka cluster (KRaft, 1 or 3 nodes) on this host.

A cluster lives in a state directory (``.kafka-local/`` by default): each node's configuration,
data and logs, and ``state.json`` (pids, ports, bootstrap servers) that lets another process
report on or stop it. Only directories this runner created (or empty ones) are used; it never
wipes anything else. ``stop`` signals only the processes this runner started (see
:mod:`streams.localkafka.processes`). Concurrent calls on one state directory are serialized by a
lock file. A cluster started with ``security="sasl_ssl"`` also keeps its CA, broker keystore and
client password in ``<state_dir>/security/`` (see :mod:`streams.localkafka.security`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from streams.localkafka import processes
from streams.localkafka.errors import BrokerStartFailed, LocalKafkaError, StateDirRefused
from streams.localkafka.processes import log_excerpt, tail
from streams.localkafka.properties import (
    LOG4J2,
    NodePorts,
    cluster_id_text,
    node_properties,
    render,
)
from streams.localkafka.provision import KAFKA_VERSION, check_java, resolve_jars
from streams.localkafka.security import (
    SECURITY_CHOICES,
    ClientSecurity,
    ScramUser,
    Security,
    SecurityFiles,
    argument_file,
    component_users,
    new_tls_material,
    new_users,
    sasl_ssl_properties,
    scram_arguments,
)
from streams.localkafka.security_files import read_password, write_private, write_security_files
from streams.localkafka.state import ClusterInfo, NodeInfo, read_state, write_state

__all__ = ["DEFAULT_STATE_DIR", "KAFKA_VERSION", "LocalKafka", "running_cluster"]

DEFAULT_STATE_DIR = Path(".kafka-local")
JVM_FLAGS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")
# StorageTool runs for a second: the C1 compiler alone and a serial GC start it faster and leave
# the CPU to the other nodes' tools running in parallel
TOOL_JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
_MARKER = ".air-exstream-kafka"
_OWN_FILES = ("state.json", "state.json.tmp", "log4j2.properties", "tools.log")
_SECURITY_DIR = "security"


@dataclass(frozen=True, slots=True, kw_only=True)
class _SaslSsl:
    """One fresh start's SASL_SSL set-up: files written, users to create, what clients use."""

    files: SecurityFiles
    client: ScramUser
    broker: ScramUser
    components: tuple[ScramUser, ...]
    client_security: ClientSecurity

    @property
    def users(self) -> list[ScramUser]:
        return [self.client, self.broker, *self.components]


class LocalKafka:
    """One local cluster of 1 or 3 combined broker/controller nodes in ``state_dir``.

    ``start()`` is idempotent: when ``state_dir`` already describes a fully running cluster it
    returns that cluster unchanged (whatever ``nodes`` and ``security`` say). A recorded cluster
    that is only partly running (or not at all) is stopped and replaced by a fresh, empty one.
    ``stop()`` keeps the data and logs for inspection; the next ``start()`` reformats. Also a
    context manager: ``with LocalKafka(path) as info:`` starts, then stops on exit.
    """

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        nodes: int = 1,
        ports: list[tuple[int, int]] | None = None,
        extra_properties: dict[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        die_with_parent: bool = False,
        security: Security = "plaintext",
        client_user: ScramUser | None = None,
        component_users: Sequence[str] = (),
    ) -> None:
        """``ports``: one ``(broker, controller)`` pair per node; free ones are picked when omitted.
        ``extra_properties`` are added to (or override) every node's ``server.properties``.
        ``die_with_parent``: each node gets SIGTERM when the thread that launched it ends (its
        process dying by any means, SIGKILL included; Linux, through util-linux ``setpriv``;
        ignored where that is missing). For test sessions, so a killed run leaves no broker
        behind; not for ``kafka up``, whose process exits right after starting the cluster.
        ``security="sasl_ssl"``: clients (and the brokers among themselves) connect over SASL_SSL
        (SCRAM-SHA-512, TLS with a CA made for this cluster; see
        :mod:`streams.localkafka.security`) as ``client_user``, or as ``air-exstream`` with a
        random password kept in a 0600 file; ``info().client_security`` says what to use. That
        cluster enforces ACLs (KRaft's StandardAuthorizer), the client user being a super user;
        ``component_users`` (user names: the principals of ``topology/acls.toml``) are created
        too, each with a random password in a 0600 file, and may do what their ACLs allow."""
        if nodes not in (1, 3):
            raise LocalKafkaError(f"a local cluster has 1 or 3 nodes, not {nodes}")
        if ports is not None and len(ports) != nodes:
            raise LocalKafkaError(f"{nodes} node(s) need {nodes} (broker, controller) port pairs")
        if security not in SECURITY_CHOICES:
            raise LocalKafkaError(
                f"security is one of {', '.join(SECURITY_CHOICES)}, not {security}"
            )
        if (client_user is not None or component_users) and security != "sasl_ssl":
            raise LocalKafkaError("SASL users need security='sasl_ssl'")
        self.state_dir = Path(state_dir).resolve()
        self.nodes = nodes
        self._ports = ports
        self._extra = dict(extra_properties or {})
        self._start_timeout_s = start_timeout_s
        self._die_with_parent = die_with_parent
        self.security: Security = security
        self._client_user = client_user
        self._component_users = tuple(component_users)

    # ------------------------------------------------------------------ reading state

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def info(self) -> ClusterInfo | None:
        """The recorded cluster, if any, whether or not its processes still run."""
        return read_state(self.state_file)

    def running_nodes(self) -> list[NodeInfo]:
        """The recorded nodes whose JVM is still running (and provably ours)."""
        info = self.info()
        if info is None:
            return []
        return [n for n in info.nodes if self._alive(n)]

    def is_running(self) -> bool:
        """True when a cluster is recorded and every one of its nodes runs."""
        info = self.info()
        return info is not None and len(self.running_nodes()) == len(info.nodes)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ClusterInfo:
        """Start the cluster and return once every node serves metadata requests.

        Raises JavaMissing/JavaTooOld, MavenMissing, DownloadFailed, PortInUse, StateDirRefused,
        or BrokerStartFailed (with the tail of the failing node's log); on failure every node
        started by this call has been stopped again.
        """
        self._check_ownership()
        with self._locked():
            info = self.info()
            if info is not None and all(self._alive(n) for n in info.nodes):
                return info
            if info is not None:
                self._stop_recorded(info)
            java = check_java()
            libs = resolve_jars()
            attempts = 3 if self._ports is None else 1
            for attempt in range(1, attempts + 1):
                try:
                    return self._start_fresh(java, libs)
                except BrokerStartFailed as exc:
                    # a picked port taken by someone else before the JVM bound it: pick again
                    if not exc.port_conflict or attempt == attempts:
                        raise
            raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_fresh(self, java: str, libs: Path) -> ClusterInfo:
        """Format and launch a new cluster in the (locked) state directory; wait until ready."""
        self._clean()
        layout = self._layout()
        cluster_id = _new_cluster_id()
        (self.state_dir / "log4j2.properties").write_text(LOG4J2)
        sasl_ssl = self._new_sasl_ssl() if self.security == "sasl_ssl" else None
        self._format_all(java, libs, layout, cluster_id, sasl_ssl)
        info = ClusterInfo(
            cluster_id=cluster_id,
            state_dir=str(self.state_dir),
            kafka_version=KAFKA_VERSION,
            nodes=(),
            client_security=sasl_ssl.client_security if sasl_ssl else None,
        )
        try:
            for node in layout:
                # recorded one by one, so a failure (or `kafka down`) midway finds them all
                info = info.add_node(self._launch(java, libs, node))
                write_state(self.state_file, info)
            self._wait_ready(info, expected=[n.node_id for n in info.nodes])
        except BaseException:
            self._stop_recorded(info)
            raise
        return info

    def stop(self) -> int:
        """Stop every node of the recorded cluster (SIGTERM to all, SIGKILL after 30 s) and forget
        it. Returns how many nodes were running. Data and logs stay until the next start."""
        if not self.state_file.exists():
            return 0
        with self._locked():
            info = self.info()
            return 0 if info is None else self._stop_recorded(info)

    def stop_node(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node (SIGTERM, or SIGKILL with ``kill``) and leave the others running."""
        with self._locked():
            _, node = self._recorded_node(node_id)
            processes.stop_processes(
                [(node.pid, self._properties(node_id))],
                timeout_s=STOP_TIMEOUT_S,
                sig=signal.SIGKILL if kill else signal.SIGTERM,
            )

    def pause_node(self, node_id: int) -> None:
        """Freeze one node (SIGSTOP): its connections stay open and nothing it is asked is
        answered, as with a broker stuck in a long GC pause or on a frozen host. Undo with
        :meth:`resume_node`."""
        self._signal_node(node_id, signal.SIGSTOP)

    def resume_node(self, node_id: int) -> None:
        """Let a node frozen by :meth:`pause_node` run again (SIGCONT)."""
        self._signal_node(node_id, signal.SIGCONT)

    def _signal_node(self, node_id: int, sig: signal.Signals) -> None:
        with self._locked():
            _, node = self._recorded_node(node_id)
            if not self._alive(node):
                raise LocalKafkaError(f"node {node_id} is not running (pid {node.pid})")
            os.kill(node.pid, sig)

    def start_node(self, node_id: int) -> ClusterInfo:
        """Start a stopped node again on its old ports and data; returns once the cluster's
        metadata lists every node again. A node that is running is left alone."""
        with self._locked():
            info, node = self._recorded_node(node_id)
            if self._alive(node):
                return info
            processes.require_free([node.broker_port, node.controller_port])
            java = check_java()
            restarted = self._launch(
                java, resolve_jars(), NodePorts(node_id, node.broker_port, node.controller_port)
            )
            info = info.replace_node(restarted)
            write_state(self.state_file, info)
            self._wait_ready(info, expected=[n.node_id for n in info.nodes])
            return info

    def __enter__(self) -> ClusterInfo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ state directory

    def _check_ownership(self) -> None:
        """Refuse a non-empty directory this runner did not create: start() deletes old data."""
        if not self.state_dir.exists() or (self.state_dir / _MARKER).exists():
            return
        if self.state_file.exists() or any(self.state_dir.glob("node-*/server.properties")):
            return  # made by an earlier version of this runner, before the marker file
        if not self.state_dir.is_dir() or any(self.state_dir.iterdir()):
            raise StateDirRefused(
                f"{self.state_dir} is not empty and was not created by `air-exstream kafka up`; "
                "the local cluster replaces the data in its state directory, so choose another "
                "--state-dir (or empty this one)"
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / _MARKER).touch()
        gitignore = self.state_dir / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# local Kafka data and logs, never committed\n*\n")
        with (self.state_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _clean(self) -> None:
        for node_dir in self.state_dir.glob("node-*"):
            shutil.rmtree(node_dir)
        shutil.rmtree(self.state_dir / _SECURITY_DIR, ignore_errors=True)
        for name in _OWN_FILES:
            (self.state_dir / name).unlink(missing_ok=True)

    def _node_dir(self, node_id: int) -> Path:
        return self.state_dir / f"node-{node_id}"

    def _properties(self, node_id: int) -> Path:
        return self._node_dir(node_id) / "server.properties"

    # ------------------------------------------------------------------ nodes

    def _layout(self) -> list[NodePorts]:
        if self._ports is None:
            flat = processes.pick_free_ports(2 * self.nodes)
            pairs = list(zip(flat[::2], flat[1::2], strict=True))
        else:
            pairs = list(self._ports)
            processes.require_free(port for pair in pairs for port in pair)
        return [NodePorts(i + 1, broker, ctl) for i, (broker, ctl) in enumerate(pairs)]

    def _new_sasl_ssl(self) -> _SaslSsl:
        """New CA, broker certificate and passwords for a fresh SASL_SSL cluster, on disk."""
        files = SecurityFiles(self.state_dir / _SECURITY_DIR)
        client, broker = new_users(self._client_user)
        components = component_users(
            self._component_users, taken=[client.username, broker.username]
        )
        write_security_files(files, new_tls_material(now=datetime.now(UTC)), client, components)
        return _SaslSsl(
            files=files,
            client=client,
            broker=broker,
            components=components,
            client_security=ClientSecurity.for_cluster(files, client, components),
        )

    def _format_all(
        self,
        java: str,
        libs: Path,
        layout: list[NodePorts],
        cluster_id: str,
        sasl_ssl: _SaslSsl | None,
    ) -> None:
        """Write each node's server.properties and format its storage (in parallel). For
        SASL_SSL, the format also creates the SCRAM users; its arguments (salted credentials)
        go through a private ``@argfile``, removed afterwards, so no process listing shows them."""
        argfiles: list[Path] = []
        try:
            failures = self._format_nodes(java, libs, layout, cluster_id, sasl_ssl, argfiles)
        finally:
            for argfile in argfiles:
                argfile.unlink(missing_ok=True)
        if failures:
            raise BrokerStartFailed(
                "formatting the Kafka storage failed (`kafka.tools.StorageTool format`):\n"
                + "\n".join(failures)
            )

    def _format_nodes(
        self,
        java: str,
        libs: Path,
        layout: list[NodePorts],
        cluster_id: str,
        sasl_ssl: _SaslSsl | None,
        argfiles: list[Path],
    ) -> list[str]:
        """Run the format of every node in parallel; returns what failed, node by node."""
        running: list[tuple[int, subprocess.Popen[str]]] = []
        for node in layout:
            node_dir = self._node_dir(node.node_id)
            (node_dir / "data").mkdir(parents=True)
            extra = self._extra
            if sasl_ssl is not None:
                secure = sasl_ssl_properties(
                    node,
                    files=sasl_ssl.files,
                    broker=sasl_ssl.broker,
                    super_users=[sasl_ssl.client.username],
                )
                extra = {**secure, **self._extra}
            props = node_properties(node, nodes=layout, log_dir=node_dir / "data", extra=extra)
            # private: with SASL_SSL it holds the brokers' own password
            write_private(self._properties(node.node_id), render(props))
            main = "kafka.tools.StorageTool"
            args = ["format", "-t", cluster_id, "-c", str(self._properties(node.node_id))]
            if len(layout) == 1:
                args.append("--standalone")
            base = self._java_cmd(java, libs, node_dir / "format.log", main)
            if sasl_ssl is not None:
                argfile = node_dir / "format.args"
                users = scram_arguments(sasl_ssl.users)
                write_private(argfile, argument_file([main, *args, *users]))
                argfiles.append(argfile)
                base, args = base[:-1], [f"@{argfile}"]
            proc = subprocess.Popen(
                [base[0], *TOOL_JVM_FLAGS, *base[1:], *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            running.append((node.node_id, proc))
        failures = []
        for node_id, proc in running:
            output, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                failures.append(f"node {node_id}:\n  " + "\n  ".join(output.splitlines()[-15:]))
        return failures

    def _java_cmd(self, java: str, libs: Path, log_file: Path, main: str) -> list[str]:
        return [
            java,
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.file={log_file}",
            "-cp",
            f"{libs}/*",
            main,
        ]

    def _launch(self, java: str, libs: Path, node: NodePorts) -> NodeInfo:
        node_dir = self._node_dir(node.node_id)
        log_file = node_dir / "server.log"
        base = self._java_cmd(java, libs, log_file, processes.MAIN_CLASS)
        cmd = [base[0], *JVM_FLAGS, *base[1:], str(self._properties(node.node_id))]
        setpriv = shutil.which("setpriv") if self._die_with_parent else None
        if setpriv is not None:
            # setpriv execs java in place: same pid, and the signal survives the exec
            cmd = [setpriv, "--pdeathsig", "TERM", *cmd]
        pid = processes.launch(cmd, output=node_dir / "console.log")
        return NodeInfo(
            node_id=node.node_id,
            broker_port=node.broker,
            controller_port=node.controller,
            pid=pid,
            log_file=str(log_file),
        )

    def _alive(self, node: NodeInfo) -> bool:
        return processes.is_broker_process(node.pid, self._properties(node.node_id))

    def _recorded_node(self, node_id: int) -> tuple[ClusterInfo, NodeInfo]:
        info = self.info()
        node = info.node(node_id) if info is not None else None
        if info is None or node is None:
            raise LocalKafkaError(f"node {node_id} is not part of a cluster in {self.state_dir}")
        return info, node

    def _stop_recorded(self, info: ClusterInfo) -> int:
        stopped = processes.stop_processes(
            [(n.pid, self._properties(n.node_id)) for n in info.nodes], timeout_s=STOP_TIMEOUT_S
        )
        self.state_file.unlink(missing_ok=True)
        return len(stopped)

    def _wait_ready(self, info: ClusterInfo, *, expected: list[int]) -> None:
        """Until a metadata request succeeds and lists every expected node as a broker."""
        from confluent_kafka.admin import AdminClient

        conf: dict[str, str | int | float | bool] = {
            "bootstrap.servers": info.bootstrap_servers,
            "log_level": 0,  # connection refusals while the JVMs boot are expected
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 250,
        }
        client = info.client_security
        if client is not None:
            password = read_password(Path(client.sasl_password_file))
            conf |= client.librdkafka_config(password)
        admin = AdminClient(conf)
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            for node in info.nodes:
                if node.node_id in expected and not self._alive(node):
                    excerpt = log_excerpt(Path(node.log_file))
                    raise BrokerStartFailed(
                        f"Kafka node {node.node_id} exited during startup. From its log "
                        f"{node.log_file}:\n{excerpt}"
                        f"Its console output ends with:\n"
                        f"{tail(Path(node.log_file).with_name('console.log'), 5)}",
                        port_conflict="Address already in use" in excerpt,
                    )
            try:
                brokers = set(admin.list_topics(timeout=2).brokers)
            except Exception:  # noqa: BLE001 - KafkaException until the listener is up; retried
                brokers = set()
            if set(expected) <= brokers:
                return
            if time.monotonic() > deadline:
                logs = "".join(
                    f"{n.log_file}:\n{log_excerpt(Path(n.log_file))}" for n in info.nodes
                )
                raise BrokerStartFailed(
                    f"Kafka did not serve requests from all {len(expected)} node(s) within "
                    f"{self._start_timeout_s:.0f} s (brokers seen: {sorted(brokers)}). "
                    f"Last log lines:\n{logs}"
                )
            time.sleep(0.2)


def _new_cluster_id() -> str:
    while True:
        text = cluster_id_text(os.urandom(16))
        if text is not None:
            return text


@contextmanager
def running_cluster(state_dir: Path | str, *, nodes: int = 1) -> Iterator[ClusterInfo]:
    """A local cluster for the duration of a ``with`` block (stopped even when the block fails)."""
    with LocalKafka(state_dir, nodes=nodes) as info:
        yield info
