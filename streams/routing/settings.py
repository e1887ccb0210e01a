"""Settings of the routing worker (environment prefix ``AIR_EXSTREAM_``)."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    """How the routing worker runs. Kafka connection settings live in ``KafkaSettings``."""

    model_config = SettingsConfigDict(env_prefix="AIR_EXSTREAM_", extra="ignore")

    app_id: str = "air-exstream-router"
    """Faust application id: the consumer group and the prefix of its changelog topics."""
    store: str = "memory://"
    """Table store: ``memory://`` for tests and the demo, ``rocksdb://`` in production."""
    processing_guarantee: Literal["exactly_once", "at_least_once"] = "exactly_once"
    partitions: int = 6
    """Partition count of the customer-keyed topics (the co-partitioning unit)."""
    replication_factor: int = 1
    """Replication of the worker's own changelog topics."""
    data_dir: str = "build/worker-data"
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
