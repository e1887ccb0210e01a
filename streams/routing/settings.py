"""Settings of the routing worker (environment prefix ``AIR_EXSTREAM_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.config import ConfigError


class WorkerSettings(BaseSettings):
    """How the routing worker runs. Kafka connection settings live in ``KafkaSettings``."""

    model_config = SettingsConfigDict(env_prefix="AIR_EXSTREAM_", extra="ignore")

    app_id: str = "air-exstream-router"
    """The worker's application id: its consumer group, the prefix of its changelog topics and
    of its transactional id."""
    store: str = "memory://"
    """Where the worker's tables live: ``memory://`` (the default) or ``rocksdb://``, each table
    partition a RocksDB under :attr:`tables_dir`, so that the tables (preferences, suppression
    and tracking grow with the customers and their communications) can outgrow memory. Either
    way a partition is restored from its changelog whenever it is assigned: with ``rocksdb://``
    the files a clean stop left are read on from the offsets it noted, any others emptied first
    (under exactly-once they may hold writes of a transaction a crash aborted)."""
    processing_guarantee: str = "exactly_once"
    """Always ``exactly_once``; anything else is refused at start."""
    partitions: int = 6
    """Partition count of the customer-keyed topics (the co-partitioning unit)."""
    replication_factor: int = -1
    """Replication of the changelog topics the worker creates (-1: the broker's
    ``default.replication.factor``; production: 3, as the topology's topics). A changelog that
    exists already keeps its replication."""
    data_dir: str = "build/worker-data"
    """Where the worker keeps local state (its instance id, rocksdb files): in
    ``<data_dir>/<app_id>`` (:attr:`state_dir`). Two workers on one machine need different data
    dirs: each claims its instance id there, and rocksdb locks a partition's files to one
    process."""
    metrics_port: int = 9466
    """Port of the worker's Prometheus metrics (``GET /metrics``, :mod:`streams.routing.metrics`);
    0 turns them off. ``--metrics-port`` overrides it."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics port binds (``0.0.0.0`` for a Prometheus on another host)."""
    metrics_interval_s: float = 5.0
    """How often consumer lag and table sizes are refreshed."""
    reference_ready_timeout_s: float = 60.0
    session_timeout_s: float = 20.0
    """How soon the group notices a crashed worker and hands its partitions to the others."""
    suppression_grace_ms: int = 30 * 24 * 3_600_000
    """How long a suppression entry is kept after it stopped suppressing newer events, so that an
    *older* duplicate arriving late (inside the window of an emitted event) is still recognised.
    Entries are deleted once the customer's newest event is more than this past their expiry."""
    sla_ms: dict[str, int] = {}
    """Delivery deadline per channel in ms (JSON, e.g. ``{"EMAIL": 3600000}``); channels not
    named use ``streams.domain.delivery.DEFAULT_SLA_MS``."""
    sla_check_interval_s: float = 30.0
    commit_timeout_s: float = 90.0
    """How long one transactional call (begin, produce and flush, send the offsets, commit,
    abort) may take before the worker gives up and exits for its supervisor to restart it (see
    :mod:`streams.routing.watchdog`). Well above a healthy commit (tens of milliseconds; about
    11 s while a lost broker's partitions move) and above the transaction timeout, after which
    the broker has aborted the transaction anyway."""
    registry_wait_s: float = 30.0
    """How long the worker waits, retrying, for a schema registry that does not answer while it
    decodes a Confluent-framed record, before it stops for its supervisor (the record is read
    again after the restart, never dead-lettered for it)."""
    preference_history_ms: int = 7 * 24 * 3_600_000
    """How far back (before a customer's newest preference) the ``preferences`` table keeps the
    earlier versions, so that an event is joined with the preference in force at its timestamp
    even when a later change was applied first (:mod:`streams.routing.preference_versions`)."""
    preference_max_versions: int = 16
    """At most this many versions per customer are kept."""
    alignment_max_wait_s: float = 30.0
    """How long an event may wait for the rules and templates published before it to be applied
    by the worker's views (:mod:`streams.routing.alignment`; the preferences come in timestamp
    order through the engine and need no wait). When the wait runs out the event is decided
    with the state there is, and the give-up is logged and counted. At most 30 s is used: the
    engine's loop waits with the event (nothing is consumed meanwhile), which must stay far
    below the consumer's ``max.poll.interval.ms``."""
    reference_fetch_wait_ms: int = 100
    """How long the rules and templates views' consumers wait in one fetch of a quiet topic: how
    stale their end offset may be, and so how long a live event may wait to make sure that no
    rule or template published before it is still on its way."""
    instance_id: str = ""
    """The worker's stable process slot: its transactional id is ``<app_id>-<instance_id>``,
    so a restart in the same slot aborts the dead process's open transaction at once (instead of
    the transaction timeout later). Empty: an id kept in :attr:`state_dir`
    (:mod:`streams.engine.instance`), so a restart on the same directory is the same slot."""

    event_loop: Literal["asyncio", "uvloop"] = "uvloop"
    """The event loop implementation the worker runs on (``asyncio``: the standard one)."""

    @model_validator(mode="after")
    def _supported(self) -> WorkerSettings:
        """Settings this worker cannot honour are refused rather than silently ignored."""
        if not self.store.startswith(("memory:", "rocksdb:")):
            raise ConfigError(
                f"AIR_EXSTREAM_STORE={self.store} is not a store: use memory:// or rocksdb://"
            )
        if self.processing_guarantee != "exactly_once":
            raise ConfigError(
                f"AIR_EXSTREAM_PROCESSING_GUARANTEE={self.processing_guarantee} is not supported: "
                "the routing worker is always exactly-once (unset it)"
            )
        return self

    @property
    def state_dir(self) -> Path:
        """``<data_dir>/<app_id>``: two app ids sharing a data dir keep apart (each its own
        instance id and table files)."""
        return Path(self.data_dir) / self.app_id

    @property
    def on_disk(self) -> bool:
        """True when the tables are kept in RocksDB files (:attr:`store`)."""
        return self.store.startswith("rocksdb:")

    @property
    def tables_dir(self) -> Path:
        """``<state_dir>/tables``: the RocksDB files, one directory per table partition."""
        return self.state_dir / "tables"
