"""The whole demo against a real schema registry (issue 15, item 2).

``air-exstream demo`` runs with ``KAFKA_SCHEMA_REGISTRY_URL`` naming the session's registry
(Apicurio, Confluent-compatible API); every child process inherits it. The routing worker, the
template sync, the webhook receiver, the on-demand service and the bulk sink are separate
processes. Afterwards:

- every topic of the topology that the project writes and that holds Avro records holds one
  framing only: the Confluent wire format, each schema id one the registry knows for the
  subject ``<topic>-value``, and each record decodes as the topic's record type. Not checked:
  ``audit.checkpoints.v1`` and ``exstream.sink-batches.v1`` (JSON by design), and the topics the
  demo's Air Inc. simulator publishes (events, document requests, preferences, rules): a
  publisher may use any framing, and the simulator deliberately mixes in JSON records and
  corrupt bytes;
- no record anywhere was dead-lettered for its framing (``BAD_MAGIC``, ``NO_SCHEMA_REGISTRY``,
  ``UNKNOWN_SCHEMA``) except the simulator's deliberately random bytes;
- the summary is as consistent as without a registry (every record routes, every command is a
  document, the audit chain verifies).
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from streams.codec import Codecs
from streams.demo.run import DemoOptions, run_demo
from streams.domain import records
from streams.domain.records import DeadLetter
from streams.simulator.generator import Scenario, generate
from streams.simulator.publish import event_bytes, request_bytes
from streams.topic_reader import read_topic
from tests.conftest import KafkaCluster, SchemaRegistry
from tests.demo.summary_checks import assert_consistent_summary, assert_every_process_stopped
from topology import names
from topology.model import Topology, load_topology

pytestmark = pytest.mark.e2e

SCENARIO = Scenario(seed=11, customers=80, events=500, invalid_share=0.03, document_requests=90)

PUBLISHED_BY_AIR_INC = (
    names.ACCOUNT_EVENTS,
    names.CASE_EVENTS,
    names.DOCUMENT_REQUESTS,
    names.PREFERENCES,
    names.COMM_RULES,
)
"""Written by the demo's simulator, standing in for Air Inc.'s publishers."""
JSON_BY_DESIGN = (names.AUDIT_CHECKPOINTS, names.SINK_BATCHES)
FRAMING_REASONS = {"BAD_MAGIC", "NO_SCHEMA_REGISTRY", "UNKNOWN_SCHEMA"}
CONFLUENT_MAGIC = b"\x00"


@pytest.mark.timeout(900)
def test_demo_with_a_schema_registry_writes_one_framing_and_routes_every_record(
    kafka: KafkaCluster,
    schema_registry: SchemaRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = kafka.bootstrap_servers
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("KAFKA_SCHEMA_REGISTRY_URL", schema_registry.url)
    lines: list[str] = []
    summary = run_demo(
        DemoOptions(
            events=SCENARIO.events,
            customers=SCENARIO.customers,
            seed=SCENARIO.seed,
            invalid_share=SCENARIO.invalid_share,
            document_requests=SCENARIO.document_requests,
            state_dir=tmp_path / "k",
            summary_path=tmp_path / "summary.json",
        ),
        lines.append,
        lambda total, label="": nullcontext(_Bar()),
    )
    assert summary["wire_format"] == "Confluent wire format (KAFKA_SCHEMA_REGISTRY_URL)"
    assert_consistent_summary(summary, SCENARIO)
    assert_every_process_stopped(lines)

    topology = load_topology("local", prefix=summary["topic_prefix"])
    codecs = Codecs(registry_url=schema_registry.url, topology=topology)
    with SchemaRegistryClient({"url": schema_registry.url}) as client:
        records_by_topic = _assert_confluent_framed(bootstrap, topology, codecs, client)
    # each process's output is among what was checked (not a vacuous pass)
    written = {t for t, n in records_by_topic.items() if n}
    for logical in (
        names.COMMANDS,  # routing worker
        names.AUDIT_INTAKE,  # routing worker, on-demand service
        names.AUDIT,  # the worker's audit writer
        names.dlq(names.ACCOUNT_EVENTS),  # routing worker
        names.TEMPLATES,  # template sync
        names.DELIVERY_EVENTS,  # webhook receiver
        names.SUBMISSIONS,  # bulk sink
        names.COMMUNICATION_STATUS,  # routing worker (delivery tracking)
        names.DOCUMENT_METADATA,  # routing worker, on-demand service
    ):
        assert topology.name(logical) in written, f"{logical} holds no record"

    _assert_no_framing_dead_letters(bootstrap, topology, codecs)


class _Bar:
    def update(self, n: int) -> None:
        pass


def _assert_confluent_framed(
    bootstrap: str, topology: Topology, codecs: Codecs, client: SchemaRegistryClient
) -> dict[str, int]:
    """Every record value of every project-written Avro topic: magic byte 0 and a schema id the
    registry holds for ``<topic>-value``, decoding as the topic's record type. Returns the
    number of records checked per topic."""
    skipped = {topology.name(n) for n in (*PUBLISHED_BY_AIR_INC, *JSON_BY_DESIGN)}
    checked: dict[str, int] = {}
    for spec in topology.topics:
        if spec.name in skipped:
            continue
        cls = getattr(records, spec.value)  # every other topic carries a record of the domain
        values = [r.value for r in read_topic(bootstrap, spec.name) if r.value is not None]
        checked[spec.name] = len(values)
        if not values:
            continue
        framings = Counter(v[:1] for v in values)
        assert set(framings) == {CONFLUENT_MAGIC}, f"{spec.name}: framings {framings}"
        ids = {struct.unpack(">I", v[1:5])[0] for v in values}
        subject = f"{spec.name}-value"
        known = {client.get_version(subject, v).schema_id for v in client.get_versions(subject)}
        assert ids <= known, f"{spec.name}: schema ids {ids - known} not under {subject}"
        codec = codecs.for_topic(spec.name, cls)
        for value in values:
            assert isinstance(codec.decode(value), cls)
    return checked


def _assert_no_framing_dead_letters(bootstrap: str, topology: Topology, codecs: Codecs) -> None:
    """Dead letters of every source: none for its framing, but for the simulator's random
    bytes (which are neither framing; replayed here from the demo's seed)."""
    random_bytes = _simulated_garbage(topology)
    framing_letters = 0
    for spec in topology.topics:
        if spec.value != "DeadLetter":
            continue
        codec = codecs.for_topic(spec.name, DeadLetter)
        for r in read_topic(bootstrap, spec.name):
            letter = codec.decode(r.value)
            if letter.error_type in FRAMING_REASONS:
                framing_letters += 1
                assert letter.original_value in random_bytes, (
                    f"{letter.source_topic}@{letter.source_offset} dead-lettered as "
                    f"{letter.error_type}: {letter.reason}"
                )
    assert framing_letters <= len(random_bytes)


def _simulated_garbage(topology: Topology) -> set[bytes]:
    """The values the demo's simulator published as random bytes, replayed from its seeds
    (``publish_events``, ``publish_requests``: the random generator only draws for them)."""
    dataset = generate(SCENARIO)
    out: set[bytes] = set()
    rng = random.Random(SCENARIO.seed ^ 0x5EED)
    for sim in dataset.events:
        topic = topology.name(
            names.ACCOUNT_EVENTS
            if isinstance(sim.record, records.AccountEvent)
            else names.CASE_EVENTS
        )
        value, _ = event_bytes(sim, rng, Codecs(), topic)
        if sim.invalid == "garbage":
            out.add(value)
    rng = random.Random(SCENARIO.seed ^ 0x7E0)
    for req in dataset.document_requests:
        value, _ = request_bytes(req, rng, Codecs(), topology.name(names.DOCUMENT_REQUESTS))
        if req.invalid == "garbage":
            out.add(value)
    assert out, "the workload must hold random bytes for this check to mean anything"
    return out
