"""Metadata and offset calls tried again while Kafka says "not yet" (a topic just created has
no leader yet, a leader moved, a coordinator is loading), with a bounded backoff up to a
deadline.

Just after a topic is created, a broker may answer ``LEADER_NOT_AVAILABLE``,
``NOT_LEADER_FOR_PARTITION`` or ``UNKNOWN_TOPIC_OR_PART`` for a short while; confluent-kafka
raises these from ``get_watermark_offsets``, ``committed`` and ``list_topics`` as a
:class:`~confluent_kafka.KafkaException` whose error does not say ``retriable()``. They are
tried again here, as is any error librdkafka calls retriable, and a call that timed out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from streams.engine.errors import EngineError

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError._TIMED_OUT,
    }
)
"""Error codes that mean "not yet" just after a topic's creation or a leader's move."""


def transient(error: Any) -> bool:
    """Whether a :class:`~confluent_kafka.KafkaError` (or ``None``) is worth trying again."""
    if not isinstance(error, KafkaError):
        return False
    if error.fatal():
        return False
    return bool(error.retriable()) or error.code() in TRANSIENT_CODES


def transient_exception(exc: BaseException) -> bool:
    """Whether a raised error is a transient Kafka error (see :func:`transient`)."""
    return isinstance(exc, KafkaException) and bool(exc.args) and transient(exc.args[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Pauses between tries (pure): ``first_s`` doubling up to ``max_s``."""

    first_s: float = 0.05
    max_s: float = 1.0

    def delays(self) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


DEFAULT_BACKOFF = Backoff()


def call_with_retry(
    fn: Callable[..., T],
    *args: Any,
    what: str,
    timeout_s: float,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **kwargs: Any,
) -> T:
    """``fn(*args, **kwargs)``, blocking, tried again on transient Kafka errors until
    ``timeout_s`` has passed; then (or on any other Kafka error) :class:`EngineError`."""
    deadline = clock() + timeout_s
    for delay in backoff.delays():
        try:
            return fn(*args, **kwargs)
        except KafkaException as exc:
            if not transient_exception(exc) or clock() + delay > deadline:
                raise EngineError(f"{what}: {exc}") from exc
        sleep(delay)
    raise AssertionError("unreachable: the backoff never ends")  # pragma: no cover


async def call_with_retry_async(
    fn: Callable[..., T],
    *args: Any,
    what: str,
    timeout_s: float,
    backoff: Backoff = DEFAULT_BACKOFF,
    clock: Callable[[], float] = time.monotonic,
    **kwargs: Any,
) -> T:
    """As :func:`call_with_retry`, the call in a worker thread, the pauses on the event loop
    (other tasks run meanwhile)."""
    deadline = clock() + timeout_s
    for delay in backoff.delays():
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except KafkaException as exc:
            if not transient_exception(exc) or clock() + delay > deadline:
                raise EngineError(f"{what}: {exc}") from exc
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the backoff never ends")  # pragma: no cover
