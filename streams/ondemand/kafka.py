"""Writing the metadata and audit records: a confluent-kafka producer awaited without blocking.

Same approach as the webhook receiver's sink: ``produce`` only enqueues, a background thread
serves delivery reports (``poll``), and each report resolves the asyncio future of its record
via ``call_soon_threadsafe``. ``acks=all``, idempotent, and the Java client's ``murmur2``
partitioner so records land in the partition of the customer's other records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer

log = logging.getLogger(__name__)


class WriteError(Exception):
    """Kafka did not confirm a write."""


class RecordWriter(Protocol):
    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the record is durably written; raise :class:`WriteError` otherwise."""
        ...

    def close(self) -> None: ...


class KafkaWriter:
    def __init__(self, client_config: Mapping[str, str], *, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        conf: dict[str, str | int | float | bool] = {
            **client_config,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "message.timeout.ms": max(1000, int(timeout_s * 1000)),
            "linger.ms": 2,
        }
        self._producer = Producer(conf)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._poll, name="ondemand-kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self._closed:
            raise WriteError("the Kafka producer is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle(err: Any) -> None:
            if future.done():
                return
            if err is not None:
                future.set_exception(WriteError(f"Kafka refused the write: {err}"))
            else:
                future.set_result(None)

        def on_delivery(err: Any, _msg: Any) -> None:  # runs in the poll thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, err)

        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise WriteError(f"cannot enqueue the write: {exc}") from exc
        try:
            await asyncio.wait_for(future, self.timeout_s + 2.0)
        except TimeoutError:
            raise WriteError(f"no delivery report within {self.timeout_s + 2.0:g} s") from None

    def close(self, timeout_s: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join()
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.warning("%d record(s) not confirmed by Kafka at shutdown", remaining)
        self._producer.close()
