"""ACLs as data: the declared policy, the file's validation and the plan against a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from topology import names
from topology.acls import CLUSTER_NAME, Acls, AclSpec, load_acls, plan_acls
from topology.model import TopologyError, load_topology

pytestmark = pytest.mark.unit

ROLES = {
    "admin",
    "routing-worker",
    "sink",
    "webhook-receiver",
    "ondemand",
    "template-sync",
    "air-publisher",
    "audit-reader",
}


@pytest.fixture(scope="module")
def acls() -> Acls:
    return load_acls(load_topology("local"))


def writers(acls: Acls, topic: str) -> set[str]:
    return {
        p.role
        for p in acls.principals
        for b in p.bindings
        if b.resource == "topic" and b.operation == "write" and b.matches(topic)
    }


def readers(acls: Acls, topic: str) -> set[str]:
    return {
        p.role
        for p in acls.principals
        for b in p.bindings
        if b.resource == "topic" and b.operation == "read" and b.matches(topic)
    }


def test_one_principal_per_component_with_its_own_user(acls: Acls) -> None:
    assert {p.role for p in acls.principals} == ROLES
    assert len({p.user for p in acls.principals}) == len(ROLES)
    admin = acls.principal("admin")
    assert admin.super_user
    assert admin.bindings == ()
    assert acls.super_users == (admin.user,)


# the policy restated independently of acls.toml: a change there that widens access fails here
def test_only_the_routing_worker_writes_the_trail_its_checkpoints_and_commands(acls: Acls) -> None:
    for topic in (names.AUDIT, names.AUDIT_CHECKPOINTS, names.COMMANDS):
        assert writers(acls, topic) == {"routing-worker"}, topic
    assert writers(acls, names.AUDIT_INTAKE) == {"routing-worker", "ondemand"}
    assert writers(acls, names.DELIVERY_EVENTS) == {"webhook-receiver"}
    assert writers(acls, names.SUBMISSIONS) == {"sink"}
    assert writers(acls, names.TEMPLATES) == {"template-sync"}
    for topic in (names.ACCOUNT_EVENTS, names.CASE_EVENTS, names.PREFERENCES, names.COMM_RULES):
        assert writers(acls, topic) == {"air-publisher"}, topic
    assert writers(acls, names.dlq(names.COMMANDS)) == {"sink"}
    assert writers(acls, names.dlq(names.DELIVERY_EVENTS)) == {"routing-worker", "webhook-receiver"}


def test_the_audit_trail_is_read_by_auditors_only(acls: Acls) -> None:
    assert readers(acls, names.AUDIT) == {"audit-reader"}
    assert readers(acls, names.AUDIT_CHECKPOINTS) == {"audit-reader"}
    assert readers(acls, names.COMMANDS) == {"sink"}
    reader = acls.principal("audit-reader")
    assert {b.operation for b in reader.bindings} == {"read"}  # no write, no idempotent write


def test_every_topic_has_a_writer(acls: Acls) -> None:
    topology = load_topology("local")
    orphans = [t.name for t in topology.topics if not writers(acls, t.name)]
    assert orphans == []


def test_the_routing_worker_owns_its_group_transactions_and_internal_topics(acls: Acls) -> None:
    worker = acls.principal("routing-worker")
    assert AclSpec(worker.principal, "group", "air-exstream-router", "literal", "read") in set(
        worker.bindings
    )
    tids = [b for b in worker.bindings if b.resource == "transactional_id"]
    assert tids == [
        AclSpec(worker.principal, "transactional_id", "air-exstream-router", "prefixed", "write")
    ]
    internal = {
        b.operation
        for b in worker.bindings
        if b.resource == "topic" and b.pattern == "prefixed" and b.name == "air-exstream-router-"
    }
    assert internal == {"create", "read", "write"}
    assert AclSpec(worker.principal, "cluster", CLUSTER_NAME, "literal", "idempotent_write") in set(
        worker.bindings
    )
    # the prefixes of a transactional id and of a group cover the worker's names, no others
    assert tids[0].matches("air-exstream-router-events-3")
    assert not tids[0].matches("air-exstream-sink")


def test_the_topology_prefix_applies_to_declared_topics_not_to_patterns() -> None:
    acls = load_acls(load_topology("local", prefix="t9."))
    sink = {b.name for b in acls.principal("sink").bindings if b.resource == "topic"}
    assert sink == {
        "t9." + names.COMMANDS,
        "t9." + names.SUBMISSIONS,
        "t9." + names.SINK_BATCHES,
        "t9." + names.dlq(names.COMMANDS),
    }
    worker = acls.principal("routing-worker")
    assert "air-exstream-router-" in {b.name for b in worker.bindings if b.pattern == "prefixed"}


# ------------------------------------------------------------------------------ validation


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "acls.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('user = "x"\ndescription = "d"\n[principals.a.topics]\n"nope.v1" = ["read"]', "nope.v1"),
        (
            'user = "x"\ndescription = "d"\n[principals.a.topics]\n"air.case-events.v1" = ["eat"]',
            "unknown operation 'eat'",
        ),
        ('user = "x"\ndescription = "d"\ncolour = "red"', "unknown key"),
        ('user = "x"\ndescription = "d"', "grants nothing"),
        ('user = "x"\ndescription = "d"\nsuper_user = true\ngroups = ["g"]', "super user"),
        ('user = "x"\ndescription = "d"\n[principals.a.topics]\n"*" = ["read"]', "every topic"),
        ('user = "User:x"\ndescription = "d"\ngroups = ["g"]', "plain SASL user"),
        ('user = "x"\ngroups = ["g"]', "missing description"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, f"[principals.a]\n{body}\n")
    with pytest.raises(TopologyError, match=message):
        load_acls(load_topology("local"), path=path)


def test_a_user_declared_twice_is_refused(tmp_path: Path) -> None:
    text = (
        '[principals.a]\nuser = "x"\ndescription = "d"\ngroups = ["g"]\n'
        '[principals.b]\nuser = "x"\ndescription = "d"\ngroups = ["h"]\n'
    )
    with pytest.raises(TopologyError, match="declared twice: x"):
        load_acls(load_topology("local"), path=write(tmp_path, text))


# ------------------------------------------------------------------------------ plan


def test_missing_bindings_are_created_and_present_ones_in_sync(acls: Acls) -> None:
    declared = list(acls.bindings)
    first = plan_acls(acls, [])
    assert first.authorizer
    assert set(first.create) == set(declared)
    half = declared[: len(declared) // 2]
    second = plan_acls(acls, half)
    assert set(second.in_sync) == set(half)
    assert set(second.create) == set(declared) - set(half)
    assert plan_acls(acls, declared).empty


def test_extra_bindings_that_concern_the_system_are_reported(acls: Acls) -> None:
    webhook = acls.principal("webhook-receiver").principal
    widened = AclSpec(webhook, "topic", names.AUDIT, "literal", "write")
    outsider_on_audit = AclSpec("User:mallory", "topic", names.AUDIT, "literal", "write")
    everyone_everywhere = AclSpec("User:*", "topic", "*", "literal", "all")
    prefix_over_ours = AclSpec("User:mallory", "topic", "audit.", "prefixed", "read")
    steals_router_ids = AclSpec("User:mallory", "transactional_id", "air-ex", "prefixed", "write")
    foreign = AclSpec("User:billing", "topic", "billing.invoices", "literal", "write")
    foreign_group = AclSpec("User:billing", "group", "billing", "literal", "read")
    observed = [
        *acls.bindings,
        widened,
        outsider_on_audit,
        everyone_everywhere,
        prefix_over_ours,
        steals_router_ids,
        foreign,
        foreign_group,
    ]
    result = plan_acls(acls, observed)
    assert not result.create
    assert set(result.extra) == {
        widened,
        outsider_on_audit,
        everyone_everywhere,
        prefix_over_ours,
        steals_router_ids,
    }
    assert "User:air-exstream-webhook ALLOW WRITE on topic 'audit.communications.v1'" in [
        str(b) for b in result.extra
    ]


def test_without_an_authorizer_nothing_applies(acls: Acls) -> None:
    result = plan_acls(acls, None)
    assert not result.authorizer
    assert result.empty
