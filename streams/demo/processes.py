"""Running the project's processes as children, and waiting on the broker for their progress.

Used by ``air-exstream demo`` and by the end-to-end tests, so both drive the system the same
way: as separate processes talking through Kafka, never in-process shortcuts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, TopicPartition

from streams.errors import AirExstreamError
from streams.topic_reader import read_topic

if TYPE_CHECKING:
    from streams.codec import Codecs


class ProcessFailed(AirExstreamError):
    """A child process died or made no progress in time."""


class ServiceProcess:
    """``python -m streams <args>`` (emulator, sink, webhook receiver...) logging to a file."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, open transactions are left to be aborted."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class WorkerProcess(ServiceProcess):
    """``python -m streams worker`` with its own app id, prefix and data dir, logging to
    ``<workdir>/<app id>.log``. ``env`` adds settings (e.g. ``AIR_EXSTREAM_REPLICATION_FACTOR``
    for a replicated cluster); it cannot change the bootstrap servers, app id or data dir."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        app_id: str,
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            app_id,
            ["worker", "--prefix", prefix],
            workdir,
            {
                # no fixed metrics port: several workers share a machine in tests; a caller
                # that scrapes passes AIR_EXSTREAM_METRICS_PORT
                "AIR_EXSTREAM_METRICS_PORT": "0",
                **(env or {}),
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "AIR_EXSTREAM_APP_ID": app_id,
                "AIR_EXSTREAM_DATA_DIR": str(workdir / "data"),
            },
        )
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.app_id = app_id
        self.workdir = workdir


def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "air-exstream-offsets-probe"})
    try:
        out: dict[TopicPartition, int] = {}
        meta = consumer.list_topics(timeout=10)
        for topic in topics:
            for p in meta.topics[topic].partitions:
                tp = TopicPartition(topic, p)
                out[tp] = consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1]
        return out
    finally:
        consumer.close()


def committed(consumer: Consumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The committed offsets of ``consumer``'s group (it must not subscribe, so it never joins).

    Not ``AdminClient.list_consumer_group_offsets``: librdkafka 2.16.1 crashes (SIGSEGV in
    rd_kafka_cgrp_op) when that request meets a coordinator that is still loading.
    """
    from confluent_kafka import KafkaException

    try:
        result = consumer.committed(tps, timeout=30)
    except KafkaException:
        return {}  # coordinator loading or moving: ask again
    return {TopicPartition(tp.topic, tp.partition): tp.offset for tp in result}


def wait_consumed(
    bootstrap: str,
    group: str,
    topics: list[str],
    *,
    worker: ServiceProcess,
    timeout_s: float = 300.0,
) -> float:
    """Wait until ``group`` committed every record of ``topics``; returns the seconds it took."""
    started = time.monotonic()
    ends = end_offsets(bootstrap, topics)
    probe = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    lagging: dict[TopicPartition, tuple[int, int]] = {}
    try:
        while time.monotonic() - started < timeout_s:
            if not worker.alive():
                raise ProcessFailed(f"worker exited:\n{worker.tail()}")
            done = committed(probe, list(ends))
            lagging = {
                tp: (done.get(tp, -1), end)
                for tp, end in ends.items()
                if end > 0 and done.get(tp, -1) < end
            }
            if not lagging:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        probe.close()
    behind = ", ".join(f"{tp.topic}/{tp.partition} at {c} of {e}" for tp, (c, e) in lagging.items())
    raise ProcessFailed(
        f"{group} did not consume {topics} in {timeout_s} s (committed behind: {behind}):\n"
        f"{worker.tail()}"
    )


def wait_stable_count(bootstrap: str, topic: str, expected: int, timeout_s: float = 120.0) -> int:
    """Wait until ``topic`` holds ``expected`` committed records (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        count = sum(1 for _ in read_topic(bootstrap, topic))
        if count >= expected:
            return count
        time.sleep(1.0)
    return count


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, process: ServiceProcess, timeout_s: float = 30.0) -> None:
    """Until ``url`` answers 200 (or the process died / the time is up)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise ProcessFailed(f"{process.name} exited:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise ProcessFailed(f"{process.name} did not answer {url} in {timeout_s} s:\n{process.tail()}")


def wait_chained(
    bootstrap: str,
    intake_topic: str,
    audit_topic: str,
    timeout_s: float = 120.0,
    *,
    codecs: Codecs | None = None,
) -> None:
    """Until the audit writer chained every record of ``intake_topic`` into ``audit_topic``
    (matched by audit id). Offsets cannot tell: the intake topic is written in transactions,
    so its end offset sits one commit marker past the last record a consumer can commit."""
    from streams.codec import Codecs
    from streams.domain.records import AuditRecord

    codecs = codecs or Codecs.from_environment()
    intake = codecs.for_topic(intake_topic, AuditRecord)
    audit = codecs.for_topic(audit_topic, AuditRecord)
    pending = {intake.decode(r.value).audit_id for r in read_topic(bootstrap, intake_topic)}
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise ProcessFailed(f"{len(pending)} records of {intake_topic} not chained in time")
        pending -= {audit.decode(r.value).audit_id for r in read_topic(bootstrap, audit_topic)}
        if pending:
            time.sleep(0.5)


def scrape_counters(url: str, prefix: str) -> dict[str, float]:
    """Every sample of a Prometheus text page, named without ``prefix`` (labelled ones as
    ``name{label="value"}``, see :func:`streams.metrics.parse_samples`); {} when it cannot be
    read (best effort)."""
    from streams.metrics import parse_samples

    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            text = response.read().decode()
    except OSError:
        return {}
    return {name.removeprefix(prefix): value for name, value in parse_samples(text).items()}
