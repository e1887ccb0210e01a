"""The templates Exstream publishes, as a live view of ``exstream.templates.v1``.

The same :class:`~streams.routing.reference.ReferenceView` the routing worker reads templates
with; the sink (to find the Exstream communication of a command's template), the on-demand
service (to resolve a document's template) and the sync (to publish only changes) use it.
"""

from __future__ import annotations

from streams.codec import Codecs
from streams.config import KafkaSettings
from streams.domain.records import TemplateVersion
from streams.routing.reference import ReferenceView


def templates_view(
    kafka: KafkaSettings,
    topic: str,
    *,
    partitions: int | None = None,
    codecs: Codecs | None = None,
) -> ReferenceView[TemplateVersion]:
    """``codecs``: the process's (default: the ones ``kafka`` configures)."""
    codecs = codecs or Codecs.from_settings(kafka)
    codec = codecs.for_topic(topic, TemplateVersion)
    return ReferenceView(
        topic=topic,
        decode=codec.decode,
        client_kwargs=kafka.aiokafka_kwargs(),
        partitions=partitions,
    )


def template_of(
    view: ReferenceView[TemplateVersion], template_id: str, version: int, language: str
) -> TemplateVersion | None:
    return view.get(f"{template_id}/{version}/{language}")
