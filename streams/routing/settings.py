"""Settings of the routing worker (environment prefix ``AIR_EXSTREAM_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.config import ConfigError
from streams.routing.commit_cadence import CommitCadence


class WorkerSettings(BaseSettings):
    """How the routing worker runs. Kafka connection settings live in ``KafkaSettings``."""

    model_config = SettingsConfigDict(env_prefix="AIR_EXSTREAM_", extra="ignore")

    app_id: str = "air-exstream-router"
    """Faust application id: the consumer group and the prefix of its changelog topics."""
    store: str = "memory://"
    """Store of the ``preferences`` table: ``memory://`` (tests, the demo) or ``rocksdb://``
    (production). With rocksdb the table lives in files under :attr:`state_dir` that survive a
    restart, and recovery reads only the changelog written since the last checkpoint instead of
    replaying all of it. The other tables (suppression, audit chain heads, delivery tracking)
    are read-modify-write state and stay in memory, rebuilt from their changelogs at every
    start: rocksdb keeps the local writes of a transaction that a crash aborted, and such a table
    would read them back as its own committed state (an audit chain continuing from a head that
    was never committed). Preferences are only ever *set* from their own input record, which is
    processed again after such a crash and writes the same value (a version identified by the
    record's offset, see :mod:`streams.routing.preference_versions`), so their files can be kept."""
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    partitions: int = 6
    """Partition count of the customer-keyed topics (the co-partitioning unit)."""
    replication_factor: int = 1
    """Replication of the worker's own changelog topics."""
    data_dir: str = "build/worker-data"
    """Where the worker keeps local state: in ``<data_dir>/<app_id>`` (:attr:`state_dir`). Two
    workers on one machine need different data dirs: rocksdb locks a partition's files to one
    process."""
    checkpoint_interval_s: float = 10.0
    """How often a rocksdb table records how far into its changelog its files are complete; a
    restart reads the changelog from that point (about this many seconds of writes at most)."""
    rocksdb_write_buffer_mb: int = 16
    """Write buffer (memtable) size of each rocksdb table partition."""
    rocksdb_block_cache_mb: int = 64
    """Block cache of each rocksdb table partition (faust's default is 2 GiB per partition)."""
    metrics_port: int = 9466
    """Port of the worker's Prometheus metrics (``GET /metrics``, :mod:`streams.routing.metrics`);
    0 turns them off. ``--metrics-port`` overrides it."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics port binds (``0.0.0.0`` for a Prometheus on another host)."""
    metrics_interval_s: float = 5.0
    """How often consumer lag and table sizes are refreshed."""
    web_enabled: bool = False
    web_port: int = 6066
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
    """How long one commit may take, waiting for the record being processed included, before
    the worker gives up and exits for its supervisor to restart it (see
    :mod:`streams.routing.watchdog`). Well above a healthy commit (tens of milliseconds; about
    11 s while a lost broker's partitions move) and above the producers' transaction timeout
    (60 s), after which the broker has aborted the transaction anyway."""
    registry_wait_s: float = 30.0
    """How long the worker waits, retrying, for a schema registry that does not answer while it
    decodes a Confluent-framed record, before it stops for its supervisor (the record is read
    again after the restart, never dead-lettered for it). Below :attr:`commit_timeout_s`: the
    commit waits for the record being processed."""
    producer_linger_ms: int = 5
    """How long the worker's producers wait to fill a batch before sending it: fewer, larger
    produce requests (the worker sends through one transactional producer per partition)."""
    preference_history_ms: int = 7 * 24 * 3_600_000
    """How far back (before a customer's newest preference) the ``preferences`` table keeps the
    earlier versions, so that an event is joined with the preference in force at its timestamp
    even when a later change was applied first (:mod:`streams.routing.preference_versions`)."""
    preference_max_versions: int = 16
    """At most this many versions per customer are kept."""
    alignment_max_wait_s: float = 300.0
    """How long an event may wait for the preferences (and rules, templates) published before it
    to be applied (:mod:`streams.routing.alignment`). Loading a backlog is the long case: the
    first events of a cold start wait until each preferences partition is caught up (one worker
    applied 100,000 preferences in about 15 s on a shared 2-core machine). When the wait runs
    out the event is decided with the state there is, and the give-up is logged and counted."""
    alignment_idle_grace_s: float = 10.0
    """A preferences partition whose end offset is above what was applied, while the preferences
    agent applied nothing for this long since the event arrived, counts as caught up: the
    offsets left are transaction markers or aborted records, which are never delivered."""
    reference_fetch_wait_ms: int = 100
    """How long the rules and templates views' consumers wait in one fetch of a quiet topic: how
    stale their end offset may be, and so how long a live event may wait to make sure that no
    rule or template published before it is still on its way."""
    max_poll_records: int = 500
    """Records handed to the worker's streams per poll. With the stream buffer sized from it
    (:attr:`stream_buffer_maxsize`), an events agent waiting for preferences never fills its
    buffer to the point where the consumer stops delivering preferences as well."""
    commit_interval_s: float = 2.8
    """The longest the worker goes between commits: under exactly_once the outputs become
    visible to read_committed consumers at the commit, so this bounds latency."""
    min_commit_interval_s: float = 0.0
    """When set (0.05 measured best), the worker commits as soon as this has passed while it
    is live (at most a hundred input records waiting to be processed), and every
    :attr:`commit_interval_s` under a backlog: low latency on a live stream without committing
    often under load (:mod:`streams.routing.commit_cadence`). 0 (the default), or not below
    :attr:`commit_interval_s`: a fixed interval. Off by default until the fault suite has run
    with it on (a scale-out stall seen with it on came back with it off: the recovery guard of
    that time, since reverted)."""

    @property
    def commit_cadence(self) -> CommitCadence:
        return CommitCadence(self.commit_interval_s, self.min_commit_interval_s or None)

    @property
    def stream_buffer_maxsize(self) -> int:
        """Faust stops fetching a partition whose stream buffer is above 80 % full but still
        delivers what it already fetched; with one poll per partition of headroom (at most
        ``partitions * max_poll_records`` records) a full buffer, which would block delivery
        to every agent, cannot happen."""
        return max(4096, 5 * self.partitions * self.max_poll_records + 5)

    engine: Literal["faust", "kafka"] = "kafka"
    """Which worker ``air-exstream worker`` runs: ``kafka`` (the default), the worker on the
    project's own transactional engine on confluent-kafka (:mod:`.engine_worker`), or ``faust``,
    the worker on faust-streaming (:mod:`.app`; the one with the rocksdb store and
    at-least-once)."""
    instance_id: str = ""
    """The engine worker's stable process slot: its transactional id is ``<app_id>-<instance_id>``,
    so a restart in the same slot aborts the dead process's open transaction at once (instead of
    the transaction timeout later). Empty: an id kept in :attr:`state_dir`
    (:mod:`streams.engine.instance`), so a restart on the same directory is the same slot."""

    event_loop: Literal["asyncio", "uvloop"] = "uvloop"
    """The event loop implementation the worker runs on (``asyncio``: the standard one)."""

    @model_validator(mode="after")
    def _engine_supports(self) -> WorkerSettings:
        """The engine worker keeps every table in memory and is always exactly-once: a setting
        only the Faust worker honours is refused rather than silently ignored."""
        if self.engine != "kafka":
            return self
        if not self.store.startswith("memory:"):
            raise ConfigError(
                f"AIR_EXSTREAM_STORE={self.store} is not supported with AIR_EXSTREAM_ENGINE=kafka: "
                "the engine worker keeps its tables in memory, restored from their changelogs "
                "at every start (unset AIR_EXSTREAM_STORE, or set AIR_EXSTREAM_ENGINE=faust)"
            )
        if self.processing_guarantee != "exactly_once":
            raise ConfigError(
                "AIR_EXSTREAM_PROCESSING_GUARANTEE=at_least_once is not supported with "
                "AIR_EXSTREAM_ENGINE=kafka (the default): the engine worker is always "
                "exactly-once (set AIR_EXSTREAM_ENGINE=faust for at-least-once)"
            )
        return self

    @property
    def state_dir(self) -> Path:
        """``<data_dir>/<app_id>``: faust names table files after the table alone, so two app ids
        sharing a directory would open each other's databases (another changelog's offsets)."""
        return Path(self.data_dir) / self.app_id

    def rocksdb_options(self) -> dict[str, int] | None:
        """Options of a rocksdb table (a fresh dict each time: faust pops keys from it), or None
        when :attr:`store` is not rocksdb."""
        if not self.store.startswith("rocksdb:"):
            return None
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mb * 1024 * 1024,
            "block_cache_size": self.rocksdb_block_cache_mb * 1024 * 1024,
        }
