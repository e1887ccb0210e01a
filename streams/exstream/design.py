"""Exstream Design (DAS): communications, their versions and workflow states, their driver.

Public sources: OpenText's SDK ``DasService`` / ``DasUriBuilder`` (``ResourceFilter`` query
parameters ``filter.types``, ``filter.states``, ``filter.latestVersion``, ``count``, ``offset``;
``DasResourceVersion``; ``WorkflowState`` DRAFT, REVIEW, APPROVED, REJECTED; ``DasManifest`` and
its ``dsnlist``), its Postman collection (communications are ``exstrapplication`` resources; the
communication set of a communication through ``/links``; the driver's ``prodDsn`` from the
communication set's manifest) and Exstream's Design OpenAPI document.

The *content* of a communication version is Exstream's own design format; what this project
reads from it (template id, language, required fields, channels, disclaimer and regulatory
versions, body) is the emulator's content format, an emulator-only choice. Against a real
Exstream those attributes must come from DAS metadata tags agreed with the design team
(``docs/exstream-emulator.md``, "What is not public").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.exstream import paths
from streams.exstream.errors import ExstreamError
from streams.exstream.settings import ExstreamSettings
from streams.exstream.transport import Transport

COMMUNICATION_TYPE = "exstrapplication"
COMMUNICATION_SET_TYPE = "exstrcommunicationset"
WORKFLOW_STATES = ("DRAFT", "REVIEW", "APPROVED", "REJECTED")


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    id: str
    version: int
    name: str
    state: str
    """DRAFT, REVIEW, APPROVED or REJECTED."""
    last_modified: str | None = None
    """ISO-8601 date-time."""

    @classmethod
    def from_json(cls, raw: Any) -> ResourceVersion:
        try:
            return cls(
                id=str(raw["id"]),
                version=int(raw["version"]),
                name=str(raw.get("name", "")),
                state=str(raw["state"]),
                last_modified=raw.get("lastModifiedDate"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ExstreamError("Design answered a resource without id, version or state") from exc


@dataclass(frozen=True, slots=True)
class Manifest:
    driver_data_sources: list[str] = field(default_factory=list)
    """``prodDsn`` of each data source of type ``driver``."""
    metadata: dict[str, str] = field(default_factory=dict)


class Design:
    def __init__(self, settings: ExstreamSettings, transport: Transport) -> None:
        self._s = settings
        self._t = transport
        self._base = settings.design_base

    async def communications(self, *, page_size: int = 100) -> list[ResourceVersion]:
        """Every version of every communication, whatever its workflow state."""
        out: list[ResourceVersion] = []
        offset = 0
        while True:
            answer = await self._t.request(
                "GET",
                self._base + paths.resources(self._s.domain),
                what="communication list",
                params={
                    "filter.types": COMMUNICATION_TYPE,
                    "filter.latestVersion": "false",
                    "count": str(page_size),
                    "offset": str(offset),
                },
            )
            body = answer.json(what="communication list")
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise ExstreamError("Design answered the communication list without data")
            out += [ResourceVersion.from_json(r) for r in data]
            offset += len(data)
            total = (body.get("page") or {}).get("totalElements")
            if not data or not isinstance(total, int) or offset >= total:
                return out

    async def content(self, resource_id: str, version: int) -> Any:
        answer = await self._t.request(
            "GET",
            self._base + paths.resource_content(self._s.domain, resource_id),
            what="resource content",
            params={"version": str(version)},
        )
        return answer.json(what="resource content")

    async def communication_set(self, communication_id: str, version: int) -> str | None:
        """The id of the communication set a communication version belongs to."""
        answer = await self._t.request(
            "GET",
            self._base + paths.links(self._s.domain),
            what="communication set lookup",
            params={
                "linkSubjectId": communication_id,
                "linkSubjectVersion": str(version),
                "linkDepth": "2",
                "filter.types": COMMUNICATION_SET_TYPE,
            },
        )
        body = answer.json(what="communication set lookup")
        for link in body.get("data") or [] if isinstance(body, dict) else []:
            if isinstance(link, dict) and link.get("typeId") == COMMUNICATION_SET_TYPE:
                return str(link["linkObjectId"])
        return None

    async def manifest(self, communication_set_id: str) -> Manifest:
        answer = await self._t.request(
            "GET",
            self._base + paths.communication_set_manifest(self._s.domain, communication_set_id),
            what="communication set manifest",
        )
        body = answer.json(what="communication set manifest")
        if not isinstance(body, dict):
            raise ExstreamError("Design answered a manifest that is not an object")
        drivers = [
            str(d["prodDsn"])
            for d in body.get("dsnlist") or []
            if isinstance(d, dict) and d.get("type") == "driver" and d.get("prodDsn")
        ]
        metadata = {
            str(m["name"]): str(m.get("text", ""))
            for m in body.get("metadata") or []
            if isinstance(m, dict) and m.get("name")
        }
        return Manifest(driver_data_sources=drivers, metadata=metadata)
