"""Topic specifications loaded from ``topics.toml``: pure, no Kafka I/O.

The file declares production defaults; a profile (``local`` for the project's single-node
broker, ``production`` for a real cluster) overlays replication settings. Loading validates the
file and the co-partitioning rule: every customer-keyed topic has ``customer_partitions``
partitions. A ``prefix`` can be put in front of every name, so that tests can run isolated
copies of the whole topology on one broker.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from streams.errors import AirExstreamError

TOPICS_FILE = Path(__file__).with_name("topics.toml")
DLQ_SUFFIX = ".dlq"
CUSTOMER_KEY = "customer_id"


class TopologyError(AirExstreamError):
    """topics.toml is invalid, or a topic is not declared."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    """Topic-level configs to set at creation (cleanup.policy, retention.ms, ...)."""
    key: str
    value: str
    description: str

    @property
    def customer_keyed(self) -> bool:
        return self.key == CUSTOMER_KEY


@dataclass(frozen=True, slots=True)
class Topology:
    profile: str
    prefix: str
    topics: tuple[TopicSpec, ...]

    def topic(self, logical_name: str) -> TopicSpec:
        """The spec of a topic by its declared (unprefixed) name."""
        wanted = self.prefix + logical_name
        for spec in self.topics:
            if spec.name == wanted:
                return spec
        raise TopologyError(f"topic {logical_name!r} is not declared in {TOPICS_FILE.name}")

    def name(self, logical_name: str) -> str:
        return self.topic(logical_name).name

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.topics]


def default_profile() -> str:
    return os.environ.get("AIR_EXSTREAM_TOPOLOGY_PROFILE", "local")


def _int(table: dict[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TopologyError(f"{where}: {key} must be an integer, got {value!r}")
    return value


def load_topology(
    profile: str | None = None, *, prefix: str = "", path: Path = TOPICS_FILE
) -> Topology:
    profile = profile or default_profile()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopologyError(f"cannot read {path}: {exc}") from exc
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise TopologyError(
            f"unknown topology profile {profile!r}; {path.name} declares: "
            + ", ".join(sorted(profiles))
        )
    defaults = {**raw.get("defaults", {}), **profiles[profile]}
    customer_partitions = _int(raw, "customer_partitions", path.name)
    specs: list[TopicSpec] = []
    for name, table in raw.get("topics", {}).items():
        where = f"{path.name} [topics.{name!r}]"
        merged = {**defaults, **table}
        for required in ("key", "value", "description"):
            if not isinstance(merged.get(required), str):
                raise TopologyError(f"{where}: missing {required}")
        if merged["key"] == CUSTOMER_KEY:
            if "partitions" in table and table["partitions"] != customer_partitions:
                raise TopologyError(
                    f"{where}: customer-keyed topics must have customer_partitions "
                    f"({customer_partitions}) partitions to stay co-partitioned, not "
                    f"{table['partitions']}"
                )
            merged["partitions"] = customer_partitions
        specs.append(_spec(prefix + name, merged, where))
    dlq = raw.get("dead_letters", {})
    for source in dlq.get("sources", []):
        src = next((s for s in specs if s.name == prefix + source), None)
        if src is None:
            raise TopologyError(f"dead_letters: source {source!r} is not a declared topic")
        merged = {
            **defaults,
            "cleanup_policy": "delete",
            "retention_ms": dlq.get("retention_ms", defaults.get("retention_ms")),
            "partitions": src.partitions,
            "key": src.key,
            "value": "DeadLetter",
            "description": f"Dead letters of {source}, the reason in headers.",
        }
        specs.append(_spec(prefix + source + DLQ_SUFFIX, merged, f"dead_letters {source}"))
    return Topology(profile=profile, prefix=prefix, topics=tuple(specs))


def _spec(name: str, merged: dict[str, Any], where: str) -> TopicSpec:
    partitions = _int(merged, "partitions", where) if "partitions" in merged else 1
    replication = _int(merged, "replication_factor", where)
    if partitions < 1 or replication < 1:
        raise TopologyError(f"{where}: partitions and replication_factor must be >= 1")
    min_isr = _int(merged, "min_insync_replicas", where)
    if min_isr > replication:
        raise TopologyError(
            f"{where}: min_insync_replicas ({min_isr}) exceeds replication_factor ({replication})"
        )
    config = {
        "cleanup.policy": str(merged["cleanup_policy"]),
        "retention.ms": str(_int(merged, "retention_ms", where)),
        "min.insync.replicas": str(min_isr),
    }
    if "retention_bytes" in merged:
        config["retention.bytes"] = str(_int(merged, "retention_bytes", where))
    if "timestamp_type" in merged:
        stamp = merged["timestamp_type"]
        if stamp not in ("CreateTime", "LogAppendTime"):
            raise TopologyError(
                f"{where}: timestamp_type is CreateTime or LogAppendTime, not {stamp!r}"
            )
        config["message.timestamp.type"] = stamp
    return TopicSpec(
        name=name,
        partitions=partitions,
        replication_factor=replication,
        config=config,
        key=str(merged["key"]),
        value=str(merged["value"]),
        description=str(merged["description"]),
    )


def with_replication(topology: Topology, replication_factor: int, min_isr: int) -> Topology:
    """The same topology with other replication settings (e.g. for a 3-node test cluster)."""
    return replace(
        topology,
        topics=tuple(
            replace(
                t,
                replication_factor=replication_factor,
                config={**t.config, "min.insync.replicas": str(min_isr)},
            )
            for t in topology.topics
        ),
    )
