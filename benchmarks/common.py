"""What every benchmark shares: the broker, the machine description, medians."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.localkafka import LocalKafka


@contextmanager
def broker() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local broker started (and stopped) here."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    local = LocalKafka(Path("build/bench-kafka"), die_with_parent=True)
    info = local.start()
    try:
        yield info.bootstrap_servers
    finally:
        local.stop()


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def copy_record(producer: Any, topic: str, msg: Any) -> None:
    """Produce consumed record ``msg`` unchanged to the same partition of ``topic``, waiting while
    the producer's queue is full (the passthroughs' copy step)."""
    partition = msg.partition()
    assert partition is not None  # consumed records always have one
    while True:
        try:
            producer.produce(
                topic, key=msg.key(), value=msg.value(), headers=msg.headers(), partition=partition
            )
            return
        except BufferError:
            producer.poll(0.05)
