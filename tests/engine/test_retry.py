"""Metadata and offset calls tried again on transient Kafka errors (fakes, no broker): a
changelog just created answers NOT_LEADER_FOR_PARTITION / LEADER_NOT_AVAILABLE /
UNKNOWN_TOPIC_OR_PART for a while, which once crashed a cold start in ``restore``."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.engine.errors import EngineError
from streams.engine.restore import restore
from streams.engine.retry import Backoff, call_with_retry, call_with_retry_async, transient
from streams.engine.stores import MemoryStore

FAST = Backoff(first_s=0.001, max_s=0.002)


def _raise(code: int, *, retriable: bool = False) -> KafkaException:
    return KafkaException(KafkaError(code, "from the fake", retriable=retriable))


class _Flaky:
    """A call that raises ``errors`` in turn, then returns ``result``."""

    def __init__(self, errors: list[KafkaException], result: Any) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    ],
)
def test_the_codes_seen_after_a_topic_creation_are_transient(code: int) -> None:
    assert transient(KafkaError(code))


def test_a_retriable_error_is_transient_a_fatal_or_other_one_is_not() -> None:
    assert transient(KafkaError(KafkaError.REQUEST_TIMED_OUT, retriable=True))
    assert not transient(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert not transient(KafkaError(KafkaError.LEADER_NOT_AVAILABLE, fatal=True))
    assert not transient(None)


def test_the_backoff_doubles_up_to_its_max() -> None:
    delays = Backoff(first_s=0.1, max_s=0.5).delays()
    assert [next(delays) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_a_transient_error_is_tried_again() -> None:
    flaky = _Flaky([_raise(KafkaError.NOT_LEADER_FOR_PARTITION)] * 3, "ok")
    slept: list[float] = []
    assert call_with_retry(flaky, what="x", timeout_s=10, backoff=FAST, sleep=slept.append) == "ok"
    assert flaky.calls == 4
    assert len(slept) == 3


def test_another_error_ends_at_once() -> None:
    flaky = _Flaky([_raise(KafkaError.TOPIC_AUTHORIZATION_FAILED)], "ok")
    with pytest.raises(EngineError, match="reading x"):
        call_with_retry(flaky, what="reading x", timeout_s=10, backoff=FAST)
    assert flaky.calls == 1


def test_the_tries_end_at_the_deadline() -> None:
    now = [0.0]

    def sleep(delay: float) -> None:
        now[0] += delay

    flaky = _Flaky([_raise(KafkaError.LEADER_NOT_AVAILABLE)] * 1000, "ok")
    with pytest.raises(EngineError) as raised:
        call_with_retry(
            flaky,
            what="x",
            timeout_s=5,
            backoff=Backoff(first_s=1, max_s=1),
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert isinstance(raised.value.__cause__, KafkaException)
    assert now[0] <= 5
    assert flaky.calls == 6  # at 0, 1, 2, 3, 4, 5 s


async def test_the_async_form_tries_again_too() -> None:
    flaky = _Flaky([_raise(KafkaError.UNKNOWN_TOPIC_OR_PART)] * 2, 7)
    assert await call_with_retry_async(flaky, what="x", timeout_s=10, backoff=FAST) == 7
    assert flaky.calls == 3


class _NewChangelogConsumer:
    """A restore consumer on changelogs just created: the ends lookup answers "not the leader"
    / "no leader yet" a few times, then the (empty) ends."""

    def __init__(self) -> None:
        self.get_watermark_offsets = _Flaky(
            [
                _raise(KafkaError.NOT_LEADER_FOR_PARTITION),
                _raise(KafkaError.LEADER_NOT_AVAILABLE),
                _raise(KafkaError.UNKNOWN_TOPIC_OR_PART),
            ],
            (0, 0),
        )
        self.assigned = False

    def assign(self, _partitions: Any) -> None:
        self.assigned = True


async def test_a_restore_of_a_changelog_without_a_leader_yet_waits_for_it() -> None:
    consumer = _NewChangelogConsumer()
    store = MemoryStore("s", changelog_topic="cl", partitions=2)
    read = await restore(
        consumer, {("cl", 0): store, ("cl", 1): store}, ends_reader=consumer, timeout_s=30
    )
    assert read == 0
    assert consumer.get_watermark_offsets.calls == 5  # 3 errors, then one per partition
    assert store.partitions() == frozenset({0, 1})
    assert not consumer.assigned  # empty changelogs: nothing to read


async def test_a_restore_whose_ends_never_come_raises_an_engine_error() -> None:
    consumer = _NewChangelogConsumer()
    consumer.get_watermark_offsets.errors = [_raise(KafkaError.LEADER_NOT_AVAILABLE)] * 10_000
    store = MemoryStore("s", changelog_topic="cl", partitions=1)
    with pytest.raises(EngineError, match=r"changelog cl\[0\]"):
        await restore(consumer, {("cl", 0): store}, ends_reader=consumer, timeout_s=0.2)
