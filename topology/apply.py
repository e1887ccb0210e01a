"""Apply a topology (topics and ACLs) to a cluster with confluent-kafka's AdminClient."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from topology.acls import AclPlan, Acls, AclSpec, plan_acls
from topology.model import Topology, TopologyError
from topology.plan import ObservedTopic, Plan, plan

_NOT_AUTHORIZED = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)
_RESOURCES: dict[str, ResourceType] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,  # librdkafka's name for Kafka's CLUSTER resource type
}
_KINDS = {v: k for k, v in _RESOURCES.items()}
_PATTERNS = {"literal": ResourcePatternType.LITERAL, "prefixed": ResourcePatternType.PREFIXED}


def _error_code(exc: BaseException) -> Any:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def observe(
    admin: AdminClient, names: list[str], timeout_s: float = 30.0
) -> dict[str, ObservedTopic]:
    """Partitions, replication and the relevant configs of those ``names`` that exist and that
    the client may see. A topic whose configs it may not read is observed without them (no
    config drift is reported for it)."""
    meta = admin.list_topics(timeout=timeout_s)
    present = [n for n in names if n in meta.topics and meta.topics[n].error is None]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in present]
        for resource, future in admin.describe_configs(resources).items():
            try:
                entries = future.result(timeout=timeout_s)
            except KafkaException as exc:
                if _error_code(exc) not in _NOT_AUTHORIZED:
                    raise
                continue
            configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
    out: dict[str, ObservedTopic] = {}
    for name in present:
        partitions = meta.topics[name].partitions
        replication = min((len(p.replicas) for p in partitions.values()), default=0)
        out[name] = ObservedTopic(
            name, len(partitions), replication, configs.get(name, {}), name in configs
        )
    return out


def diff_topology(admin_config: Mapping[str, str], topology: Topology) -> Plan:
    admin = AdminClient(dict(admin_config))
    return plan(topology.topics, observe(admin, topology.names))


def apply_topology(admin_config: Mapping[str, str], topology: Topology) -> Plan:
    """Create the missing topics and wait until they exist; return the plan that was applied.

    Idempotent: a second call creates nothing. Drift is returned, never acted on. A topic this
    client may not create (a component's principal on a cluster with ACLs, to which the topics
    it does not use are invisible) is returned in ``not_authorized`` instead of raising: the
    topology is the admin's to apply (``air-exstream topology apply``)."""
    admin = AdminClient(dict(admin_config))
    todo = plan(topology.topics, observe(admin, topology.names))
    if not todo.create:
        return todo
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
    refused: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=60)
        except KafkaException as exc:
            code = _error_code(exc)
            if code == KafkaError.TOPIC_ALREADY_EXISTS:  # created concurrently: fine
                continue
            if code in _NOT_AUTHORIZED:
                refused.append(name)
                continue
            raise TopologyError(f"creating topic {name} failed: {exc}") from exc
    created = [t.name for t in todo.create if t.name not in refused]
    if created:
        _wait_until_present(admin, created)
    return todo.refused(refused)


def _wait_until_present(admin: AdminClient, names: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and topics[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise TopologyError(f"topics did not appear within {timeout_s:.0f} s: {', '.join(names)}")


# ---------------------------------------------------------------------------------- ACLs


def to_binding(spec: AclSpec) -> AclBinding:
    return AclBinding(
        _RESOURCES[spec.resource],
        spec.name,
        _PATTERNS[spec.pattern],
        spec.principal,
        spec.host,
        AclOperation[spec.operation.upper()],
        AclPermissionType[spec.permission.upper()],
    )


def from_binding(binding: AclBinding) -> AclSpec | None:
    """The spec of a binding seen on a cluster (None for resource or pattern types this system
    never declares, e.g. delegation tokens)."""
    # the client converts every attribute to its enum; its type hints also admit str and int
    seen: Any = binding
    kind = _KINDS.get(seen.restype)
    pattern = {v: k for k, v in _PATTERNS.items()}.get(seen.resource_pattern_type)
    if kind is None or pattern is None:
        return None
    return AclSpec(
        principal=seen.principal,
        resource=kind,  # type: ignore[arg-type]
        name=seen.name,
        pattern=pattern,  # type: ignore[arg-type]
        operation=seen.operation.name.lower(),
        permission=seen.permission_type.name.lower(),
        host=seen.host,
    )


def has_authorizer(admin: AdminClient, timeout_s: float = 30.0) -> bool:
    """Whether the cluster enforces ACLs: its brokers' ``authorizer.class.name`` is set. (Asked
    of a broker's configs, because a broker without an authorizer answers an ACL listing with
    an empty one rather than an error.)"""
    brokers = admin.list_topics(timeout=timeout_s).brokers
    if not brokers:
        raise TopologyError("the cluster reported no brokers")
    resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
    try:
        entries = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
    except KafkaException as exc:
        if _error_code(exc) in _NOT_AUTHORIZED:
            raise TopologyError(
                "this principal may not read the brokers' configs (DESCRIBE_CONFIGS on the "
                "cluster): run `air-exstream topology` as the admin principal"
            ) from exc
        raise
    entry = entries.get("authorizer.class.name")
    return entry is not None and bool(entry.value)


def observe_acls(admin: AdminClient, timeout_s: float = 30.0) -> list[AclSpec] | None:
    """Every ACL binding of the cluster, or None when the cluster runs no authorizer."""
    if not has_authorizer(admin, timeout_s):
        return None
    anything: Any = None  # a filter's None matches any name, principal and host
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        found = admin.describe_acls(everything, request_timeout=timeout_s).result()
    except KafkaException as exc:
        if _error_code(exc) == KafkaError.SECURITY_DISABLED:
            return None
        if _error_code(exc) in _NOT_AUTHORIZED:
            raise TopologyError(
                "this principal may not read the cluster's ACLs (DESCRIBE on the cluster): "
                "run `air-exstream topology` as the admin principal"
            ) from exc
        raise
    return [spec for spec in (from_binding(b) for b in found) if spec is not None]


def diff_acls(admin_config: Mapping[str, str], acls: Acls) -> AclPlan:
    return plan_acls(acls, observe_acls(AdminClient(dict(admin_config))))


def apply_acls(admin_config: Mapping[str, str], acls: Acls) -> AclPlan:
    """Create the declared ACL bindings the cluster lacks; return the plan that was applied.
    Extra bindings are reported, never deleted. On a cluster without an authorizer nothing is
    done (``plan.authorizer`` is False)."""
    admin = AdminClient(dict(admin_config))
    todo = plan_acls(acls, observe_acls(admin))
    if not todo.create:
        return todo
    futures = admin.create_acls([to_binding(spec) for spec in todo.create])
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if _error_code(exc) in _NOT_AUTHORIZED:
                raise TopologyError(
                    "this principal may not create ACLs (ALTER on the cluster): run "
                    "`air-exstream topology apply` as the admin principal"
                ) from exc
            raise TopologyError(f"creating ACL {from_binding(binding)} failed: {exc}") from exc
    _wait_until_enforced(admin, todo.create)
    return todo


def _wait_until_enforced(
    admin: AdminClient, created: tuple[AclSpec, ...], timeout_s: float = 30.0
) -> None:
    """Until the broker answering lists every binding just created: a created ACL is committed
    to the cluster's metadata first and reaches the brokers' authorizers a moment later."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = set(observe_acls(admin) or ())
        if seen.issuperset(created):
            return
        if time.monotonic() > deadline:
            missing = len(set(created) - seen)
            raise TopologyError(f"{missing} created ACL(s) not in force after {timeout_s:.0f} s")
        time.sleep(0.1)
