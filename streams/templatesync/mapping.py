"""What Exstream's communication versions mean for routing (pure: no HTTP, no Kafka, no clock).

Design resources carry a workflow state (DRAFT, REVIEW, APPROVED, REJECTED) and integrations use
the latest APPROVED version. Each version becomes one
:class:`~streams.domain.records.TemplateVersion` keyed ``template_id/version/language``:

==========================================  ============  =====================================
Design version                               status        why
==========================================  ============  =====================================
APPROVED, the highest approved of its        APPROVED      what Exstream runs: usable
communication
APPROVED, a higher version is approved       RETIRED       superseded: Exstream no longer runs it
DRAFT or REVIEW                              DRAFT         not (yet) usable
REJECTED                                     RETIRED       never usable
published before, gone from Design now       RETIRED       deleted in Design: no longer usable
==========================================  ============  =====================================

DRAFT and RETIRED are never used by routing (:mod:`streams.domain.templates`), so a version is
usable exactly when Exstream would run it. Each record carries the communication id and the
driver data source the Exstream client needs to run it. A version whose content cannot be read
as a template (fields missing or of the wrong type) is skipped and reported, never published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from streams.domain.records import TemplateStatus, TemplateVersion
from streams.errors import AirExstreamError


@dataclass(frozen=True, slots=True)
class DesignVersion:
    """One communication version as the Design API describes it."""

    communication_id: str
    version: int
    state: str
    last_modified_ms: int
    content: Any
    driver_data_source: str | None


class ContentError(AirExstreamError, ValueError):
    """A version's content is not a template descriptor."""


def template_key(t: TemplateVersion) -> str:
    """Key of a template record on ``exstream.templates.v1``."""
    return f"{t.template_id}/{t.version}/{t.language}"


def parse_time_ms(value: str | None) -> int:
    """ISO-8601 (``2026-11-28T10:00:00.123Z``) -> epoch milliseconds; 0 when absent."""
    if not value:
        return 0
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def _strings(content: Mapping[str, Any], key: str) -> list[str]:
    value = content.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ContentError(f"{key} must be a list of strings")
    return list(value)


def _optional(content: Mapping[str, Any], key: str, kind: type) -> Any:
    value = content.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ContentError(f"{key} must be a {kind.__name__} or null")
    return value


def _text(content: Mapping[str, Any], key: str) -> str:
    value = content.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{key} must be a non-empty string")
    return value


def record_of(version: DesignVersion, status: str) -> TemplateVersion:
    """The template record of one version; :class:`ContentError` when its content is unusable."""
    c = version.content
    if not isinstance(c, dict):
        raise ContentError("the content is not an object")
    body = c.get("body", "")
    if not isinstance(body, str):
        raise ContentError("body must be a string")
    return TemplateVersion(
        template_id=_text(c, "templateId"),
        version=version.version,
        language=_text(c, "language"),
        status=status,
        communication_type=_text(c, "communicationType"),
        required_fields=_strings(c, "requiredFields"),
        channels=_strings(c, "channels"),
        disclaimer_id=_optional(c, "disclaimerId", str),
        disclaimer_version=_optional(c, "disclaimerVersion", int),
        regulatory_text_version=_optional(c, "regulatoryTextVersion", int),
        body=body,
        exstream_communication_id=version.communication_id,
        driver_data_source=version.driver_data_source,
        updated_at=version.last_modified_ms,
    )


def status_of(version: DesignVersion, highest_approved: int | None) -> str:
    if version.state == "APPROVED":
        if highest_approved is not None and version.version < highest_approved:
            return TemplateStatus.RETIRED.value
        return TemplateStatus.APPROVED.value
    if version.state in ("DRAFT", "REVIEW"):
        return TemplateStatus.DRAFT.value
    return TemplateStatus.RETIRED.value  # REJECTED, or a state this mapping does not know


@dataclass(frozen=True, slots=True)
class Skipped:
    communication_id: str
    version: int
    reason: str


def template_records(
    versions: Iterable[DesignVersion],
) -> tuple[list[TemplateVersion], list[Skipped]]:
    """Every version as a template record (see the module docstring), and the ones skipped."""
    items = list(versions)
    highest: dict[str, int] = {}
    for v in items:
        if v.state == "APPROVED":
            highest[v.communication_id] = max(highest.get(v.communication_id, 0), v.version)
    records: list[TemplateVersion] = []
    skipped: list[Skipped] = []
    for v in items:
        try:
            records.append(record_of(v, status_of(v, highest.get(v.communication_id))))
        except ContentError as exc:
            skipped.append(Skipped(v.communication_id, v.version, str(exc)))
    return records, skipped


def changes(
    published: Mapping[str, TemplateVersion], current: Iterable[TemplateVersion]
) -> list[TemplateVersion]:
    """What to publish so the topic says ``current``: new or changed records, and RETIRED copies
    of published records that are no longer in ``current`` (not already retired)."""
    out: list[TemplateVersion] = []
    seen: set[str] = set()
    for record in current:
        key = template_key(record)
        seen.add(key)
        if published.get(key) != record:
            out.append(record)
    for key in sorted(published):
        old = published[key]
        if key not in seen and old.status != TemplateStatus.RETIRED:
            out.append(replace(old, status=TemplateStatus.RETIRED.value))
    return out
