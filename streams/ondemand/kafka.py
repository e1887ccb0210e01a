"""Writing the metadata and audit records: the shared :mod:`streams.kafka_writer` (``acks=all``,
idempotent, ``murmur2``), awaited before the service answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from streams.kafka_writer import KafkaWriteError
from streams.kafka_writer import KafkaWriter as SharedKafkaWriter


class WriteError(KafkaWriteError):
    """Kafka did not confirm a write."""


class RecordWriter(Protocol):
    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the record is durably written; raise :class:`WriteError` otherwise."""
        ...

    def close(self) -> None: ...


class KafkaWriter(SharedKafkaWriter):
    """The service's :class:`~streams.kafka_writer.KafkaWriter`: raises :class:`WriteError`."""

    def __init__(self, client_config: Mapping[str, str], *, timeout_s: float = 5.0) -> None:
        super().__init__(
            client_config,
            timeout_s=timeout_s,
            linger_ms=2,
            thread_name="ondemand-kafka-poll",
            error=WriteError,
        )
