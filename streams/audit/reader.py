"""Reading the audit topic back: decoded records per partition, in offset order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from streams.audit.chain import ChainReport, verify_chain
from streams.codec import DecodeError, codec_for
from streams.domain.records import AuditRecord
from streams.topic_reader import RawRecord, read_topic


def audit_records(
    bootstrap_servers: str, topic: str, client_config: Mapping[str, str] | None = None
) -> Iterator[tuple[RawRecord, AuditRecord | None]]:
    """Every record of the audit topic with its decoded value (None when undecodable)."""
    codec = codec_for(AuditRecord)
    for raw in read_topic(bootstrap_servers, topic, client_config=client_config):
        try:
            yield raw, codec.decode(raw.value)
        except DecodeError:
            yield raw, None


def verify_topic(
    bootstrap_servers: str, topic: str, client_config: Mapping[str, str] | None = None
) -> list[ChainReport]:
    """One chain report per partition that holds records. An undecodable record is itself a
    violation (reported as altered content)."""
    by_partition: dict[int, list[tuple[int, AuditRecord]]] = {}
    for raw, record in audit_records(bootstrap_servers, topic, client_config):
        if record is None:
            record = AuditRecord(
                audit_id="<undecodable>", kind="", occurred_at=0, summary="", hash="<undecodable>"
            )
        by_partition.setdefault(raw.partition, []).append((raw.offset, record))
    return [verify_chain(p, recs) for p, recs in sorted(by_partition.items())]
