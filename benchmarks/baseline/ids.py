"""Identifiers as first written: canonical JSON through ``json.dumps``, then SHA-256."""

from __future__ import annotations

import hashlib
import json

from streams.domain.catalogue import event_data, spec_for
from streams.domain.records import AccountEvent, BusinessEvent

ID_HEX_CHARS = 32

Part = str | int | None


def digest_id(prefix: str, namespace: str, *parts: Part) -> str:
    canonical = json.dumps([namespace, *parts], separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:ID_HEX_CHARS]}"


def communication_id(source_event_id: str, rule_id: str) -> str:
    return digest_id("com", "communication", source_event_id, rule_id)


def audit_id(kind: str, subject_id: str) -> str:
    return digest_id("aud", "audit", kind, subject_id)


def suppression_key(event: BusinessEvent, communication_type: str) -> str:
    business_id = event.account_id if isinstance(event, AccountEvent) else event.case_id
    spec = spec_for(event.event_type)
    data = event_data(event)
    natural = [data.get(name) for name in spec.natural_key] if spec is not None else []
    return digest_id(
        "sup",
        "suppression",
        event.customer_id,
        communication_type,
        event.event_type,
        business_id,
        *natural,
    )
