"""The input topics' partition counts read from metadata that says "not yet" for a while (a
topic just created), with a fake consumer (no broker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.engine.errors import EngineError
from streams.engine.retry import Backoff
from streams.engine.topics import partition_counts

FAST = Backoff(first_s=0.001, max_s=0.002)


@dataclass
class _Topic:
    partitions: dict[int, Any]
    error: KafkaError | None = None


@dataclass
class _Metadata:
    topics: dict[str, _Topic]


@dataclass
class _Consumer:
    """``list_topics`` answers each of ``answers`` in turn (a KafkaException is raised), then
    the last one again."""

    answers: list[_Metadata | KafkaException]
    calls: int = 0
    timeouts: list[float] = field(default_factory=list)

    def list_topics(self, *, timeout: float) -> _Metadata:
        self.timeouts.append(timeout)
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, KafkaException):
            raise answer
        return answer


READY = _Metadata({"a": _Topic({0: None, 1: None}), "b": _Topic({0: None})})


def test_the_counts_come_once_the_topics_say_no_error() -> None:
    consumer = _Consumer(
        [
            _Metadata({"a": _Topic({}, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))}),
            KafkaException(KafkaError(KafkaError._TIMED_OUT)),
            _Metadata(
                {
                    "a": _Topic({0: None, 1: None}, KafkaError(KafkaError.LEADER_NOT_AVAILABLE)),
                    "b": _Topic({0: None}),
                }
            ),
            READY,
        ]
    )
    assert partition_counts(consumer, ["a", "b"], timeout_s=30, backoff=FAST) == {"a": 2, "b": 1}
    assert consumer.calls == 4


def test_a_topic_that_never_appears_is_an_error_at_the_deadline() -> None:
    consumer = _Consumer([_Metadata({"b": _Topic({0: None})})])
    with pytest.raises(EngineError, match=r"input topics \['a'\] do not exist"):
        partition_counts(consumer, ["a", "b"], timeout_s=0.05, backoff=FAST)
    assert consumer.calls > 1


def test_an_error_that_is_not_transient_ends_at_once() -> None:
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    consumer = _Consumer([_Metadata({"a": _Topic({}, denied)})])
    with pytest.raises(EngineError, match="input topic a"):
        partition_counts(consumer, ["a"], timeout_s=30, backoff=FAST)
    assert consumer.calls == 1
