"""The preferences handler over plain fakes: what it stores, and every dead-letter path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from streams.codec import codec_for
from streams.domain.records import Preference
from streams.routing.handlers.decode import key_mismatch
from streams.routing.handlers.preferences import PreferencesHandler
from streams.routing.partitioning import WRONG_PARTITION, murmur2_partition
from streams.routing.preference_versions import latest_value, value_as_of
from tests.domain.factories import T0, preference
from tests.routing.handlers.fakes import EventTotals, Outputs, Record, Table

pytestmark = pytest.mark.unit

TOPIC = "air.preferences.v1"
PARTITIONS = 6
KEY = b"cust-1"
HOME = murmur2_partition(KEY, PARTITIONS)

topic_codec = codec_for(Preference)
state_codec = codec_for(Preference)


@dataclass
class World:
    table: Table = field(default_factory=Table)
    outputs: Outputs = field(default_factory=Outputs)
    totals: EventTotals = field(default_factory=EventTotals)

    def __post_init__(self) -> None:
        self.handler = PreferencesHandler(
            table=self.table,
            decode=topic_codec.decode,
            encode_state=state_codec.encode,
            dead_letter=self.outputs.dead_letter,
            counters=self.totals,
            partition_counts={TOPIC: PARTITIONS},
            history_ms=7 * 86_400_000,
            max_versions=16,
            registry_wait_s=1.0,
        )

    def codes(self) -> list[str]:
        return [code for _, code, _ in self.outputs.of("dead_letter")]


def record(value: bytes | None, *, offset: int = 0, at_ms: int = T0, **overrides: Any) -> Record:
    values: dict[str, Any] = {
        "topic": TOPIC,
        "partition": HOME,
        "offset": offset,
        "key": KEY,
        "value": value,
        "timestamp": at_ms / 1000,
    }
    values.update(overrides)
    return Record(**values)


async def test_a_preference_is_stored_as_a_version_in_the_state_encoding() -> None:
    world = World()
    p = preference()
    headers = [("content-type", b"application/json")]
    await world.handler.handle(record(topic_codec.encode_json(p), headers=headers))
    assert world.outputs.sent == []
    assert world.totals.preferences == 1
    [(partition, key, versions)] = world.table.writes
    assert (partition, key) == (HOME, KEY)
    stored = latest_value(versions)
    assert stored == state_codec.encode(p)  # Avro although it arrived as JSON
    assert state_codec.decode(stored) == p


async def test_an_event_meets_the_version_in_force_at_its_time() -> None:
    world = World()
    await world.handler.handle(record(topic_codec.encode(preference(language="en"))))
    changed = preference(language="fr", updated_at=T0 + 5)
    await world.handler.handle(record(topic_codec.encode(changed), offset=1, at_ms=T0 + 10))
    await world.handler.handle(record(None, offset=2, at_ms=T0 + 20))  # deleted
    versions = world.table.get(KEY)
    before = value_as_of(versions, T0 + 5)
    assert before is not None
    assert state_codec.decode(before).language == "en"
    between = value_as_of(versions, T0 + 15)
    assert between is not None
    assert state_codec.decode(between).language == "fr"
    assert value_as_of(versions, T0 + 25) is None
    assert world.totals.preferences == 2  # a deletion is not counted


async def test_a_record_without_a_key_is_dead_lettered() -> None:
    world = World()
    await world.handler.handle(record(topic_codec.encode(preference()), key=None))
    assert world.codes() == ["MISSING_KEY"]
    assert world.table.writes == []


async def test_a_record_outside_its_key_partition_is_dead_lettered() -> None:
    world = World()
    wrong = (HOME + 1) % PARTITIONS
    await world.handler.handle(record(topic_codec.encode(preference()), partition=wrong))
    assert world.codes() == [WRONG_PARTITION]
    assert world.table.writes == []


async def test_an_undecodable_record_is_dead_lettered_with_the_codec_code() -> None:
    world = World()
    await world.handler.handle(record(b"garbage"))
    assert world.codes() == ["BAD_MAGIC"]
    assert world.table.writes == []


async def test_a_record_keyed_by_another_customer_is_a_key_mismatch() -> None:
    world = World()
    await world.handler.handle(record(topic_codec.encode(preference(customer_id="cust-2"))))
    [(_, code, reason)] = world.outputs.of("dead_letter")
    assert code == "KEY_MISMATCH"
    assert reason == key_mismatch(KEY, "cust-2")
    assert world.table.writes == []


async def test_an_invalid_preference_leaves_the_previous_one_in_force() -> None:
    world = World()
    await world.handler.handle(record(topic_codec.encode(preference())))
    bad = preference(language="xx-not-a-language-tag-at-all", updated_at=-5)
    await world.handler.handle(record(topic_codec.encode(bad), offset=1, at_ms=T0 + 10))
    [(offset, code, reason)] = world.outputs.of("dead_letter")
    assert (offset, code) == (1, "INVALID_PREFERENCE")
    assert "updated_at -5" in reason
    assert len(world.table.writes) == 1
    assert latest_value(world.table.get(KEY)) == state_codec.encode(preference())
