"""The emulator's Design (DAS) world: communications, their versions and workflow states.

Each template of the simulated world, in one language, is one communication (an
``exstrapplication`` resource) whose id is a UUID derived from ``template_id`` and ``language``;
its versions carry a workflow state (DRAFT, REVIEW, APPROVED, REJECTED). Every communication
belongs to one communication set, whose manifest names the driver data source
(:data:`DRIVER_DATA_SOURCE`).

:func:`seed` turns a list of :class:`~streams.domain.records.TemplateVersion` (e.g. the
simulator's catalogue) into that world: APPROVED stays APPROVED, DRAFT stays DRAFT, a RETIRED
version below an approved one was approved and then superseded (APPROVED, older), a RETIRED
version with nothing approved above it was REJECTED. Read back by the template sync, the world
gives the same records again.

A version's *content* is this emulator's own descriptor of the template (:func:`content_of`):
the real content of a design is Exstream's package format, which is not public.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from streams.domain.records import TemplateVersion

NAMESPACE = uuid.UUID("5f0b3a52-8d0e-4c36-9a43-7d2f1c8a9e10")
DRIVER_DATA_SOURCE = "AirCustomerDriver"
STATES = ("DRAFT", "REVIEW", "APPROVED", "REJECTED")


def communication_id(template_id: str, language: str) -> str:
    """The Exstream communication (design) id of a template in one language."""
    return str(uuid.uuid5(NAMESPACE, f"communication/{template_id}/{language}"))


def communication_set_id(resource_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"communication-set/{resource_id}"))


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with milliseconds (``...T12:00:00.000Z``)."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(slots=True)
class DesignVersion:
    resource_id: str
    version: int
    state: str
    template: TemplateVersion
    """What this version renders (its ``status`` is not used: ``state`` is the workflow)."""
    last_modified_ms: int

    @property
    def name(self) -> str:
        return f"{self.template.template_id} ({self.template.language})"

    def as_json(self, *, latest: bool) -> dict[str, Any]:
        """A ``ResourceVersion`` of the Design API."""
        return {
            "id": self.resource_id,
            "version": self.version,
            "name": self.name,
            "type": "exstrapplication",
            "state": self.state,
            "description": self.template.communication_type,
            "createdBy": "designer",
            "createdDate": iso(self.last_modified_ms),
            "lastModifiedBy": "designer",
            "lastModifiedDate": iso(self.last_modified_ms),
            "latestVersion": latest,
            "locked": False,
            "hidden": False,
        }


def content_of(template: TemplateVersion) -> dict[str, Any]:
    """The emulator's content descriptor of a version (emulator-only format)."""
    return {
        "templateId": template.template_id,
        "language": template.language,
        "communicationType": template.communication_type,
        "requiredFields": list(template.required_fields),
        "channels": list(template.channels),
        "disclaimerId": template.disclaimer_id,
        "disclaimerVersion": template.disclaimer_version,
        "regulatoryTextVersion": template.regulatory_text_version,
        "body": template.body,
    }


@dataclass(slots=True)
class DesignWorld:
    versions: dict[str, dict[int, DesignVersion]] = field(default_factory=dict)
    """communication id -> version number -> version."""

    def add(self, template: TemplateVersion, state: str, *, modified_ms: int | None = None) -> str:
        """Add (or replace) one version; returns the communication id."""
        if state not in STATES:
            raise ValueError(f"unknown workflow state {state!r}")
        rid = communication_id(template.template_id, template.language)
        self.versions.setdefault(rid, {})[template.version] = DesignVersion(
            rid,
            template.version,
            state,
            template,
            template.updated_at if modified_ms is None else modified_ms,
        )
        return rid

    def set_state(self, resource_id: str, version: int, state: str, *, now_ms: int) -> None:
        if state not in STATES:
            raise ValueError(f"unknown workflow state {state!r}")
        current = self.versions[resource_id][version]
        current.state = state
        current.last_modified_ms = now_ms

    def remove(self, resource_id: str, version: int | None = None) -> None:
        """Delete one version, or the whole communication."""
        if version is None:
            self.versions.pop(resource_id, None)
        else:
            self.versions.get(resource_id, {}).pop(version, None)

    def get(self, resource_id: str, version: int | None = None) -> DesignVersion | None:
        versions = self.versions.get(resource_id)
        if not versions:
            return None
        if version is None:
            return versions[max(versions)]
        return versions.get(version)

    def latest_approved(self, resource_id: str) -> DesignVersion | None:
        """What Exstream runs for a communication: its highest APPROVED version."""
        approved = [v for v in self.versions.get(resource_id, {}).values() if v.state == "APPROVED"]
        return max(approved, key=lambda v: v.version, default=None)

    def listing(
        self, *, states: Iterable[str] | None = None, latest_only: bool = False
    ) -> list[tuple[DesignVersion, bool]]:
        """Versions (with whether each is its communication's latest), in a stable order."""
        wanted = set(states) if states else None
        out: list[tuple[DesignVersion, bool]] = []
        for rid in sorted(self.versions):
            versions = self.versions[rid]
            if not versions:
                continue
            latest = max(versions)
            for number in sorted(versions):
                if latest_only and number != latest:
                    continue
                v = versions[number]
                if wanted is None or v.state in wanted:
                    out.append((v, number == latest))
        return out


def seed(templates: Iterable[TemplateVersion]) -> DesignWorld:
    """The Design world holding ``templates`` (see the module docstring for the states)."""
    items = list(templates)
    approved: dict[tuple[str, str], int] = {}
    for t in items:
        if t.status == "APPROVED":
            key = (t.template_id, t.language)
            approved[key] = max(approved.get(key, 0), t.version)
    world = DesignWorld()
    for t in items:
        if t.status == "APPROVED":
            state = "APPROVED"
        elif t.status == "RETIRED":
            superseded = approved.get((t.template_id, t.language), 0) > t.version
            state = "APPROVED" if superseded else "REJECTED"
        else:
            state = "DRAFT"
        world.add(replace(t, status="APPROVED" if state == "APPROVED" else t.status), state)
    return world
