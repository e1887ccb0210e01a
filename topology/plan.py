"""What applying a topology to a cluster would do: pure, no Kafka I/O.

Apply only ever creates missing topics. Differences in existing topics (partition count,
replication factor, configs) are reported as drift for a person to decide on; the tool never
alters or deletes an existing topic, and topics the topology does not declare are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topology.model import TopicSpec


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Drift:
    topic: str
    setting: str
    desired: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, topology says {self.desired}"


@dataclass(frozen=True, slots=True)
class Plan:
    create: tuple[TopicSpec, ...]
    drift: tuple[Drift, ...]
    in_sync: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.create and not self.drift


def plan(desired: tuple[TopicSpec, ...], observed: dict[str, ObservedTopic]) -> Plan:
    create: list[TopicSpec] = []
    drift: list[Drift] = []
    in_sync: list[str] = []
    for spec in desired:
        actual = observed.get(spec.name)
        if actual is None:
            create.append(spec)
            continue
        found: list[Drift] = []
        if actual.partitions != spec.partitions:
            found.append(
                Drift(spec.name, "partitions", str(spec.partitions), str(actual.partitions))
            )
        if actual.replication_factor != spec.replication_factor:
            found.append(
                Drift(
                    spec.name,
                    "replication factor",
                    str(spec.replication_factor),
                    str(actual.replication_factor),
                )
            )
        for key, value in sorted(spec.config.items()):
            have = actual.config.get(key)
            if have != value:
                found.append(Drift(spec.name, key, value, "unset" if have is None else have))
        if found:
            drift.extend(found)
        else:
            in_sync.append(spec.name)
    return Plan(tuple(create), tuple(drift), tuple(in_sync))
