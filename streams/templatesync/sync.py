"""Read the Design API, publish what changed on ``exstream.templates.v1``.

Guarantees: a run publishes only records that differ from what the topic holds (it reads the
topic first), so running it again changes nothing; every record is confirmed by Kafka
(``acks=all``) before the run reports it. A failure of the Design API (typed
:class:`~streams.exstream.errors.ExstreamError`) ends the run before anything is published for
it, so the topic never shows half of a read. In following mode, runs repeat every
``interval_s``; a retriable failure is logged and tried again at the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.codec import Codecs
from streams.domain.records import TemplateVersion
from streams.exstream.client import ExstreamClient
from streams.exstream.errors import ExstreamError
from streams.kafka_writer import KafkaWriter
from streams.routing.reference import ReferenceView
from streams.templatesync.mapping import (
    DesignVersion,
    Skipped,
    changes,
    parse_time_ms,
    template_key,
    template_records,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SyncReport:
    versions: int = 0
    usable: int = 0
    published: int = 0
    retired: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "usable": self.usable,
            "published": self.published,
            "retired": self.retired,
            "skipped": len(self.skipped),
        }


async def read_design(client: ExstreamClient) -> list[DesignVersion]:
    """Every communication version with its content and driver data source."""
    design = client.design
    out: list[DesignVersion] = []
    drivers: dict[tuple[str, int], str | None] = {}
    for v in await design.communications():
        key = (v.id, v.version)
        if key not in drivers:
            set_id = await design.communication_set(v.id, v.version)
            manifest = await design.manifest(set_id) if set_id is not None else None
            dsns = manifest.driver_data_sources if manifest is not None else []
            drivers[key] = dsns[0] if dsns else None
        out.append(
            DesignVersion(
                communication_id=v.id,
                version=v.version,
                state=v.state,
                last_modified_ms=parse_time_ms(v.last_modified),
                content=await design.content(v.id, v.version),
                driver_data_source=drivers[key],
            )
        )
    return out


class TemplateSync:
    def __init__(
        self,
        client: ExstreamClient,
        writer: KafkaWriter,
        view: ReferenceView[TemplateVersion],
        *,
        topic: str,
        codecs: Codecs | None = None,
    ) -> None:
        """``codecs``: the process's (default: no schema registry)."""
        self.client = client
        self.writer = writer
        self.view = view
        self.topic = topic
        self._codec = (codecs or Codecs()).for_topic(topic, TemplateVersion)

    def published(self) -> Mapping[str, TemplateVersion]:
        return {template_key(t): t for t in self.view.values()}

    async def run_once(self) -> SyncReport:
        versions = await read_design(self.client)
        records, skipped = template_records(versions)
        for s in skipped:
            log.warning(
                "communication %s version %d skipped: %s", s.communication_id, s.version, s.reason
            )
        todo = changes(self.published(), records)
        await asyncio.gather(
            *(
                self.writer.send(self.topic, template_key(t).encode(), self._codec.encode(t))
                for t in todo
            )
        )
        for t in todo:  # the view catches up by itself; this keeps the next run exact now
            self.view.apply(template_key(t), self._codec.encode(t), [])
        report = SyncReport(
            versions=len(versions),
            usable=sum(1 for r in records if r.status == "APPROVED"),
            published=len(todo),
            retired=sum(1 for t in todo if t.status == "RETIRED"),
            skipped=skipped,
        )
        log.info("template sync: %s", report.as_dict())
        return report

    async def follow(self, interval_s: float, stop: asyncio.Event) -> None:
        """Run every ``interval_s`` until ``stop`` is set; retriable failures wait for the next
        run, others end it."""
        while not stop.is_set():
            try:
                await self.run_once()
            except ExstreamError as exc:
                if not exc.retriable:
                    raise
                log.warning("template sync failed, retrying in %.0f s: %s", interval_s, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
