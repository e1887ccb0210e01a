"""The SLA check of delivery tracking reports only the communications of the partitions this
worker owns (``owned=``, given by the worker): the ``communications`` table may also hold copies
of other workers' partitions, whose communications their owner reports."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from streams.codec import codec_for
from streams.domain.records import CommunicationStatus
from streams.routing.engine_adapters import HandledRecord, StoreTable
from streams.routing.tracking import TrackingCounters, tracking_handlers
from tests.routing.engine_fakes import FakeStore
from tests.routing.handlers.fakes import Record
from tests.routing.test_parking import _COMMAND, _context, _Topic

pytestmark = pytest.mark.unit


async def test_the_sla_check_reports_only_the_partitions_it_owns() -> None:
    current = HandledRecord()
    communications = StoreTable(FakeStore("communications"), current)
    statuses = _Topic()

    async def dead_letter(msg: Any, code: str, reason: str) -> None:
        raise AssertionError(f"nothing is dead-lettered here: {code} {reason}")

    tracking = tracking_handlers(
        _context(
            current,
            communications=communications,
            parked=StoreTable(FakeStore("parked-delivery-events"), current),
            status_topic=statuses,
            counters=TrackingCounters(),
            dead_letter=dead_letter,
            sla_ms={str(_COMMAND.channel): 1},  # long past by the time the check runs
        ),
        communications=communications.items,
        owned=lambda: {0},
    )
    for partition, communication_id in ((0, "com-mine"), (2, "com-standby")):
        command = dataclasses.replace(_COMMAND, communication_id=communication_id)
        msg = Record(
            topic="air.account-events.v1",
            partition=partition,
            offset=1,
            key=b"cust-1",
            value=b"",
            timestamp=1.0,
        )
        await tracking.register(msg, command)
    await tracking.sla_check()
    codec = codec_for(CommunicationStatus)
    breached = [codec.decode(v) for v in statuses.sent]
    assert [(s.communication_id, s.exception_code) for s in breached] == [
        ("com-mine", "SLA_BREACHED")
    ]
