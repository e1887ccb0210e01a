"""Durable Kafka writes awaited from asyncio code without blocking the loop.

A confluent-kafka producer (``acks=all``, idempotent, the Java client's ``murmur2`` partitioner so
records land in the partition of the customer's other records). ``produce`` only enqueues; a
background thread serves delivery reports (``poll``), and each report resolves the asyncio future
of its record through ``call_soon_threadsafe``. The producer gives up on a record after
``timeout_s`` (``message.timeout.ms``), so a report always comes; the await has a small margin on
top as a second guard. Used by the services that must not answer before their record is on
Kafka: the webhook receiver and the on-demand service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.errors import AirExstreamError

log = logging.getLogger(__name__)

Headers = Iterable[tuple[str, str | bytes | None]]


PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
        KafkaError._INVALID_ARG,
    }
)
"""Failures the same write cannot overcome later. Everything else (timeouts, a lost broker, a
leader election; librdkafka calls a message timeout not retriable, but for the service that
asked it is weather) is retriable."""


def write_retriable(err: Any) -> bool:
    """Whether a write that failed with librdkafka's ``err`` may succeed if tried again."""
    if not isinstance(err, KafkaError):
        return True
    return not (err.fatal() or err.code() in PERMANENT)


class KafkaWriteError(AirExstreamError):
    """Kafka did not confirm a write (refused, not enqueued, or no report in time)."""

    retriable = True


class KafkaWriter:
    """``await send(...)`` returns once Kafka confirmed the record, or raises ``error``."""

    def __init__(
        self,
        client_config: Mapping[str, str],
        *,
        timeout_s: float,
        linger_ms: int = 5,
        thread_name: str = "kafka-writer-poll",
        error: type[KafkaWriteError] = KafkaWriteError,
    ) -> None:
        self.timeout_s = timeout_s
        self._error = error
        conf: dict[str, str | int | float | bool] = {
            **client_config,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "message.timeout.ms": max(1000, int(timeout_s * 1000)),
            "linger.ms": linger_ms,
        }
        self._producer = Producer(conf)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._poll, name=thread_name, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()
    ) -> None:
        if self._closed:
            raise self._error("the Kafka producer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        error = self._error

        def settle(err: Any) -> None:
            if future.done():  # the await already timed out
                return
            if err is not None:
                # librdkafka says whether the same write may succeed later (e.g. a leader
                # election) or never will (authorization, a record too large)
                future.set_exception(
                    error(f"Kafka refused the write: {err}", retriable=write_retriable(err))
                )
            else:
                future.set_result(None)

        def on_delivery(err: Any, _msg: Any) -> None:  # runs in the poll thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle, err)

        record_headers: list[tuple[str, str | bytes | None]] = list(headers)
        try:
            self._producer.produce(
                topic, value=value, key=key, headers=record_headers, on_delivery=on_delivery
            )
        except BufferError as exc:  # the local queue is full: it drains
            raise error(f"cannot enqueue the write: {exc}") from exc
        except KafkaException as exc:
            retriable = write_retriable(exc.args[0] if exc.args else None)
            raise error(f"cannot enqueue the write: {exc}", retriable=retriable) from exc
        try:
            await asyncio.wait_for(future, self.timeout_s + 2.0)
        except TimeoutError:
            raise error(f"no delivery report within {self.timeout_s + 2.0:g} s") from None

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued, then stop the poll thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.warning("%d record(s) not confirmed by Kafka at shutdown", remaining)
        self._producer.close()
