"""Deterministic identifiers: the same inputs always give the same id, on any machine, in any run.

Every id is ``<prefix>-`` followed by the first 32 hex digits (128 bits) of a SHA-256 digest over a
namespace and the id's parts. The parts are serialised as a JSON array, so no choice of part values
can make two different part lists collide by concatenation (``("ab", "c")`` vs ``("a", "bc")``),
and the namespace keeps ids of different kinds apart even when their parts are equal.

Why deterministic: a replayed or re-processed event must produce the very same communication id,
alert id and audit id, so that downstream idempotency (the bulk sink, the audit writer, Exstream's
job keys) recognises the repetition instead of producing a second document.

=====================  ==========  ===========================================================
id                     prefix      derived from
=====================  ==========  ===========================================================
communication id       ``com-``    source event id + rule id
portal request's id    ``com-``    customer id + request id, namespace ``document-request``
                                   (:mod:`streams.domain.document_requests`)
alert id               ``alr-``    alert kind + what the alert is about (rule, template, event)
audit id               ``aud-``    audit kind + the subject (communication id or alert id)
suppression key        ``sup-``    see :mod:`streams.domain.suppression`
=====================  ==========  ===========================================================

The canonical JSON is what ``json.dumps(parts, separators=(",", ":"), ensure_ascii=False)`` writes,
UTF-8 encoded. orjson writes the same bytes for every string, integer and ``None`` it accepts, and
does it several times faster; what it refuses (integers beyond 64 bits, strings with lone
surrogates) goes through ``json.dumps`` as before, so every id stays what it always was
(``tests/domain/test_ids.py`` compares the two on generated parts).
"""

from __future__ import annotations

import json
from hashlib import sha256

import orjson

ID_HEX_CHARS = 32
"""Hex digits kept from the SHA-256 digest: 128 bits, ample against accidental collisions."""

Part = str | int | None


def digest_id(prefix: str, namespace: str, *parts: Part) -> str:
    """``<prefix>-<32 hex>`` over ``namespace`` and ``parts`` (order matters, ``None`` allowed)."""
    try:
        canonical = orjson.dumps((namespace, *parts))
    except TypeError:  # orjson.JSONEncodeError: beyond orjson, not beyond json
        canonical = canonical_json(namespace, *parts)
    return f"{prefix}-{sha256(canonical).hexdigest()[:ID_HEX_CHARS]}"


def canonical_json(*parts: Part) -> bytes:
    """The UTF-8 bytes of ``json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)``."""
    try:
        return orjson.dumps(parts)
    except TypeError:  # orjson.JSONEncodeError: beyond orjson, not beyond json
        return json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False).encode()


def communication_id(source_event_id: str, rule_id: str) -> str:
    """The id of the communication ``rule_id`` produces for event ``source_event_id``.

    Independent of the rule's version, the chosen channel and the template version: a replay after
    a rule edit still maps to the same communication, so it is not composed twice.
    """
    try:  # digest_id, inlined: one id per rule fired per event
        canonical = orjson.dumps(("communication", source_event_id, rule_id))
    except TypeError:
        canonical = canonical_json("communication", source_event_id, rule_id)
    return f"com-{sha256(canonical).hexdigest()[:ID_HEX_CHARS]}"


def alert_id(kind: str, *subject: Part) -> str:
    """The id of an alignment alert of ``kind`` about ``subject`` (rule, template, version, event).

    Callers pass every part that distinguishes one alert from another of the same kind; equal
    subjects give equal ids so that a re-raised alert is recognisably the same alert.
    """
    return digest_id("alr", "alert", kind, *subject)


def audit_id(kind: str, subject_id: str) -> str:
    """The id of the audit record of ``kind`` about ``subject_id`` (a communication or alert id)."""
    try:  # digest_id, inlined: one id per audit record
        canonical = orjson.dumps(("audit", kind, subject_id))
    except TypeError:
        canonical = canonical_json("audit", kind, subject_id)
    return f"aud-{sha256(canonical).hexdigest()[:ID_HEX_CHARS]}"
