"""The engine's settings and the confluent-kafka client configurations made from them (pure:
no Kafka)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    app_id: str
    """Consumer group id; ``transactional.id`` is ``f"{app_id}-{instance_id}"``."""
    kafka: Mapping[str, str]
    """confluent-kafka settings of every client (bootstrap, security): no producer-only or
    consumer-only key here (librdkafka warns, CONFWARN, about a key its client ignores)."""
    instance_id: str
    """Stable per process slot: a restart with the same id aborts the dead process's open
    transaction at once (``init_transactions``)."""
    consumer: Mapping[str, str] = field(default_factory=dict)
    """Extra settings of the consumers only (e.g. ``session.timeout.ms``,
    ``heartbeat.interval.ms``); the engine's own group settings win over them."""
    static_membership: bool = False
    """``group.instance.id = instance_id`` (KIP-345): a member restarted within the session
    timeout gets its partitions back without a rebalance, but one that stops does not leave the
    group (its partitions wait for the session timeout), and two live processes with the same
    ``instance_id`` fence each other. Off unless every process slot has an id of its own."""
    max_batch: int = 500
    commit_interval_ms: int = 100
    max_task_idle_ms: int = 10_000
    transaction_timeout_ms: int = 60_000
    restore_timeout_s: float = 120.0
    state_dir: Path | None = None
    """Where the stores keep their values: None, in memory; else a RocksDB per (store,
    partition) under it (:mod:`streams.engine.rocksdb`), for tables larger than memory. Still
    restored from the changelogs on every assignment (the files are not trusted across
    assignments); one directory per process (an open database is locked)."""
    changelog_replication_factor: int = -1
    """Replication of the changelog topics the engine creates (-1: the broker's
    ``default.replication.factor``); an existing changelog is left as it is."""


def producer_config(config: EngineConfig) -> dict[str, Any]:
    """The transactional producer's settings."""
    return {
        **config.kafka,
        "transactional.id": f"{config.app_id}-{config.instance_id}",
        "acks": "all",
        "enable.idempotence": True,
        "transaction.timeout.ms": config.transaction_timeout_ms,
        "linger.ms": 5,
        # a transaction begun while the coordinator still completes the one before (its markers
        # being written) is refused with CONCURRENT_TRANSACTIONS until that is done, a few ms:
        # librdkafka asks again after retry.backoff.ms (default 100 ms, doubling up to
        # retry.backoff.max.ms), which held ~3 % of the transactions of a live stream 100 ms
        # longer (measured: send_offsets_to_transaction p99 110 ms -> 22 ms, routed latency
        # p50 117 ms -> 28-35 ms at 100 events/s)
        "retry.backoff.ms": 10,
        # the Java client's partitioner (aiokafka's too): co-partitioned by key
        "partitioner": "murmur2_random",
    }


def consumer_config(config: EngineConfig) -> dict[str, Any]:
    """The group consumer's settings."""
    settings: dict[str, Any] = {
        # a quiet input's end is known one empty fetch after its last record: a group waits
        # that long for it (librdkafka's default is 500 ms); config.kafka/consumer may say
        "fetch.wait.max.ms": 100,
        **config.kafka,
        **config.consumer,
        "group.id": config.app_id,
        "partition.assignment.strategy": "range",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    if config.static_membership:
        settings["group.instance.id"] = config.instance_id
    else:
        settings.pop("group.instance.id", None)  # only through static_membership
    return settings


def restorer_config(config: EngineConfig) -> dict[str, Any]:
    """The changelog reader's settings (assigned partitions, never in a group)."""
    settings: dict[str, Any] = {
        **config.kafka,
        **config.consumer,
        "group.id": f"{config.app_id}-restore",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    settings.pop("group.instance.id", None)
    return settings


def offsets_reader_config(config: EngineConfig) -> dict[str, Any]:
    """The committed-offsets reader's settings: the group's id, but it never joins the group
    (it only asks for the committed offsets, read_committed: stable ones only, KIP-447). A
    client of its own: on the group consumer such a question held its ``consume`` calls."""
    settings: dict[str, Any] = {
        **config.kafka,
        **config.consumer,
        "group.id": config.app_id,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    }
    settings.pop("group.instance.id", None)
    return settings


def ends_reader_config(config: EngineConfig) -> dict[str, Any]:
    """The changelogs' ends reader: the changelog reader's settings but read_uncommitted, so
    that the high watermark it reads counts the records of transactions not yet decided
    (:mod:`streams.engine.restore`); it only asks for ends, never reads a partition."""
    settings = restorer_config(config)
    settings["isolation.level"] = "read_uncommitted"
    settings.pop("enable.partition.eof")
    return settings
