"""Templates as Exstream's Design API publishes them, for tests that need them on Kafka without
running the sync over HTTP: the emulator's Design world seeded with a catalogue, read back by the
sync's own mapping (the same records ``air-exstream templates sync`` publishes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Producer

from streams.codec import codec_for
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
    assert skipped == []
    return records


def publish_synced_templates(
    templates: Iterable[TemplateVersion], topology: Topology, conf: Mapping[str, str]
) -> int:
    """Publish ``templates`` on the templates topic as the sync would; the count."""
    codec = codec_for(TemplateVersion)
    producer = Producer({**conf, "acks": "all", "partitioner": "murmur2_random"})
    records = synced(templates)
    for t in records:
        producer.produce(topology.name(names.TEMPLATES), key=template_key(t), value=codec.encode(t))
    assert producer.flush(30) == 0
    return len(records)
