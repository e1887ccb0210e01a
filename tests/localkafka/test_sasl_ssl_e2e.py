"""A SASL_SSL local broker for real: every client of the project connects with nothing but the
``KAFKA_*`` settings ``air-exstream kafka status`` prints, wrong credentials and an untrusted
broker fail fast and say why, and no password shows up in any log, client's or broker's."""

from __future__ import annotations

import asyncio
import gc
import logging
import stat
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streams.cli import cli
from streams.codec import codec_for
from streams.config import KafkaSettings
from streams.demo.processes import ServiceProcess, committed
from streams.domain.records import AccountEvent, CompositionCommand
from streams.localkafka import LocalKafka
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import publish_events, publish_reference
from streams.topic_reader import read_topic
from tests.conftest import consume, unique, wait_for_topics
from tests.e2e.reference import expected_outcome
from tests.exstream.templates import publish_synced_templates
from tests.localkafka.conftest import SecureCluster
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

KAFKA_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SASL_PASSWORD_FILE",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "KAFKA_SCHEMA_REGISTRY_URL",
)
FAIL_WITHIN_S = 30.0
"""A misconfigured client must have said what is wrong by then (it says so in well under 1 s)."""


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], KafkaSettings]:
    """``use(env)``: exactly these ``KAFKA_*`` variables in the environment, and the
    :class:`KafkaSettings` a client of the project builds from them."""

    def use(env: dict[str, str]) -> KafkaSettings:
        for name in KAFKA_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return KafkaSettings()

    return use


@pytest.fixture
def librdkafka_log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    """A logger for confluent-kafka's ``logger`` setting, captured (debug included) by caplog."""
    caplog.set_level(logging.DEBUG)
    return logging.getLogger("tests.librdkafka")


def assert_no_secret(cluster: SecureCluster, *texts: str) -> None:
    for text in texts:
        for secret in cluster.secrets:
            assert secret not in text, "a SASL password was written to a log or output"


def captured(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    return "\n".join([caplog.text, *(r.getMessage() for r in caplog.records), out, err])


# ------------------------------------------------------------------------------ settings


def test_status_prints_every_client_setting_but_never_the_password(
    secure_kafka: SecureCluster,
) -> None:
    state = secure_kafka.local.state_dir
    info = secure_kafka.local.info()
    assert info is not None
    assert secure_kafka.env == {
        "KAFKA_BOOTSTRAP_SERVERS": info.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "air-exstream",
        "KAFKA_SASL_PASSWORD_FILE": str(state / "security" / "client.password"),
        "KAFKA_SSL_CAFILE": str(state / "security" / "ca.pem"),
    }
    assert len(secure_kafka.password) >= 32  # generated for this cluster
    again = CliRunner().invoke(cli, ["kafka", "up", "--sasl-ssl", "--state-dir", str(state)])
    assert again.exit_code == 0, again.output
    assert "already running" in again.output
    assert "export KAFKA_SECURITY_PROTOCOL=SASL_SSL" in again.output.splitlines()
    assert_no_secret(secure_kafka, secure_kafka.status_output, again.output)


# ------------------------------------------------------------------------------ clients


def test_confluent_kafka_produces_and_consumes_over_sasl_ssl(
    secure_kafka: SecureCluster,
    use_env: Callable[[dict[str, str]], KafkaSettings],
    librdkafka_log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = use_env(secure_kafka.env)
    # librdkafka's own debug output (connections, SASL handshake) is captured too
    conf = {**settings.confluent_config(), "logger": librdkafka_log, "debug": "security,broker"}
    topic = unique("sasl-confluent")
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=60)
    wait_for_topics(admin, [topic])
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
    for i in range(30):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(60) == 0
    consumer = Consumer({**conf, "group.id": unique("sasl-group"), "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        got = consume(consumer, 30, timeout_s=90)
    finally:
        consumer.close()
    assert sorted(m.value() or b"" for m in got) == sorted(f"v{i}".encode() for i in range(30))
    logs = captured(caplog, capfd)
    assert "SASL_SSL" in logs or "sasl_ssl" in logs  # the debug output was captured
    assert_no_secret(secure_kafka, logs)


async def test_aiokafka_produces_and_consumes_over_sasl_ssl(
    secure_kafka: SecureCluster,
    use_env: Callable[[dict[str, str]], KafkaSettings],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = use_env(secure_kafka.env)
    topic = unique("sasl-aiokafka")
    admin = AdminClient(settings.confluent_config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=60)
    wait_for_topics(admin, [topic])
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all")
    await asyncio.wait_for(producer.start(), 60)
    try:
        for i in range(20):
            await producer.send_and_wait(topic, f"a{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        **settings.aiokafka_kwargs(),
        group_id=unique("sasl-aio-group"),
        auto_offset_reset="earliest",
    )
    await asyncio.wait_for(consumer.start(), 60)
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 90
        while len(values) < 20 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            values += [r.value for records in batch.values() for r in records if r.value]
    finally:
        await consumer.stop()
    assert values == [f"a{i}".encode() for i in range(20)]
    assert_no_secret(secure_kafka, captured(caplog, capfd))


def test_clients_may_choose_scram_sha_256(
    secure_kafka: SecureCluster, use_env: Callable[[dict[str, str]], KafkaSettings]
) -> None:
    settings = use_env({**secure_kafka.env, "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"})
    brokers = AdminClient(settings.confluent_config()).list_topics(timeout=30).brokers
    assert list(brokers) == [1]


@pytest.mark.timeout(600)
def test_the_routing_worker_routes_events_over_sasl_ssl(
    secure_kafka: SecureCluster,
    use_env: Callable[[dict[str, str]], KafkaSettings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = use_env(secure_kafka.env)
    conf = settings.confluent_config()
    prefix = f"sasl{uuid.uuid4().hex[:6]}."
    topology = load_topology("local", prefix=prefix)
    apply_topology(conf, topology)
    dataset = generate(Scenario(seed=424242, customers=40, events=150, invalid_share=0.05))
    account_topic = topology.name(names.ACCOUNT_EVENTS)
    case_topic = topology.name(names.CASE_EVENTS)
    publish_reference(dataset, topology, conf)
    # templates are Exstream's: published as the template sync publishes them
    publish_synced_templates(dataset.templates, topology, conf)

    app_id = f"router-sasl-{uuid.uuid4().hex[:6]}"
    worker = ServiceProcess(
        app_id,
        ["worker", "--prefix", prefix],
        tmp_path,
        # the printed settings, as an operator would export them: nothing else
        {
            **secure_kafka.env,
            "AIR_EXSTREAM_APP_ID": app_id,
            "AIR_EXSTREAM_DATA_DIR": str(tmp_path / "data"),
        },
    )
    worker.start()
    try:
        _wait_committed(conf, app_id, [topology.name(names.PREFERENCES)], worker)
        publish_events(dataset.events, topology, conf, seed=1)
        expected = expected_outcome(
            dataset,
            source_topics=lambda e: account_topic if isinstance(e, AccountEvent) else case_topic,
        )
        commands_topic = topology.name(names.COMMANDS)
        deadline = time.monotonic() + 300
        produced: list[CompositionCommand] = []
        codec = codec_for(CompositionCommand)
        while len(produced) < len(expected.commands):
            assert worker.alive(), worker.tail()
            assert time.monotonic() < deadline, (len(produced), worker.tail())
            time.sleep(1.0)
            produced = [
                codec.decode(r.value)
                for r in read_topic(
                    settings.require_bootstrap(), commands_topic, client_config=conf
                )
            ]
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert "Authenticated as air-exstream via SCRAM-SHA-512" in log
    assert len(expected.commands) >= 20, "the workload must route a fair number of events"
    assert {c.communication_id: c for c in produced} == expected.commands
    assert len(produced) == len(expected.commands)  # none twice
    assert_no_secret(secure_kafka, log, captured(caplog, capfd))


def _wait_committed(
    conf: dict[str, str], group: str, topics: list[str], worker: ServiceProcess
) -> None:
    """Until ``group`` committed every record of ``topics`` (the worker holds the table)."""
    probe = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:
        meta = probe.list_topics(timeout=30)
        ends = {
            TopicPartition(t, p): probe.get_watermark_offsets(
                TopicPartition(t, p), timeout=30, cached=False
            )[1]
            for t in topics
            for p in meta.topics[t].partitions
        }
        deadline = time.monotonic() + 300
        while True:
            assert worker.alive(), worker.tail()
            done = committed(probe, list(ends))
            if all(end == 0 or done.get(tp, -1) >= end for tp, end in ends.items()):
                return
            assert time.monotonic() < deadline, (done, ends, worker.tail())
            time.sleep(0.5)
    finally:
        probe.close()


# ------------------------------------------------------------------------------ failures


def _first_error(conf: Mapping[str, str], logger: logging.Logger) -> tuple[KafkaError, float]:
    """The first error a librdkafka producer reports with ``conf``, and how long it took."""
    errors: list[KafkaError] = []
    producer = Producer({**conf, "logger": logger, "error_cb": errors.append})
    started = time.monotonic()
    try:
        while not errors and time.monotonic() - started < FAIL_WITHIN_S:
            producer.poll(0.2)
    finally:
        producer.flush(0)
    assert errors, f"no error reported within {FAIL_WITHIN_S} s"
    return errors[0], time.monotonic() - started


def _collect_unclosed_sockets() -> None:
    """Collect asyncio sockets that clients left unclosed, ignoring their ResourceWarning.

    A CI run failed the long three-node test (sync, no asyncio of its own) on an unraisable
    ResourceWarning for an unclosed ``_SelectorSocketTransport``: garbage left by an earlier
    asyncio client test and collected by chance during it. The refused aiokafka handshakes
    below are the likely source, but a reproduction did not show it, so every test of this
    module collects its own leftovers at teardown instead of letting them fail a later test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(autouse=True)
def handshake_leaks() -> Iterator[None]:
    """After each test (its event loop closed), collect what its clients left unclosed."""
    yield
    _collect_unclosed_sockets()


async def _aiokafka_start_error(settings: KafkaSettings) -> tuple[KafkaConnectionError, float]:
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), request_timeout_ms=10_000)
    started = time.monotonic()
    try:
        with pytest.raises(KafkaConnectionError) as caught:
            await asyncio.wait_for(producer.start(), FAIL_WITHIN_S)
    finally:
        await producer.stop()
        _collect_unclosed_sockets()
    return caught.value, time.monotonic() - started


async def test_a_wrong_password_is_a_prompt_authentication_error(
    secure_kafka: SecureCluster,
    use_env: Callable[[dict[str, str]], KafkaSettings],
    librdkafka_log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    wrong = "not-the-password-" + uuid.uuid4().hex
    env = {k: v for k, v in secure_kafka.env.items() if k != "KAFKA_SASL_PASSWORD_FILE"}
    settings = use_env({**env, "KAFKA_SASL_PASSWORD": wrong})

    error, took = _first_error(settings.confluent_config(), librdkafka_log)
    assert error.code() == KafkaError._AUTHENTICATION
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in error.str()
    assert took < FAIL_WITHIN_S

    _, took = await _aiokafka_start_error(settings)
    assert took < FAIL_WITHIN_S
    reasons = [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")]
    assert any("SaslAuthenticationFailed" in m and "invalid credentials" in m for m in reasons)
    logs = captured(caplog, capfd)
    assert_no_secret(secure_kafka, logs)
    assert wrong not in logs


async def test_a_client_not_trusting_the_ca_refuses_the_broker(
    secure_kafka: SecureCluster,
    use_env: Callable[[dict[str, str]], KafkaSettings],
    librdkafka_log: logging.Logger,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # no KAFKA_SSL_CAFILE: the system's trust store, which has never heard of this CA
    env = {k: v for k, v in secure_kafka.env.items() if k != "KAFKA_SSL_CAFILE"}
    settings = use_env(env)

    error, took = _first_error(settings.confluent_config(), librdkafka_log)
    # librdkafka reports the failed handshake as _SSL or as _TRANSPORT, depending on timing
    assert error.code() in (KafkaError._SSL, KafkaError._TRANSPORT)
    assert "certificate verify failed" in error.str()
    assert took < FAIL_WITHIN_S

    _, took = await _aiokafka_start_error(settings)
    assert took < FAIL_WITHIN_S
    reasons = [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")]
    assert any("CERTIFICATE_VERIFY_FAILED" in m for m in reasons)
    assert_no_secret(secure_kafka, captured(caplog, capfd))


# ------------------------------------------------------------------------------ three nodes


@pytest.mark.timeout(600)
def test_three_nodes_replicate_to_each_other_over_sasl_ssl(
    tmp_path: Path, use_env: Callable[[dict[str, str]], KafkaSettings]
) -> None:
    """The brokers' own traffic (replication, here) goes through the SASL_SSL listener too."""
    local = LocalKafka(tmp_path / "state", nodes=3, security="sasl_ssl", die_with_parent=True)
    info = local.start()
    try:
        assert info.client_security is not None
        settings = use_env(
            {"KAFKA_BOOTSTRAP_SERVERS": info.bootstrap_servers} | info.client_security.environment()
        )
        conf = settings.confluent_config()
        topic = unique("sasl-replicated")
        admin = AdminClient(conf)
        new = NewTopic(topic, 2, 3, config={"min.insync.replicas": "3"})
        admin.create_topics([new])[topic].result(timeout=60)
        wait_for_topics(admin, [topic])
        producer = Producer({**conf, "acks": "all", "enable.idempotence": True})
        for i in range(20):
            producer.produce(topic, value=f"r{i}".encode())
        # acks=all with min.insync.replicas=3: acknowledged only once both followers fetched
        # every record from the leader, broker to broker
        assert producer.flush(120) == 0
        partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
        assert all(sorted(p.isrs) == [1, 2, 3] for p in partitions.values())
    finally:
        local.stop()


# ------------------------------------------------------------------------------ the broker side


def test_passwords_live_only_in_their_private_files(secure_kafka: SecureCluster) -> None:
    """Run last in this module: by now the broker has logged its start, the clients' sessions
    and the failed logins above."""
    state = secure_kafka.local.state_dir
    client_file = state / "security" / "client.password"
    holders: dict[str, list[Path]] = {secret: [] for secret in secure_kafka.secrets}
    logs = []
    for path in sorted(p for p in state.rglob("*") if p.is_file() and "data" not in p.parts):
        text = path.read_text(errors="replace")
        if path.suffix == ".log":
            logs.append(path.name)
        for secret, found in holders.items():
            if secret in text:
                found.append(path)
    assert {"server.log", "console.log", "format.log"} <= set(logs)
    assert holders[secure_kafka.password] == [client_file]
    assert holders[secure_kafka.broker_password] == [state / "node-1" / "server.properties"]
    for private in (client_file, state / "node-1" / "server.properties"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "security" / "broker-keystore.pem").stat().st_mode) == 0o600
    assert not (state / "node-1" / "format.args").exists()  # the salted credentials are gone
    server_log = (state / "node-1" / "server.log").read_text(errors="replace")
    assert "advertised.listeners = SASL_SSL://127.0.0.1:" in server_log
