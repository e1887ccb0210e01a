"""The engine's client configurations (pure): consumer-only settings never reach the producer
(librdkafka's CONFWARN), static membership only when asked for."""

from __future__ import annotations

from streams.engine.config import (
    EngineConfig,
    consumer_config,
    offsets_reader_config,
    producer_config,
    restorer_config,
)

KAFKA = {"bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT"}
GROUP = {"session.timeout.ms": "30000", "heartbeat.interval.ms": "3000"}


def _config(**overrides: object) -> EngineConfig:
    settings: dict[str, object] = {
        "app_id": "app",
        "kafka": KAFKA,
        "instance_id": "slot-1",
        "consumer": GROUP,
    }
    settings.update(overrides)
    return EngineConfig(**settings)  # type: ignore[arg-type]


def test_consumer_settings_go_to_the_consumers_only() -> None:
    config = _config()
    producer = producer_config(config)
    assert not set(GROUP) & set(producer)
    assert producer["bootstrap.servers"] == "b:9092"
    assert producer["transactional.id"] == "app-slot-1"
    for consumer in (
        consumer_config(config),
        restorer_config(config),
        offsets_reader_config(config),
    ):
        assert {k: consumer[k] for k in GROUP} == GROUP
        assert consumer["security.protocol"] == "PLAINTEXT"
        assert consumer["isolation.level"] == "read_committed"


def test_the_engines_group_settings_win_over_the_extra_ones() -> None:
    config = _config(consumer={"group.id": "other", "isolation.level": "read_uncommitted"})
    consumer = consumer_config(config)
    assert consumer["group.id"] == "app"
    assert consumer["isolation.level"] == "read_committed"
    assert restorer_config(config)["group.id"] == "app-restore"
    # the offsets reader asks for the group's committed offsets (it never joins the group)
    assert offsets_reader_config(config)["group.id"] == "app"
    assert offsets_reader_config(config)["isolation.level"] == "read_committed"


def test_the_consumer_may_set_the_fetch_wait() -> None:
    assert consumer_config(_config())["fetch.wait.max.ms"] == 100
    waited = consumer_config(_config(consumer={"fetch.wait.max.ms": "250"}))
    assert waited["fetch.wait.max.ms"] == "250"


def test_static_membership_is_off_unless_asked_for() -> None:
    assert "group.instance.id" not in consumer_config(_config())
    smuggled = _config(
        consumer={"group.instance.id": "x"}, kafka={**KAFKA, "group.instance.id": "y"}
    )
    assert "group.instance.id" not in consumer_config(smuggled)
    assert "group.instance.id" not in restorer_config(smuggled)
    assert "group.instance.id" not in offsets_reader_config(smuggled)


def test_static_membership_uses_the_instance_id_in_the_group_consumer_only() -> None:
    config = _config(static_membership=True)
    assert consumer_config(config)["group.instance.id"] == "slot-1"
    assert "group.instance.id" not in restorer_config(config)
    assert "group.instance.id" not in producer_config(config)


def test_the_producer_asks_again_soon_after_a_transaction_is_refused_as_concurrent() -> None:
    # the next transaction's first request meets the one before still completing
    # (CONCURRENT_TRANSACTIONS) for a few ms: librdkafka's default 100 ms backoff held every
    # such transaction 100 ms (a live stream's latency); a user's setting does not undo it
    producer = producer_config(_config(kafka={**KAFKA, "retry.backoff.ms": "100"}))
    assert int(producer["retry.backoff.ms"]) <= 20
