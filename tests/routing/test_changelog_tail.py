"""Where a changelog's last committed record is: markers and aborted records at the tail are not
records recovery will ever see, the window grows until a record is found, a partition of markers
only is empty, and a tail that cannot be read in time says so. The last test writes real
transactions (committed, then aborted) to the local broker and reads the tail back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from streams.routing.changelog_tail import Record, TailUnread, recovery_ends
from tests.conftest import KafkaCluster


@dataclass(frozen=True)
class _Rec:
    offset: int


class _Reader:
    """A partition log as offsets of delivered records (markers and aborted records are gaps);
    ``step`` records per fetch; ``stuck`` never advances."""

    def __init__(self, logs: dict[str, list[int]], *, step: int = 3, stuck: bool = False) -> None:
        self.logs = logs
        self.step = step
        self.stuck = stuck
        self.pos: dict[str, int] = {}
        self.ends: dict[str, int] = {}
        self.seeks: list[tuple[str, int]] = []

    def assign(self, partitions: list[str]) -> None:
        self.pos = {tp: self.pos.get(tp, 0) for tp in partitions}

    def seek(self, partition: str, offset: int) -> None:
        self.seeks.append((partition, offset))
        self.pos[partition] = offset

    async def getmany(self, *partitions: str, timeout_ms: int = 0) -> Mapping[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for tp in partitions:
            if self.stuck:
                continue
            ahead = [o for o in self.logs[tp] if o >= self.pos[tp]][: self.step]
            if ahead:
                out[tp] = [_Rec(o) for o in ahead]
                self.pos[tp] = ahead[-1] + 1
            else:
                self.pos[tp] = self.ends[tp]  # only markers left: the position jumps to the end
        return out

    async def position(self, partition: str) -> int:
        return self.pos[partition]


async def _ends(reader: _Reader, ends: dict[str, int], **kw: float) -> dict[str, int]:
    reader.ends = ends
    return await recovery_ends(reader, ends, **kw)  # type: ignore[arg-type]


@pytest.mark.unit
async def test_the_last_record_below_the_end_not_the_marker() -> None:
    # records 0..9 in transactions of 3 (a marker after each): 0 1 2 [3] 4 5 6 [7] 8 9 10 [11]
    reader = _Reader({"a": [0, 1, 2, 4, 5, 6, 8, 9, 10, 13]})
    assert await _ends(reader, {"a": 12}) == {"a": 11}  # 13 is past the end: not counted


@pytest.mark.unit
async def test_the_window_grows_until_a_record_is_found() -> None:
    # one committed record, then 200 offsets of aborted records and markers
    reader = _Reader({"a": [5]})
    assert await _ends(reader, {"a": 206}, first_window=4) == {"a": 6}
    assert reader.seeks == [("a", 202), ("a", 142), ("a", 0)]


@pytest.mark.unit
async def test_markers_only_and_empty_partitions_have_nothing_to_recover() -> None:
    reader = _Reader({"a": [], "b": [], "c": [0, 1]})
    assert await _ends(reader, {"a": 5, "b": 0, "c": 3}) == {"a": 0, "b": 0, "c": 2}


@pytest.mark.unit
async def test_a_tail_that_cannot_be_read_in_time_says_so() -> None:
    reader = _Reader({"a": [0]}, stuck=True)
    with pytest.raises(TailUnread, match="1 changelog partition"):
        await _ends(reader, {"a": 3}, deadline_s=0.3)


@pytest.mark.e2e
async def test_real_transactions_committed_then_aborted(kafka: KafkaCluster) -> None:
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin()
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    producer = Producer(
        {**kafka.client_config(), "transactional.id": f"tail-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions(30)
    for n in range(3):  # committed: partition 0 gets 3 transactions of 2 records
        producer.begin_transaction()
        for i in range(2):
            producer.produce(topic, value=f"{n}-{i}".encode(), partition=0)
        producer.commit_transaction(30)
    producer.begin_transaction()  # aborted: partition 0 gets 5 more, partition 1 only these
    for _ in range(5):
        producer.produce(topic, value=b"x", partition=0)
        producer.produce(topic, value=b"x", partition=1)
    producer.flush(30)  # on the broker before the abort (abort purges what is still queued)
    producer.abort_transaction(30)

    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await reader.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        # partition 0: records 0,1 [2] 3,4 [5] 6,7 [8], aborted 9..13 [14]: end 15 once the
        # abort marker is written (the coordinator writes it after abort_transaction returns)
        for _ in range(100):
            ends = await reader.end_offsets(tps)
            if ends[tps[0]] == 15:
                break
            await asyncio.sleep(0.1)
        assert ends == {tps[0]: 15, tps[1]: 6}
        tails = await recovery_ends(reader, ends, first_window=4)
    finally:
        await reader.stop()
    assert tails == {tps[0]: 8, tps[1]: 0}
