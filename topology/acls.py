"""Kafka ACLs as data (``acls.toml``) and what applying them would do: pure, no Kafka I/O.

The file declares one principal per component and, per topic, consumer group and transactional
id, what it may do. Loading validates it against the topology (every literal topic name must be
declared in ``topics.toml``, so a typo cannot grant access to a topic nobody uses) and turns it
into :class:`AclSpec` bindings: ALLOW, any host, a LITERAL or PREFIXED resource pattern.

Planning compares them with the bindings a cluster holds. Missing ones are created; bindings the
file does not declare are reported as *extra* and never deleted (a person decides), as topology
drift is. Only bindings that concern this system are judged: those naming one of its principals
(or every principal, ``User:*``), and those on its topics, groups and transactional ids; the ACLs
of other applications on a shared cluster are none of its business.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from topology.model import Topology, TopologyError

ACLS_FILE = Path(__file__).with_name("acls.toml")
CLUSTER_NAME = "kafka-cluster"
"""Kafka's name for the one CLUSTER resource."""
PREFIX_MARK = "*"

ResourceKind = Literal["topic", "group", "transactional_id", "cluster"]
PatternKind = Literal["literal", "prefixed"]
Permission = Literal["allow", "deny"]

TOPIC_OPERATIONS = frozenset({"read", "write", "describe", "create", "describe_configs"})
_PRINCIPAL_KEYS = frozenset(
    {
        "user",
        "description",
        "super_user",
        "topics",
        "groups",
        "transactional_ids",
        "idempotent_write",
    }
)


@dataclass(frozen=True, slots=True, order=True)
class AclSpec:
    """One ACL binding: ``permission`` of ``principal`` to ``operation`` on a resource pattern."""

    principal: str
    """``User:<name>`` (``User:*``: every principal)."""
    resource: ResourceKind
    name: str
    pattern: PatternKind
    operation: str
    """Lower case Kafka operation name: read, write, describe, create, idempotent_write, ..."""
    permission: Permission = "allow"
    host: str = "*"

    def __str__(self) -> str:
        where = "cluster" if self.resource == "cluster" else f"{self.resource} {self.name!r}"
        if self.pattern == "prefixed":
            where += " (prefix)"
        host = "" if self.host == "*" else f" from {self.host}"
        return (
            f"{self.principal} {self.permission.upper()} {self.operation.upper()} on {where}{host}"
        )

    def matches(self, name: str) -> bool:
        """Whether this binding's resource pattern covers the resource ``name``."""
        if self.pattern == "prefixed":
            return name.startswith(self.name)
        return self.name in ("*", name)


@dataclass(frozen=True, slots=True)
class Principal:
    """One component's identity and what it may do."""

    role: str
    """The name in ``acls.toml`` (``routing-worker``, ``sink``...)."""
    user: str
    """The SASL user name: the principal is ``User:<user>``."""
    description: str
    super_user: bool
    bindings: tuple[AclSpec, ...]

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


@dataclass(frozen=True, slots=True)
class Acls:
    """Every principal of the system, resolved against a topology."""

    principals: tuple[Principal, ...]
    topic_names: frozenset[str]
    """The topology's topics (prefixed): the resources whose ACLs are this system's concern."""

    @property
    def bindings(self) -> tuple[AclSpec, ...]:
        return tuple(b for p in self.principals for b in p.bindings)

    def principal(self, role: str) -> Principal:
        for p in self.principals:
            if p.role == role:
                return p
        raise TopologyError(f"principal {role!r} is not declared in {ACLS_FILE.name}")

    @property
    def super_users(self) -> tuple[str, ...]:
        return tuple(p.user for p in self.principals if p.super_user)

    def concerns(self, binding: AclSpec) -> bool:
        """Whether ``binding`` (seen on a cluster) is this system's to judge: it names one of
        its principals (or all of them), or one of its resources."""
        ours = {p.principal for p in self.principals} | {"User:*"}
        if binding.principal in ours:
            return True
        if binding.resource == "topic":
            return any(binding.matches(name) for name in self.topic_names) or any(
                _same_resource(binding, mine) for mine in self.bindings
            )
        if binding.resource in ("group", "transactional_id"):
            return any(_same_resource(binding, mine) for mine in self.bindings)
        return False


def _same_resource(a: AclSpec, b: AclSpec) -> bool:
    """Whether two bindings' patterns overlap (one covers a name the other names)."""
    if a.resource != b.resource:
        return False
    if a.pattern == "literal" and a.name == "*":
        return True
    if b.pattern == "literal" and b.name == "*":
        return True
    if a.pattern == b.pattern == "literal":
        return a.name == b.name
    if a.pattern == b.pattern:
        return a.name.startswith(b.name) or b.name.startswith(a.name)
    literal, prefixed = (a, b) if a.pattern == "literal" else (b, a)
    return literal.name.startswith(prefixed.name)


def load_acls(topology: Topology, *, path: Path = ACLS_FILE) -> Acls:
    """The principals and bindings of ``path``, checked against ``topology`` (whose prefix is
    put in front of every literal topic name). Raises :class:`TopologyError` naming the place
    of any mistake."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopologyError(f"cannot read {path}: {exc}") from exc
    declared = {name.removeprefix(topology.prefix) for name in topology.names}
    table = raw.get("principals")
    if not isinstance(table, dict) or not table:
        raise TopologyError(f"{path.name}: no [principals.<role>] declared")
    principals = [
        _principal(role, body, topology.prefix, declared, f"{path.name} [principals.{role}]")
        for role, body in table.items()
    ]
    users = [p.user for p in principals]
    duplicates = sorted({u for u in users if users.count(u) > 1})
    if duplicates:
        raise TopologyError(f"{path.name}: user(s) declared twice: {', '.join(duplicates)}")
    return Acls(principals=tuple(principals), topic_names=frozenset(topology.names))


def _principal(role: str, body: Any, prefix: str, declared: set[str], where: str) -> Principal:
    if not isinstance(body, dict):
        raise TopologyError(f"{where}: must be a table")
    unknown = sorted(set(body) - _PRINCIPAL_KEYS)
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    user = body.get("user")
    if not isinstance(user, str) or not user or any(c in user for c in ":*, "):
        raise TopologyError(f"{where}: user must be a plain SASL user name, got {user!r}")
    description = body.get("description", "")
    if not isinstance(description, str) or not description.strip():
        raise TopologyError(f"{where}: missing description")
    super_user = body.get("super_user", False)
    if not isinstance(super_user, bool):
        raise TopologyError(f"{where}: super_user must be true or false")
    principal = f"User:{user}"
    bindings: list[AclSpec] = []
    topics = body.get("topics", {})
    if not isinstance(topics, dict):
        raise TopologyError(f"{where}: topics must be a table of name = [operations]")
    for name, operations in topics.items():
        resource, pattern = _topic_pattern(name, prefix, declared, where)
        for operation in _operations(operations, f"{where} topic {name!r}"):
            bindings.append(AclSpec(principal, "topic", resource, pattern, operation))
    for key, kind, operation in (
        ("groups", "group", "read"),
        ("transactional_ids", "transactional_id", "write"),
    ):
        for name in _names(body.get(key, []), f"{where} {key}"):
            resource, pattern = _pattern(name)
            bindings.append(AclSpec(principal, kind, resource, pattern, operation))  # type: ignore[arg-type]
    idempotent = body.get("idempotent_write", False)
    if not isinstance(idempotent, bool):
        raise TopologyError(f"{where}: idempotent_write must be true or false")
    if idempotent:
        bindings.append(AclSpec(principal, "cluster", CLUSTER_NAME, "literal", "idempotent_write"))
    if super_user and bindings:
        raise TopologyError(f"{where}: a super user needs no grants; remove them")
    if not super_user and not bindings:
        raise TopologyError(f"{where}: grants nothing; declare what it may do")
    if len(set(bindings)) != len(bindings):
        raise TopologyError(f"{where}: a grant is declared twice")
    return Principal(role, user, " ".join(description.split()), super_user, tuple(bindings))


def _pattern(name: str) -> tuple[str, PatternKind]:
    if name.endswith(PREFIX_MARK):
        return name[: -len(PREFIX_MARK)], "prefixed"
    return name, "literal"


def _topic_pattern(
    name: str, prefix: str, declared: set[str], where: str
) -> tuple[str, PatternKind]:
    resource, pattern = _pattern(name)
    if not resource:
        raise TopologyError(f"{where}: an empty topic prefix would cover every topic")
    if pattern == "prefixed":
        return resource, pattern
    if resource not in declared:
        raise TopologyError(f"{where}: topic {name!r} is not declared in topics.toml")
    return prefix + resource, pattern


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip("*") for v in value):
        raise TopologyError(f"{where}: must be a list of names")
    return list(value)


def _operations(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise TopologyError(f"{where}: must be a non-empty list of operations")
    for operation in value:
        if operation not in TOPIC_OPERATIONS:
            raise TopologyError(
                f"{where}: unknown operation {operation!r}; use "
                + ", ".join(sorted(TOPIC_OPERATIONS))
            )
    return list(value)


@dataclass(frozen=True, slots=True)
class AclPlan:
    """What applying the ACLs would do. ``authorizer`` False: the cluster enforces no ACLs (it
    runs no authorizer), so nothing can be created or compared."""

    authorizer: bool
    create: tuple[AclSpec, ...]
    extra: tuple[AclSpec, ...]
    in_sync: tuple[AclSpec, ...]

    @property
    def empty(self) -> bool:
        return not self.create and not self.extra


def plan_acls(acls: Acls, observed: Iterable[AclSpec] | None) -> AclPlan:
    """Compare the declared bindings with those ``observed`` on a cluster (None: the cluster has
    no authorizer)."""
    if observed is None:
        return AclPlan(authorizer=False, create=(), extra=(), in_sync=())
    seen = set(observed)
    desired = acls.bindings
    create = tuple(b for b in desired if b not in seen)
    in_sync = tuple(b for b in desired if b in seen)
    wanted = set(desired)
    extra = tuple(sorted(b for b in seen if b not in wanted and acls.concerns(b)))
    return AclPlan(authorizer=True, create=create, extra=extra, in_sync=in_sync)
