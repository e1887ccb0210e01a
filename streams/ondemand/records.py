"""The records every on-demand document leaves behind (pure).

- ``DocumentMetadata`` (origin ``ON_DEMAND``) on ``air.document-metadata.v1``;
- ``AuditRecord`` (``DOCUMENT_PRODUCED``) on the audit intake topic, which the audit writer
  chains into ``audit.communications.v1``.

Both are keyed by customer id. The communication id of an on-demand document is derived from
the Exstream document id (``digest_id("com", "ondemand", document_id)``): one document, one
communication, one audit id, so a retried write is recognised downstream as the same record.
``communication_type`` is the document type asked for (``INVOICE``...). The audit details name
ids, template and key id only: never the query data (amounts, policy numbers) or tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.domain.ids import audit_id, digest_id
from streams.domain.records import AuditKind, AuditRecord, DocumentMetadata, DocumentType

ORIGIN = "ON_DEMAND"


@dataclass(frozen=True, slots=True, kw_only=True)
class Produced:
    """One document Exstream produced for a portal request."""

    document_id: str
    customer_id: str
    document_type: DocumentType
    template_id: str
    template_version: int
    language: str
    channel: str
    produced_at: int
    request_id: str
    key_id: str
    delivery: str


def ondemand_communication_id(document_id: str) -> str:
    return digest_id("com", "ondemand", document_id)


def metadata_record(p: Produced) -> DocumentMetadata:
    return DocumentMetadata(
        document_id=p.document_id,
        communication_id=ondemand_communication_id(p.document_id),
        customer_id=p.customer_id,
        template_id=p.template_id,
        template_version=p.template_version,
        communication_type=p.document_type.value,
        channel=p.channel,
        language=p.language,
        origin=ORIGIN,
        produced_at=p.produced_at,
    )


def audit_record(p: Produced) -> AuditRecord:
    communication = ondemand_communication_id(p.document_id)
    return AuditRecord(
        audit_id=audit_id(AuditKind.DOCUMENT_PRODUCED, communication),
        kind=AuditKind.DOCUMENT_PRODUCED,
        customer_id=p.customer_id,
        communication_id=communication,
        occurred_at=p.produced_at,
        summary=f"on-demand {p.document_type.value} produced for the portal",
        details={
            "origin": ORIGIN,
            "document_id": p.document_id,
            "document_type": p.document_type.value,
            "template_id": p.template_id,
            "template_version": str(p.template_version),
            "language": p.language,
            "channel": p.channel,
            "delivery": p.delivery,
            "request_id": p.request_id,
            "api_key_id": p.key_id,
        },
    )
