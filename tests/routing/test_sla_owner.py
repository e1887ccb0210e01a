"""The SLA timer of delivery tracking reports only the communications of partitions this worker
processes: the ``communications`` table also holds standby copies of other workers' partitions,
whose communications their owner reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from streams.codec import Codecs, codec_for
from streams.domain.records import AuditRecord, CommunicationStatus
from streams.routing.tracking import (
    TrackingContext,
    TrackingCounters,
    install_tracking,
    owned_partitions,
)
from tests.routing.test_parking import _COMMAND, _DELIVERY, _App, _Guard, _Table, _Topic
from topology.model import load_topology

pytestmark = pytest.mark.unit


class _TimedApp(_App):
    """The fake app, keeping its timers and a consumer assigned ``assignment``."""

    def __init__(self, assignment: list[SimpleNamespace]) -> None:
        super().__init__()
        self.timers: list[Callable[[], Awaitable[None]]] = []
        self.consumer = SimpleNamespace(assignment=lambda: list(assignment))

    def timer(self, interval: float) -> Callable[[Any], Any]:
        def install(fn: Callable[[], Awaitable[None]]) -> Any:
            self.timers.append(fn)
            return fn

        return install


class _TableGuard(_Guard):
    async def put_outside(self, table: _Table, partition: int, key: bytes, value: bytes) -> None:
        table[key] = value


def test_owned_partitions_are_those_of_the_delivery_topic() -> None:
    assignment = [
        SimpleNamespace(topic=_DELIVERY, partition=1),
        SimpleNamespace(topic=_DELIVERY, partition=4),
        SimpleNamespace(topic="routing-communications-changelog", partition=2),  # a standby
        SimpleNamespace(topic="air.account-events.v1", partition=3),
    ]
    assert owned_partitions(assignment, _DELIVERY) == {1, 4}


async def test_the_sla_timer_reports_only_the_partitions_it_owns() -> None:
    app = _TimedApp([SimpleNamespace(topic=_DELIVERY, partition=0)])
    statuses = _Topic()

    async def send_audit(record: AuditRecord, key: bytes | None) -> None:
        return None

    async def dead_letter(msg: Any, code: str, reason: str) -> None:
        raise AssertionError(f"nothing is dead-lettered here: {code} {reason}")

    register = install_tracking(
        TrackingContext(
            app=app,
            guard=_TableGuard(),
            commands_topic=_Topic(),
            delivery_topic=object(),
            delivery_topic_name=_DELIVERY,
            status_topic=statuses,
            metadata_topic=_Topic(),
            communications=_Table(),
            parked=_Table(),
            preferences=_Table(),
            send_audit=send_audit,
            dead_letter=dead_letter,
            sla_ms={str(_COMMAND.channel): 1},  # long past by the time the timer runs
            sla_check_interval_s=60.0,
            counters=TrackingCounters(),
            codecs=Codecs(),
            topology=load_topology("local"),
            registry_wait_s=1.0,
        )
    )
    for partition, communication_id in ((0, "com-mine"), (2, "com-standby")):
        command = dataclasses.replace(_COMMAND, communication_id=communication_id)
        msg = SimpleNamespace(
            topic="air.account-events.v1", partition=partition, offset=1, timestamp=1.0
        )
        await register(msg, command)
    (sla_check,) = app.timers
    await sla_check()
    codec = codec_for(CommunicationStatus)
    breached = [codec.decode(v) for v in statuses.sent]
    assert [(s.communication_id, s.exception_code) for s in breached] == [
        ("com-mine", "SLA_BREACHED")
    ]
