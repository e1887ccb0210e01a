"""Every codec of a process, built once from the settings and the topology.

Each service builds one :class:`Codecs` at start (``Codecs.from_settings(kafka, topology)``) and
asks it for the codec of each topic it reads or writes, so every component of a deployment
frames its records the same way:

- writing: the Confluent wire format when ``KAFKA_SCHEMA_REGISTRY_URL`` is set (schema
  registered under ``<topic>-value``, TopicNameStrategy, as Confluent's serializers do), Avro
  single-object encoding otherwise;
- reading: every framing a platform team may send, whatever this process writes (see
  :mod:`streams.codec.framing`), and JSON when the record's ``content-type`` header says so.

Local state (table values such as the worker's preferences) is never a topic's record: it is
written with single-object encoding (:meth:`Codecs.for_state`), so a store's contents do not
depend on the registry being reachable.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from streams.codec.codec import (
    Codec,
    RegistryFormat,
    SingleObjectFormat,
    WireFormat,
    registry_client,
)
from streams.codec.framing import RegistrySchemas
from streams.codec.schemas import SchemaStore, default_store
from streams.errors import AirExstreamError

if TYPE_CHECKING:
    from streams.config import KafkaSettings
    from topology.model import Topology

T = TypeVar("T")


class CodecMismatch(AirExstreamError):
    """A component asked for a topic's codec with a record type the topology does not declare
    for that topic: a programming error, found at start rather than on the first record."""


class Codecs:
    """The codecs of one process. Thread-safe; each codec is built once and kept."""

    def __init__(
        self,
        *,
        registry_url: str | None = None,
        topology: Topology | None = None,
        store: SchemaStore | None = None,
        registry: Any = None,
    ) -> None:
        """``registry`` is a registry client to use instead of one made from ``registry_url``
        (tests); ``topology``, when given, is checked against each :meth:`for_topic` call."""
        self.registry_url = registry_url
        self._store = store or default_store()
        client = registry
        if client is None and registry_url:
            client = registry_client(registry_url)
        self._client = client
        self._schemas = RegistrySchemas(client, self._store) if client is not None else None
        self._declared = (
            {spec.name: spec.value for spec in topology.topics} if topology is not None else None
        )
        self._codecs: dict[tuple[str | None, type], Codec[Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, kafka: KafkaSettings, topology: Topology | None = None) -> Codecs:
        """The codecs of a service configured by ``kafka`` (``KAFKA_SCHEMA_REGISTRY_URL``)."""
        return cls(registry_url=kafka.schema_registry_url, topology=topology)

    @classmethod
    def from_environment(cls, topology: Topology | None = None) -> Codecs:
        """The codecs ``KAFKA_*`` configures (tools that read topics without a service's
        settings: the audit reader, the dead-letter CLI, the demo's summary)."""
        from streams.config import KafkaSettings

        return cls.from_settings(KafkaSettings(), topology)

    @property
    def writes_confluent(self) -> bool:
        """True when records are written in the Confluent wire format."""
        return self._client is not None

    def for_topic(self, topic: str, cls: type[T]) -> Codec[T]:
        """The codec of ``cls`` records on ``topic`` (the name on the wire, prefix included)."""
        if self._declared is not None and topic in self._declared:
            declared = self._declared[topic]
            if declared != cls.__name__:
                raise CodecMismatch(
                    f"topic {topic} carries {declared} records (topology/topics.toml), "
                    f"not {cls.__name__}"
                )
        return self._get(topic, cls)

    def for_state(self, cls: type[T]) -> Codec[T]:
        """The codec of ``cls`` values kept in local state (single-object encoding)."""
        return self._get(None, cls)

    def _get(self, topic: str | None, cls: type[T]) -> Codec[T]:
        key = (topic, cls)
        codec = self._codecs.get(key)
        if codec is None:
            with self._lock:
                codec = self._codecs.get(key)
                if codec is None:
                    codec = self._codecs[key] = self._build(topic, cls)
        return codec

    def _build(self, topic: str | None, cls: type[T]) -> Codec[T]:
        info = self._store.for_name(cls.__name__)
        wire: WireFormat
        if topic is not None and self._client is not None:
            wire = RegistryFormat(
                self._client,
                f"{topic}-value",
                info,
                store=self._store,
                registry=self._schemas,
            )
        else:
            wire = SingleObjectFormat(self._store, info, self._schemas)
        return Codec(cls, info, wire)
