"""Least privilege on a real SASL_SSL cluster with Kafka's StandardAuthorizer: each component's
principal can do its job and nothing else, tried with real client calls (confluent-kafka) under
each component's own SCRAM user, after ``topology apply`` created the topics and the ACLs of
``topology/acls.toml``.

The expectations below restate the policy independently of ``acls.toml``: a grant added there by
mistake fails these tests."""

from __future__ import annotations

import time
import uuid

import pytest
from click.testing import CliRunner
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AclBindingFilter, AdminClient, NewTopic

from streams.audit.reader import audit_records
from streams.audit.trail import verify_trail
from streams.kafka_writer import KafkaWriteError, KafkaWriter
from tests.localkafka.conftest import SecureCluster
from topology import names
from topology.acls import AclSpec
from topology.apply import apply_acls, apply_topology, diff_acls, to_binding
from topology.cli import topology as topology_cli
from topology.model import load_topology

pytestmark = pytest.mark.e2e

DLQ = names.dlq
WRITES: dict[str, set[str]] = {
    "routing-worker": {
        names.COMMANDS,
        names.COMMUNICATION_STATUS,
        names.DOCUMENT_METADATA,
        names.ALIGNMENT_ALERTS,
        names.AUDIT,
        names.AUDIT_CHECKPOINTS,
        names.AUDIT_INTAKE,
        *(
            DLQ(t)
            for t in (
                names.ACCOUNT_EVENTS,
                names.CASE_EVENTS,
                names.DOCUMENT_REQUESTS,
                names.PREFERENCES,
                names.COMM_RULES,
                names.TEMPLATES,
                names.DELIVERY_EVENTS,
                names.AUDIT_INTAKE,
            )
        ),
    },
    "sink": {names.SUBMISSIONS, names.SINK_BATCHES, DLQ(names.COMMANDS)},
    "webhook-receiver": {names.DELIVERY_EVENTS, DLQ(names.DELIVERY_EVENTS)},
    "ondemand": {names.DOCUMENT_METADATA, names.AUDIT_INTAKE},
    "template-sync": {names.TEMPLATES},
    "air-publisher": {
        names.ACCOUNT_EVENTS,
        names.CASE_EVENTS,
        names.DOCUMENT_REQUESTS,
        names.PREFERENCES,
        names.COMM_RULES,
    },
    "audit-reader": set(),
}
"""What each component may write: exactly these topics of the topology."""

READS: dict[str, tuple[str, set[str]]] = {
    "routing-worker": (
        "air-exstream-router",
        {
            names.ACCOUNT_EVENTS,
            names.CASE_EVENTS,
            names.DOCUMENT_REQUESTS,
            names.PREFERENCES,
            names.COMM_RULES,
            names.TEMPLATES,
            names.DELIVERY_EVENTS,
            names.AUDIT_INTAKE,
        },
    ),
    "sink": ("air-exstream-sink", {names.COMMANDS, names.SINK_BATCHES}),
    "template-sync": ("air-exstream-template-sync", {names.TEMPLATES}),
    "audit-reader": (
        f"air-exstream-reader-{uuid.uuid4().hex}",
        {names.AUDIT, names.AUDIT_CHECKPOINTS},
    ),
}
"""What each component may read, in which consumer group; the others read nothing in a group."""

ASSIGNED_READS: dict[str, set[str]] = {"ondemand": {names.TEMPLATES}}
"""What a component reads without a consumer group (assigned partitions, nothing committed, as
:class:`~streams.routing.reference.ReferenceView` does); the others read nothing that way."""

DENIED_TOPIC = KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.fixture(scope="module")
def cluster(secure_kafka: SecureCluster) -> SecureCluster:
    """The package's SASL_SSL cluster with the whole (unprefixed) topology and its ACLs applied
    by the admin, and one record on every topic (so readers have something to read)."""
    admin = secure_kafka.admin_config()
    topology = load_topology("local")
    apply_topology(admin, topology)
    plan = apply_acls(admin, secure_kafka.acls)
    assert plan.authorizer
    assert not plan.extra
    producer = Producer({**admin, "acks": "all"})
    failed: list[object] = []
    for name in topology.names:
        producer.produce(
            name,
            key=b"c-1",
            value=b"seed",
            on_delivery=lambda e, _m: failed.append(e) if e else None,
        )
    assert producer.flush(60) == 0
    assert failed == []
    return secure_kafka


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def write_everywhere(conf: dict[str, str], topics: list[str], value: bytes) -> dict[str, object]:
    """Produce ``value`` to every topic; returns topic -> None (written) or the error code."""
    outcome: dict[str, object] = {}

    def report(err: KafkaError | None, msg: object) -> None:
        topic = msg.topic()  # type: ignore[attr-defined]
        outcome[topic] = None if err is None else err.code()

    producer = Producer(
        {**conf, "acks": "all", "enable.idempotence": False, "message.timeout.ms": 20_000}
    )
    for topic in topics:
        producer.produce(topic, key=b"c-1", value=value, on_delivery=report)
    producer.flush(60)
    assert set(outcome) == set(topics), "every write gets a delivery report"
    return outcome


def landed(conf: dict[str, str], topics: list[str], *, group: str) -> dict[str, list[bytes]]:
    """Every committed record of ``topics``, read by the admin (``read_committed``)."""
    consumer = Consumer(
        {
            **conf,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(timeout=30)
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for p in meta.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=30, cached=False
                )
                if high > low:
                    ends[(topic, p)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        found: dict[str, list[bytes]] = {t: [] for t in topics}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            positions = consumer.position([TopicPartition(t, p) for t, p in ends])
            if all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions):
                return found
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                found[msg.topic() or ""].append(msg.value() or b"")
        raise AssertionError("the admin could not read every topic to its end")
    finally:
        consumer.close()


# ------------------------------------------------------------------------------ writes


def test_each_principal_writes_where_it_may_and_nothing_else_lands(cluster: SecureCluster) -> None:
    topics = load_topology("local").names
    tag = marker()
    outcomes = {
        role: write_everywhere(cluster.config_of(role), topics, f"{tag}:{role}".encode())
        for role in WRITES
    }
    for role, allowed in WRITES.items():
        written = {t for t, code in outcomes[role].items() if code is None}
        assert written == allowed, (role, outcomes[role])
        refused = {code for t, code in outcomes[role].items() if code is not None}
        assert refused <= {DENIED_TOPIC}, (role, refused)
    # nothing of a refused write is on the broker, not even in an uncommitted state
    on_broker = landed(cluster.admin_config(), topics, group=f"admin-{tag}")
    seen = {
        (topic, value.decode().split(":", 1)[1])
        for topic, values in on_broker.items()
        for value in values
        if value.startswith(tag.encode())
    }
    assert seen == {(t, role) for role, allowed in WRITES.items() for t in allowed}


async def test_a_denied_write_is_a_clear_error_from_the_components_own_writer(
    cluster: SecureCluster,
) -> None:
    """The webhook receiver's and the on-demand service's writer (idempotent, acks=all) as
    those components run it: their own topics work, the commands and the trail do not."""
    tag = marker()
    webhook = KafkaWriter(cluster.config_of("webhook-receiver"), timeout_s=20)
    try:
        await webhook.send(names.DELIVERY_EVENTS, b"c-1", tag.encode())
        for forbidden in (names.COMMANDS, names.AUDIT, names.AUDIT_INTAKE):
            with pytest.raises(KafkaWriteError, match="Topic authorization failed"):
                await webhook.send(forbidden, b"c-1", tag.encode())
    finally:
        webhook.close()
    ondemand = KafkaWriter(cluster.config_of("ondemand"), timeout_s=20)
    try:
        await ondemand.send(names.AUDIT_INTAKE, b"c-1", tag.encode())
        with pytest.raises(KafkaWriteError, match="Topic authorization failed"):
            await ondemand.send(names.AUDIT, b"c-1", tag.encode())
    finally:
        ondemand.close()
    on_broker = landed(
        cluster.admin_config(),
        [names.DELIVERY_EVENTS, names.COMMANDS, names.AUDIT, names.AUDIT_INTAKE],
        group=f"admin-{tag}",
    )
    assert {t: sum(v == tag.encode() for v in vs) for t, vs in on_broker.items()} == {
        names.DELIVERY_EVENTS: 1,
        names.COMMANDS: 0,
        names.AUDIT: 0,
        names.AUDIT_INTAKE: 1,
    }


def test_an_audit_reader_cannot_even_start_an_idempotent_producer(cluster: SecureCluster) -> None:
    producer = Producer(
        {**cluster.config_of("audit-reader"), "enable.idempotence": True, "linger.ms": 0}
    )
    # no IDEMPOTENT_WRITE and no WRITE on any topic: the producer id is refused, which is fatal
    producer.produce(names.AUDIT, value=b"forged")
    with pytest.raises(KafkaException) as refused:
        producer.flush(30)
    error = refused.value.args[0]
    assert error.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert error.fatal()
    assert "Cluster authorization failed" in error.str()


# ------------------------------------------------------------------------------ reads


def readable(conf: dict[str, str], group: str, topics: list[str]) -> tuple[set[str], set[int]]:
    """Which of ``topics`` a consumer in ``group`` gets records of (each holds one), and the
    error codes it is told about the others."""
    consumer = Consumer(
        {
            **conf,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    got: set[str] = set()
    refused: set[str] = set()
    errors: set[int] = set()
    try:
        # subscribed, a topic the principal may not read is reported at once, by name
        consumer.subscribe(topics)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and got | refused != set(topics):
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                got.add(msg.topic() or "")
                continue
            errors.add(err.code())
            if err.code() == DENIED_TOPIC and msg.topic():
                refused.add(msg.topic() or "")
            elif err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                break
    finally:
        consumer.close()
    return got, errors


def test_each_principal_reads_only_its_inputs(cluster: SecureCluster) -> None:
    topics = list(load_topology("local").names)
    for role, (group, allowed) in READS.items():
        got, errors = readable(cluster.config_of(role), group, topics)
        assert got == allowed, role
        assert DENIED_TOPIC in errors, role
    for role in ("webhook-receiver", "ondemand", "air-publisher"):
        got, errors = readable(cluster.config_of(role), f"{role}-group", topics)
        assert got == set(), role
        assert errors, role
    for role in ("webhook-receiver", "ondemand", "air-publisher"):
        got, errors = readable_assigned(cluster.config_of(role), topics)
        assert got == ASSIGNED_READS.get(role, set()), role
        assert DENIED_TOPIC in errors, role


def readable_assigned(conf: dict[str, str], topics: list[str]) -> tuple[set[str], set[int]]:
    """Which of ``topics`` a consumer gets records of through assigned partitions (no group
    coordination: fetches need only the topic's READ), and the error codes of the others."""
    consumer = Consumer(
        {**conf, "group.id": f"assigned-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    got: set[str] = set()
    refused: set[str] = set()
    errors: set[int] = set()
    try:
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(6)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and got | refused != set(topics):
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                got.add(msg.topic() or "")
            else:
                errors.add(err.code())
                if err.code() == DENIED_TOPIC and msg.topic():
                    refused.add(msg.topic() or "")
    finally:
        consumer.close()
    return got, errors


def test_a_consumer_group_is_its_components_alone(cluster: SecureCluster) -> None:
    conf = cluster.config_of("sink")
    consumer = Consumer(
        {**conf, "group.id": "air-exstream-router", "auto.offset.reset": "earliest"}
    )
    codes: set[int] = set()
    try:
        consumer.subscribe([names.COMMANDS])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not codes:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is not None:
                codes.add(msg.error().code())  # type: ignore[union-attr]
    finally:
        consumer.close()
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in codes


def test_the_audit_reader_reads_the_trail_with_the_projects_reader(cluster: SecureCluster) -> None:
    info = cluster.local.info()
    assert info is not None
    conf = cluster.config_of("audit-reader")
    records = list(audit_records(info.bootstrap_servers, names.AUDIT, conf))
    assert any(raw.value == b"seed" for raw, _ in records)
    # and the signed verification's reader: the trail and its checkpoints, in its own group
    report = verify_trail(info.bootstrap_servers, names.AUDIT, names.AUDIT_CHECKPOINTS, {}, conf)
    assert report.records >= 1
    assert report.checkpoints_read >= 1


# ------------------------------------------------------------------------------ transactions


def test_the_routing_worker_runs_transactions_under_its_prefix_only(cluster: SecureCluster) -> None:
    conf = cluster.config_of("routing-worker")
    tag = marker()
    group = Consumer({**conf, "group.id": "air-exstream-router", "enable.auto.commit": False})
    producer = Producer({**conf, "transactional.id": "air-exstream-router-events-0"})
    try:
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.produce(names.COMMANDS, key=b"c-1", value=tag.encode())
        producer.produce(names.AUDIT, key=b"c-1", value=tag.encode())
        producer.send_offsets_to_transaction(
            [TopicPartition(names.ACCOUNT_EVENTS, 0, 1)], group.consumer_group_metadata(), 30
        )
        producer.commit_transaction(30)
    finally:
        group.close()
    on_broker = landed(cluster.admin_config(), [names.COMMANDS, names.AUDIT], group=f"a-{tag}")
    assert all(tag.encode() in values for values in on_broker.values())

    for role, transactional_id in (
        ("routing-worker", "intruder-0"),
        ("sink", "air-exstream-router-events-1"),
    ):
        other = Producer({**cluster.config_of(role), "transactional.id": transactional_id})
        with pytest.raises(KafkaException) as refused:
            other.init_transactions(30)
        assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


# ------------------------------------------------------------------------------ administration


def test_no_component_may_grant_itself_more_or_remove_the_trail(cluster: SecureCluster) -> None:
    for role in ("routing-worker", "webhook-receiver", "audit-reader"):
        admin = AdminClient(cluster.config_of(role))
        grant = AclSpec(
            cluster.acls.principal(role).principal, "topic", names.AUDIT, "literal", "all"
        )
        with pytest.raises(KafkaException) as acl:
            next(iter(admin.create_acls([to_binding(grant)]).values())).result()
        assert acl.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, role
        with pytest.raises(KafkaException) as delete:
            admin.delete_topics([names.AUDIT])[names.AUDIT].result(30)
        assert delete.value.args[0].code() == DENIED_TOPIC, role
        with pytest.raises(KafkaException) as create:
            admin.create_topics([NewTopic("audit.copy.v1", 1, 1)])["audit.copy.v1"].result(30)
        assert create.value.args[0].code() in (
            DENIED_TOPIC,
            KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        )
    assert names.AUDIT in AdminClient(cluster.admin_config()).list_topics(timeout=30).topics


def test_the_routing_worker_creates_its_internal_topics_and_no_one_else(
    cluster: SecureCluster,
) -> None:
    name = f"air-exstream-router-{marker()}-changelog"
    sink = AdminClient(cluster.config_of("sink"))
    with pytest.raises(KafkaException):
        sink.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    worker = AdminClient(cluster.config_of("routing-worker"))
    worker.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    outcome = write_everywhere(cluster.config_of("routing-worker"), [name], b"state")
    assert outcome == {name: None}


def test_a_component_applying_the_topology_creates_nothing_and_does_not_fail(
    cluster: SecureCluster,
) -> None:
    """Services apply the topology at start; under a component's principal the topics it may
    not see are reported as not allowed instead of stopping the service."""
    topology = load_topology("local", prefix=f"{marker()}.")
    result = apply_topology(cluster.config_of("webhook-receiver"), topology)
    assert not result.create
    assert set(result.not_authorized) == set(topology.names)


def exactly(spec: AclSpec) -> AclBindingFilter:
    """A filter matching the one binding ``spec``."""
    binding = to_binding(spec)
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def test_diff_reports_missing_and_extra_acls_and_apply_restores(
    cluster: SecureCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    clean = runner.invoke(topology_cli, ["diff"])
    assert clean.exit_code == 0, clean.output
    assert "0 would create, 0 extra" in clean.output

    admin = AdminClient(cluster.admin_config())
    webhook = cluster.acls.principal("webhook-receiver").principal
    widened = AclSpec(webhook, "topic", names.AUDIT, "literal", "write")
    sink_reads = AclSpec(
        cluster.acls.principal("sink").principal, "topic", names.COMMANDS, "literal", "read"
    )
    next(iter(admin.create_acls([to_binding(widened)]).values())).result()
    deleted = admin.delete_acls([exactly(sink_reads)])
    assert next(iter(deleted.values())).result()
    try:
        drifted = runner.invoke(topology_cli, ["diff"])
        assert drifted.exit_code == 2
        assert f"EXTRA  ACL {widened} (not in acls.toml)" in drifted.output
        assert f"would create  ACL {sink_reads}" in drifted.output
        applied = runner.invoke(topology_cli, ["apply"])
        assert applied.exit_code == 2  # the extra one stays: a person decides
        assert f"created  ACL {sink_reads}" in applied.output
        assert diff_acls(cluster.admin_config(), cluster.acls).extra == (widened,)
    finally:
        next(iter(admin.delete_acls([exactly(widened)]).values())).result()
    after = diff_acls(cluster.admin_config(), cluster.acls)
    assert after.empty
    assert len(after.in_sync) == len(cluster.acls.bindings)
