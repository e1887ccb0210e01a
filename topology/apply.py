"""Apply a topology to a cluster with confluent-kafka's AdminClient."""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from topology.model import Topology, TopologyError
from topology.plan import ObservedTopic, Plan, plan


def observe(
    admin: AdminClient, names: list[str], timeout_s: float = 30.0
) -> dict[str, ObservedTopic]:
    """Partitions, replication and the relevant configs of those ``names`` that exist."""
    meta = admin.list_topics(timeout=timeout_s)
    present = [n for n in names if n in meta.topics and meta.topics[n].error is None]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in present]
        for resource, future in admin.describe_configs(resources).items():
            entries = future.result(timeout=timeout_s)
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
    out: dict[str, ObservedTopic] = {}
    for name in present:
        partitions = meta.topics[name].partitions
        replication = min((len(p.replicas) for p in partitions.values()), default=0)
        out[name] = ObservedTopic(name, len(partitions), replication, configs.get(name, {}))
    return out


def diff_topology(admin_config: Mapping[str, str], topology: Topology) -> Plan:
    admin = AdminClient(dict(admin_config))
    return plan(topology.topics, observe(admin, topology.names))


def apply_topology(admin_config: Mapping[str, str], topology: Topology) -> Plan:
    """Create the missing topics and wait until they exist; return the plan that was applied.

    Idempotent: a second call creates nothing. Drift is returned, never acted on.
    """
    admin = AdminClient(dict(admin_config))
    todo = plan(topology.topics, observe(admin, topology.names))
    if todo.create:
        futures = admin.create_topics(
            [
                NewTopic(
                    t.name,
                    num_partitions=t.partitions,
                    replication_factor=t.replication_factor,
                    config=t.config,
                )
                for t in todo.create
            ]
        )
        for name, future in futures.items():
            try:
                future.result(timeout=60)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):  # created concurrently: fine
                    raise TopologyError(f"creating topic {name} failed: {exc}") from exc
        _wait_until_present(admin, [t.name for t in todo.create])
    return todo


def _wait_until_present(admin: AdminClient, names: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and topics[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise TopologyError(f"topics did not appear within {timeout_s:.0f} s: {', '.join(names)}")
