"""Templates as the template sync would publish them from this emulator's Design API, without
the HTTP round trips: the Design world seeded with a catalogue, read back by the sync's own
mapping (:mod:`streams.templatesync.mapping`). For tests and benchmarks that need templates on
Kafka without running ``air-exstream templates sync`` (the demo runs the real one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Producer

from streams.codec import Codecs
from streams.domain.records import TemplateVersion
from streams.emulator.design import DRIVER_DATA_SOURCE, DesignWorld, content_of, seed
from streams.templatesync.mapping import DesignVersion, template_key, template_records
from topology import names
from topology.model import Topology


def design_versions(world: DesignWorld) -> list[DesignVersion]:
    return [
        DesignVersion(
            communication_id=v.resource_id,
            version=v.version,
            state=v.state,
            last_modified_ms=v.last_modified_ms,
            content=content_of(v.template),
            driver_data_source=DRIVER_DATA_SOURCE,
        )
        for v, _latest in world.listing()
    ]


def synced(templates: Iterable[TemplateVersion]) -> list[TemplateVersion]:
    records, skipped = template_records(design_versions(seed(templates)))
    if skipped:
        raise ValueError(f"catalogue versions the sync would skip: {skipped}")
    return records


def publish_synced_templates(
    templates: Iterable[TemplateVersion],
    topology: Topology,
    conf: Mapping[str, str],
    *,
    codecs: Codecs | None = None,
) -> int:
    """Publish ``templates`` on the templates topic as the sync would; the count.
    ``codecs``: default, the ones ``KAFKA_*`` configures (as the sync's)."""
    topic = topology.name(names.TEMPLATES)
    codec = (codecs or Codecs.from_environment(topology)).for_topic(topic, TemplateVersion)
    producer = Producer({**conf, "acks": "all", "partitioner": "murmur2_random"})
    records = synced(templates)
    for t in records:
        producer.produce(topic, key=template_key(t), value=codec.encode(t))
    if producer.flush(30) != 0:
        raise RuntimeError("template records not delivered")
    return len(records)
