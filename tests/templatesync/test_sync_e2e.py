"""The template sync against the emulator's Design API over loopback HTTP, publishing on the real
broker: a first run publishes the catalogue, a second publishes nothing, an approval publishes
the new version and retires the one it supersedes, a deleted communication is retired."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from streams.config import KafkaSettings
from streams.domain.records import TemplateVersion
from streams.emulator.design import communication_id
from streams.kafka_writer import KafkaWriter
from streams.simulator.generator import template_catalogue
from streams.templatesync.mapping import template_key
from streams.templatesync.sync import TemplateSync
from streams.templatesync.view import templates_view
from tests.conftest import KafkaCluster
from tests.exstream.emulated import Emulated, emulated
from tests.exstream.templates import synced
from topology import names
from topology.apply import apply_topology
from topology.model import load_topology

pytestmark = pytest.mark.e2e

CATALOGUE = template_catalogue()
T = next(t for t in CATALOGUE if t.status == "APPROVED" and t.language == "en")
DESIGN = communication_id(T.template_id, "en")


async def _on_topic(kafka: KafkaSettings, topic: str, expected: int) -> dict[str, TemplateVersion]:
    """What a fresh reader of the topic sees (latest value per key)."""
    view = templates_view(kafka, topic, partitions=1)
    task = asyncio.ensure_future(view.run())
    try:
        await view.wait_ready(30)
        for _ in range(100):
            if len(view) >= expected:
                break
            await asyncio.sleep(0.1)
        return {template_key(t): t for t in view.values()}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def world(kafka: KafkaCluster) -> AsyncIterator[tuple[Emulated, TemplateSync, Any, str]]:
    topology = load_topology("local", prefix=f"sync{uuid.uuid4().hex[:6]}.")
    apply_topology(kafka.client_config(), topology)
    topic = topology.name(names.TEMPLATES)
    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    view = templates_view(settings, topic, partitions=1)
    reader = asyncio.ensure_future(view.run())
    writer = KafkaWriter(kafka.client_config(), timeout_s=15)
    await view.wait_ready(30)
    async for exstream in emulated(with_events=False):
        async with exstream.client() as client:
            yield exstream, TemplateSync(client, writer, view, topic=topic), settings, topic
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await asyncio.to_thread(writer.close)


async def test_runs_publish_changes_only_and_retire_what_is_no_longer_usable(world: Any) -> None:
    exstream, sync, settings, topic = world

    first = await sync.run_once()
    assert first.versions == first.published == len(CATALOGUE)
    assert first.usable == sum(1 for t in CATALOGUE if t.status == "APPROVED")
    assert first.skipped == []
    on_topic = await _on_topic(settings, topic, len(CATALOGUE))
    assert on_topic == {template_key(t): t for t in synced(CATALOGUE)}
    assert all(t.exstream_communication_id and t.driver_data_source for t in on_topic.values())

    assert (await sync.run_once()).published == 0  # nothing changed in Design

    # Design approves version 3: it becomes usable, version 2 is superseded
    exstream.runtime.design.set_state(DESIGN, 3, "APPROVED", now_ms=T.updated_at + 1)
    approved = await sync.run_once()
    assert approved.published == 2
    on_topic = await _on_topic(settings, topic, len(CATALOGUE))
    assert on_topic[f"{T.template_id}/3/en"].status == "APPROVED"
    assert on_topic[f"{T.template_id}/2/en"].status == "RETIRED"

    # a version sent back to REVIEW, another rejected: never usable
    exstream.runtime.design.set_state(DESIGN, 3, "REVIEW", now_ms=T.updated_at + 2)
    await sync.run_once()
    on_topic = await _on_topic(settings, topic, len(CATALOGUE))
    assert on_topic[f"{T.template_id}/3/en"].status == "DRAFT"
    assert on_topic[f"{T.template_id}/2/en"].status == "APPROVED"  # the highest approved again

    # the communication disappears from Design: its versions are retired, not left usable
    exstream.runtime.design.remove(DESIGN)
    gone = await sync.run_once()
    assert gone.versions == len(CATALOGUE) - 3
    on_topic = await _on_topic(settings, topic, len(CATALOGUE))
    mine = [
        t for k, t in on_topic.items() if k.startswith(f"{T.template_id}/") and k.endswith("/en")
    ]
    assert len(mine) == 3
    assert {t.status for t in mine} == {"RETIRED"}


async def test_following_mode_runs_until_stopped(world: Any) -> None:
    _exstream, sync, _settings, _topic = world
    stop = asyncio.Event()
    task = asyncio.ensure_future(sync.follow(0.1, stop))
    for _ in range(100):
        if len(sync.view) >= len(CATALOGUE):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(sync.view) == len(CATALOGUE)
