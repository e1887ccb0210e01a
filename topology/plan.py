"""What applying a topology to a cluster would do: pure, no Kafka I/O.

Apply only ever creates missing topics. Differences in existing topics (partition count,
replication factor, configs) are reported as drift for a person to decide on; the tool never
alters or deletes an existing topic, and topics the topology does not declare are ignored.
A client that may not read a topic's configs (a component's principal on a cluster with ACLs)
observes the topic without them, and no config drift is reported for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field

from topology.model import TopicSpec


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)
    configs_visible: bool = True
    """False: the client may not read the topic's configs, so ``config`` is empty."""


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
    not_authorized: tuple[str, ...] = ()
    """Topics to create that the applying client was not allowed to create."""

    @property
    def empty(self) -> bool:
        return not self.create and not self.drift and not self.not_authorized

    def refused(self, names: Collection[str]) -> Plan:
        """This plan with the creation of ``names`` refused by the cluster."""
        if not names:
            return self
        return dataclasses.replace(
            self,
            create=tuple(t for t in self.create if t.name not in names),
            not_authorized=(
                *self.not_authorized,
                *(t.name for t in self.create if t.name in names),
            ),
        )


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
        for key, value in sorted(spec.config.items()) if actual.configs_visible else ():
            have = actual.config.get(key)
            if have != value:
                found.append(Drift(spec.name, key, value, "unset" if have is None else have))
        if found:
            drift.extend(found)
        else:
            in_sync.append(spec.name)
    return Plan(tuple(create), tuple(drift), tuple(in_sync))
