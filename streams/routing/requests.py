"""Portal document requests (flow 5, the asynchronous path) on the routing worker.

The handler reads ``air.document-requests.v1`` (keyed by customer id, co-partitioned with the
events) and, per record, inside the worker's exactly-once transaction (as the business events):

1. decodes it with the project's codec (Avro, or JSON with the content-type header); bytes that
   do not decode are dead-lettered with the codec's code (``BAD_MAGIC``, ``DECODE_ERROR``...);
2. dead-letters it as ``KEY_MISMATCH`` when its key is not its ``customer_id`` (the key decides
   the partition, hence where the communication's tracking state lives);
3. decides it with :func:`streams.domain.document_requests.decide_request`; a rejection is
   dead-lettered with its code and reason;
4. a retry of a request whose communication is already tracked (the ``communications`` table of
   :mod:`streams.routing.tracking`, written in the transaction that emitted the command) emits no
   second command, only a SUPPRESSED audit record (cause ``RETRY``);
5. otherwise sends the command to ``exstream.composition-commands.v1``, registers it with
   delivery tracking (so its document metadata, origin ``ON_DEMAND``, and its statuses come back
   on ``air.document-metadata.v1`` and ``air.communication-status.v1``) and chains its
   COMMAND_EMITTED audit record.

Every dead letter also leaves a DEAD_LETTER audit record (the worker's ``dead_letter``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.codec import Codecs
from streams.domain.document_requests import RequestRejection, decide_request, retry_audit
from streams.domain.records import AuditRecord, CompositionCommand, DocumentRequest, TemplateVersion
from streams.routing.handlers.decode import decode_or_dead_letter
from streams.routing.metrics import RoutingMetrics
from streams.routing.tracking import Register
from topology import names
from topology.model import Topology

log = logging.getLogger(__name__)


@dataclass
class RequestCounters:
    """What the request agent did since the worker started (logged periodically)."""

    requests: int = 0
    commands: int = 0
    retries: int = 0
    rejected: int = 0

    def line(self) -> str:
        return (
            f"requests={self.requests} commands={self.commands} retries={self.retries} "
            f"rejected={self.rejected}"
        )


@dataclass
class RequestsContext:
    """What the request handler needs from the worker."""

    source_topic: str
    """The requests topic's (possibly prefixed) name: the commands' ``source_topic``."""
    commands_topic: Any
    communications: Any
    """Delivery tracking's table: communication id -> state (present once a command was sent)."""
    register: Register
    send_audit: Callable[[AuditRecord, bytes | None], Awaitable[None]]
    dead_letter: Callable[[Any, str, str], Awaitable[None]]
    key_mismatch: Callable[[bytes | None, str], str]
    """The dead-letter reason of a record keyed by another customer than its own."""
    templates_by_id: Callable[[], Mapping[str, Sequence[TemplateVersion]]]
    counters: RequestCounters
    codecs: Codecs
    topology: Topology
    registry_wait_s: float
    """See :attr:`~streams.routing.settings.WorkerSettings.registry_wait_s`."""
    metrics: RoutingMetrics = field(default_factory=RoutingMetrics)


def request_handler(ctx: RequestsContext) -> Callable[[Any], Awaitable[None]]:
    """The per-record handler of a document request."""
    codecs, topic = ctx.codecs, ctx.topology.name
    request_codec = codecs.for_topic(ctx.source_topic, DocumentRequest)
    command_codec = codecs.for_topic(topic(names.COMMANDS), CompositionCommand)
    counters = ctx.counters

    async def handle(msg: Any) -> None:
        request = await decode_or_dead_letter(
            request_codec.decode, msg, ctx.dead_letter, wait_s=ctx.registry_wait_s
        )
        if request is None:
            return
        key = request.customer_id.encode()
        if msg.key is not None and msg.key != key:
            reason = ctx.key_mismatch(msg.key, request.customer_id)
            await ctx.dead_letter(msg, "KEY_MISMATCH", reason)
            return
        counters.requests += 1
        decision = decide_request(
            request, source_topic=ctx.source_topic, templates_by_id=ctx.templates_by_id()
        )
        if isinstance(decision, RequestRejection):
            counters.rejected += 1
            ctx.metrics.decided("document_request", "rejected")
            await ctx.dead_letter(msg, decision.code.value, decision.reason)
            return
        command = decision.command
        if ctx.communications.get(command.communication_id.encode()):
            counters.retries += 1
            ctx.metrics.decided("document_request", "retry")
            source = f"{msg.topic}/{msg.partition}/{msg.offset}"
            await ctx.send_audit(retry_audit(request, source), key)
            log.info("document request retried, command already emitted: %s", source)
            return
        await ctx.commands_topic.send(key=key, value=command_codec.encode(command))
        await ctx.register(msg, command)
        await ctx.send_audit(decision.audit, key)
        counters.commands += 1
        ctx.metrics.decided("document_request", "command")

    return handle
