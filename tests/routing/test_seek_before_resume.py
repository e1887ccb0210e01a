"""The worker's seek after a rebalance (``CommitGuard._seek_before_resume``), on plain fakes of
faust's consumer: stream partitions resume only after the seek; a stream partition without a
committed offset goes back to its beginning (faust seeks only committed ones, and records it had
fetched and dropped there were lost); changelog partitions are left to table recovery."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.types import TP

from streams.routing.faust_compat import CommitGuard

pytestmark = pytest.mark.unit

CHANGELOG = "app-preferences-changelog"
EVENTS = "air.account-events.v1"


@dataclass
class _Thread:
    to_beginning: list[TopicPartition] = field(default_factory=list)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        assert all(isinstance(tp, TopicPartition) for tp in partitions)  # aiokafka insists
        self.to_beginning.extend(partitions)


@dataclass
class _Consumer:
    committed_after_seek: dict[TP, int]
    assigned: set[TP]
    events: list[str] = field(default_factory=list)
    _committed_offset: dict[TP, int] = field(default_factory=dict)
    _thread: _Thread = field(default_factory=_Thread)

    def resume_partitions(self, tps: Any) -> None:
        self.events.append(f"resume {sorted(tp.partition for tp in tps)}")

    async def perform_seek(self) -> None:
        self.events.append("seek")
        self._committed_offset.update(self.committed_after_seek)

    def assignment(self) -> set[TP]:
        return self.assigned


def _install(consumer: _Consumer) -> None:
    app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={CHANGELOG}))
    CommitGuard._seek_before_resume(app, consumer)  # type: ignore[arg-type]


async def test_uncommitted_stream_partitions_go_back_to_their_beginning() -> None:
    committed, uncommitted, zero = TP(EVENTS, 0), TP(EVENTS, 1), TP(EVENTS, 2)
    changelog = TP(CHANGELOG, 1)
    consumer = _Consumer(
        committed_after_seek={committed: 42, zero: 0},
        assigned={committed, uncommitted, zero, changelog},
    )
    _install(consumer)

    consumer.resume_partitions({committed, uncommitted, changelog})
    assert consumer.events == ["resume [1]"]  # only the changelog, for table recovery
    await consumer.perform_seek()

    assert sorted(consumer._thread.to_beginning) == [
        TopicPartition(EVENTS, 1),
        TopicPartition(EVENTS, 2),
    ]
    assert consumer.events == ["resume [1]", "seek", "resume [0, 1]"]


async def test_nothing_sought_when_every_stream_partition_committed() -> None:
    tp = TP(EVENTS, 0)
    consumer = _Consumer(committed_after_seek={tp: 7}, assigned={tp, TP(CHANGELOG, 0)})
    _install(consumer)
    await consumer.perform_seek()
    assert consumer._thread.to_beginning == []
