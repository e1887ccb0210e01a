"""The document-request handler (:mod:`streams.routing.requests`) on fakes (no broker): it emits,
registers and audits a command, or dead-letters the request."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from streams.codec import Codecs, codec_for
from streams.domain.document_requests import request_communication_id
from streams.domain.records import AuditKind, AuditRecord, CompositionCommand, DocumentRequest
from streams.routing.requests import RequestCounters, RequestsContext, request_handler
from tests.domain.test_document_requests import catalogue, invoice
from tests.routing.handlers.fakes import Record
from topology import names
from topology.model import load_topology

pytestmark = pytest.mark.unit


class _Outputs:
    """The topics, tracking and audit of the worker, recorded."""

    def __init__(self) -> None:
        self.commands: list[tuple[bytes, bytes]] = []
        self.registered: list[str] = []
        self.audit: list[AuditRecord] = []
        self.letters: list[tuple[str, str]] = []

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.commands.append((key, value))

    async def register(self, msg: Any, command: CompositionCommand) -> None:
        self.registered.append(command.communication_id)

    async def send_audit(self, record: AuditRecord, key: bytes | None) -> None:
        self.audit.append(record)

    async def dead_letter(self, msg: Any, code: str, reason: str) -> None:
        self.letters.append((code, reason))


def _handler(
    communications: dict[bytes, bytes],
) -> tuple[Callable[[Any], Awaitable[None]], _Outputs]:
    outputs, topology = _Outputs(), load_topology("local")
    handle = request_handler(
        RequestsContext(
            source_topic=topology.name(names.DOCUMENT_REQUESTS),
            commands_topic=outputs,
            communications=communications,
            register=outputs.register,
            send_audit=outputs.send_audit,
            dead_letter=outputs.dead_letter,
            key_mismatch=lambda key, customer: f"key {key!r} is not {customer}",
            templates_by_id=catalogue,
            counters=RequestCounters(),
            codecs=Codecs(),
            topology=topology,
            registry_wait_s=1.0,
        )
    )
    return handle, outputs


def _record(request: DocumentRequest, key: bytes | None = None) -> Record:
    return Record(
        topic="air.document-requests.v1",
        partition=0,
        offset=7,
        key=request.customer_id.encode() if key is None else key,
        value=codec_for(DocumentRequest).encode(request),
        headers=[],
        timestamp=request.requested_at / 1000,
    )


async def test_a_request_emits_its_command_registers_it_and_audits_it() -> None:
    handle, out = _handler({})
    await handle(_record(invoice()))
    ((key, value),) = out.commands
    command = codec_for(CompositionCommand).decode(value)
    assert key == b"cust-000001"
    assert command.communication_id == request_communication_id("cust-000001", "req-1")
    assert out.registered == [command.communication_id]
    assert [a.kind for a in out.audit] == [AuditKind.COMMAND_EMITTED]
    assert out.letters == []


async def test_a_retried_request_emits_no_second_command() -> None:
    already = {request_communication_id("cust-000001", "req-1").encode(): b"tracked"}
    handle, out = _handler(already)
    await handle(_record(invoice()))
    assert out.commands == []
    assert out.registered == []
    assert len(out.audit) == 1
    assert out.audit[0].kind == AuditKind.SUPPRESSED


async def test_a_request_keyed_by_another_customer_is_dead_lettered() -> None:
    handle, out = _handler({})
    await handle(_record(invoice(), key=b"cust-000002"))
    assert [code for code, _ in out.letters] == ["KEY_MISMATCH"]
    assert out.commands == []


async def test_a_rejected_request_is_dead_lettered_with_its_code() -> None:
    handle, out = _handler({})
    await handle(_record(invoice(document_type="NO_SUCH_TYPE")))
    assert [code for code, _ in out.letters] == ["UNKNOWN_DOCUMENT_TYPE"]
    assert out.commands == []
    assert out.audit == []


async def test_bytes_that_do_not_decode_are_dead_lettered() -> None:
    handle, out = _handler({})
    record = dataclasses.replace(_record(invoice()), value=b"not a request")
    await handle(record)
    assert [code for code, _ in out.letters] == ["BAD_MAGIC"]
    assert out.commands == []
