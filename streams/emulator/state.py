"""The emulator's in-memory world: tokens, templates, jobs, documents, callbacks to send.

Pure bookkeeping with no HTTP in it, so the server module stays a thin translation layer and the
decisions (what a submission means, what an item's outcome is) are testable directly.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streams.domain.records import DeliveryStatus, TemplateVersion
from streams.emulator.ledger import Ledger, LedgerEntry
from streams.emulator.lifecycle import Outcomes, Step, plan
from streams.emulator.rendering import disclaimer_text, render

CHANNELS = frozenset({"PRINT", "EMAIL", "WEB", "SMS", "PUSH"})


class JobStatus(StrEnum):
    ACCEPTED = "accepted"
    COMPOSING = "composing"
    COMPOSED = "composed"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RequestError(ValueError):
    """A request the emulator refuses as a whole: HTTP status, problem type and detail."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


@dataclass(slots=True)
class Item:
    communication_id: str
    template_id: str
    template_version: int
    language: str
    channel: str
    data: dict[str, str]
    customer_id: str | None = None
    status: str = "accepted"
    document_id: str | None = None
    error_code: str | None = None
    error_text: str | None = None
    duplicate_of_job: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "communicationId": self.communication_id,
            "status": self.status,
            "documentId": self.document_id,
            "errorCode": self.error_code,
            "errorText": self.error_text,
            "duplicateOfJob": self.duplicate_of_job,
        }


@dataclass(slots=True)
class Job:
    job_id: str
    correlation_id: str | None
    items: list[Item]
    created_at: int
    status: JobStatus = JobStatus.ACCEPTED

    def as_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.status] = counts.get(item.status, 0) + 1
        return {
            "jobId": self.job_id,
            "correlationId": self.correlation_id,
            "status": self.status.value,
            "createdAt": self.created_at,
            "counts": counts,
            "items": [i.as_json() for i in self.items],
            "links": {"self": f"/v1/jobs/{self.job_id}", "cancel": f"/v1/jobs/{self.job_id}"},
        }


@dataclass(frozen=True, slots=True)
class Document:
    document_id: str
    pdf: bytes
    text: str
    template_id: str
    template_version: int
    language: str
    produced_at: int
    communication_id: str | None


@dataclass(frozen=True, slots=True)
class Callback:
    """One delivery event to post to the subscriber."""

    event_id: str
    payload: dict[str, Any]


def _id(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


def _text(body: Mapping[str, Any], key: str, *, where: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RequestError(400, "Invalid payload", f"{where}: {key} must be a non-empty string")
    return value


def parse_item(raw: Any, where: str) -> Item:
    """One communication of a job or on-demand request (camelCase JSON)."""
    if not isinstance(raw, dict):
        raise RequestError(400, "Invalid payload", f"{where} must be an object")
    version = raw.get("templateVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RequestError(
            400, "Invalid payload", f"{where}: templateVersion must be a positive integer"
        )
    channel = _text(raw, "channel", where=where)
    if channel not in CHANNELS:
        raise RequestError(
            400, "Invalid payload", f"{where}: channel must be one of {sorted(CHANNELS)}"
        )
    data = raw.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise RequestError(400, "Invalid payload", f"{where}: data must map strings to strings")
    return Item(
        communication_id=_text(raw, "communicationId", where=where) or "",
        template_id=_text(raw, "templateId", where=where) or "",
        template_version=version,
        language=_text(raw, "language", where=where) or "",
        channel=channel,
        data=dict(data),
        customer_id=_text(raw, "customerId", where=where, required=False),
    )


@dataclass(slots=True)
class World:
    templates: dict[tuple[str, int, str], TemplateVersion]
    outcomes: Outcomes = field(default_factory=Outcomes)
    rng: random.Random = field(default_factory=random.Random)
    max_items_per_job: int = 1000
    ledger: Ledger = field(default_factory=Ledger)
    jobs: dict[str, Job] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    by_correlation: dict[str, list[str]] = field(default_factory=dict)
    _accepted: dict[str, str] = field(default_factory=dict)
    """communication id -> the job that accepted it."""
    ondemand_documents: int = 0

    @classmethod
    def with_templates(cls, templates: Iterable[TemplateVersion], **kwargs: Any) -> World:
        return cls(
            templates={(t.template_id, t.version, t.language): t for t in templates}, **kwargs
        )

    # ------------------------------------------------------------------ submissions

    def submit(self, body: Any, *, now_ms: int) -> Job:
        """Accept a batch job (``POST /v1/jobs``); raises :class:`RequestError` to refuse it."""
        if not isinstance(body, dict):
            raise RequestError(400, "Invalid payload", "the body must be a JSON object")
        raw_items = body.get("communications")
        if not isinstance(raw_items, list) or not raw_items:
            raise RequestError(400, "Invalid payload", "communications must be a non-empty list")
        if len(raw_items) > self.max_items_per_job:
            raise RequestError(
                413, "Payload too large", f"at most {self.max_items_per_job} communications per job"
            )
        correlation = _text(body, "correlationId", where="job", required=False)
        items = [parse_item(raw, f"communications[{i}]") for i, raw in enumerate(raw_items)]
        ids = [i.communication_id for i in items]
        if len(set(ids)) != len(ids):
            raise RequestError(
                400, "Invalid payload", "a communication id appears twice in the job"
            )
        duplicates = [i for i in items if i.communication_id in self._accepted]
        if len(duplicates) == len(items):
            self.ledger.duplicate_submissions += len(items)
            raise RequestError(
                409,
                "Duplicate submission",
                "every communication of this job was already accepted",
                jobs=sorted({self._accepted[i.communication_id] for i in items}),
            )
        job_id = _id("job", correlation, now_ms, secrets.token_hex(8))
        for item in items:
            earlier = self._accepted.get(item.communication_id)
            if earlier is not None:
                item.status = "duplicate"
                item.duplicate_of_job = earlier
                prior = self.ledger.documents_for(item.communication_id)
                item.document_id = prior[0].document_id if prior else None
                self.ledger.duplicate_submissions += 1
            else:
                self._accepted[item.communication_id] = job_id
        job = Job(job_id, correlation, items, now_ms)
        self.jobs[job_id] = job
        if correlation:
            self.by_correlation.setdefault(correlation, []).append(job_id)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        if job.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.DISPATCHED):
            raise RequestError(409, "Not cancellable", f"job is {job.status.value}")
        job.status = JobStatus.CANCELLED
        for item in job.items:
            if item.status == "accepted":
                item.status = "cancelled"
                self._accepted.pop(item.communication_id, None)
        return job

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise RequestError(404, "Not found", f"no job {job_id}")
        return job

    # ------------------------------------------------------------------ composition

    def template_for(self, item: Item) -> TemplateVersion | None:
        template = self.templates.get((item.template_id, item.template_version, item.language))
        return template if template is not None and template.status != "DRAFT" else None

    def compose(self, job: Job, item: Item, *, now_ms: int) -> list[Callback]:
        """Render one accepted item; returns its lifecycle callbacks in order."""
        events = [self._event(job, item, Step(DeliveryStatus.ACCEPTED), now_ms)]
        template = self.template_for(item)
        if template is None:
            item.status, item.error_code = "failed", "UNKNOWN_TEMPLATE"
            item.error_text = (
                f"no template {item.template_id} v{item.template_version} ({item.language})"
            )
            failed = Step(
                DeliveryStatus.FAILED,
                exception_code=item.error_code,
                exception_text=item.error_text,
            )
            return [*events, self._event(job, item, failed, now_ms + 1)]
        missing = [f for f in template.required_fields if not item.data.get(f, "").strip()]
        if missing:
            item.status, item.error_code = "failed", "MISSING_DATA"
            item.error_text = f"required fields missing: {', '.join(sorted(missing))}"
            failed = Step(
                DeliveryStatus.FAILED,
                exception_code=item.error_code,
                exception_text=item.error_text,
            )
            return [*events, self._event(job, item, failed, now_ms + 1)]
        document = self._render(template, item.data, item.communication_id, now_ms)
        item.document_id = document.document_id
        item.status = "composed"
        self.ledger.record(
            LedgerEntry(
                communication_id=item.communication_id,
                document_id=document.document_id,
                job_id=job.job_id,
                template_id=template.template_id,
                template_version=template.version,
                language=template.language,
                channel=item.channel,
                produced_at=now_ms,
            )
        )
        events.append(self._event(job, item, Step(DeliveryStatus.COMPOSED), now_ms + 1))
        for step in plan(item.channel, self.outcomes, self.rng):
            # each later stage a little later: receivers can order events by time
            events.append(self._event(job, item, step, now_ms + len(events)))
        item.status = "failed" if events[-1].payload["status"] == "FAILED" else "dispatched"
        return events

    def compose_ondemand(self, body: Any, *, now_ms: int) -> Document:
        """``POST /v1/communications/ondemand``: render now or raise :class:`RequestError`."""
        if not isinstance(body, dict):
            raise RequestError(400, "Invalid payload", "the body must be a JSON object")
        raw = {**body, "communicationId": body.get("correlationId")}
        item = parse_item(raw, "request")
        template = self.template_for(item)
        if template is None:
            raise RequestError(
                422,
                "Unknown template",
                f"no usable template {item.template_id} v{item.template_version} ({item.language})",
            )
        missing = [f for f in template.required_fields if not item.data.get(f, "").strip()]
        if missing:
            raise RequestError(422, "Missing data", f"required fields missing: {sorted(missing)}")
        self.ondemand_documents += 1
        return self._render(template, item.data, None, now_ms, salt=item.communication_id)

    def _render(
        self,
        template: TemplateVersion,
        data: Mapping[str, str],
        communication_id: str | None,
        now_ms: int,
        salt: str = "",
    ) -> Document:
        rendered = render(
            template,
            data,
            disclaimer_text=disclaimer_text(template.disclaimer_id, template.disclaimer_version),
        )
        document_id = _id("doc", communication_id or salt, now_ms, len(self.documents))
        document = Document(
            document_id=document_id,
            pdf=rendered.pdf,
            text=rendered.text,
            template_id=template.template_id,
            template_version=template.version,
            language=template.language,
            produced_at=now_ms,
            communication_id=communication_id,
        )
        self.documents[document_id] = document
        return document

    @staticmethod
    def _event(job: Job, item: Item, step: Step, now_ms: int) -> Callback:
        event_id = _id("dev", item.communication_id, job.job_id, step.status.value)
        return Callback(
            event_id,
            {
                "eventId": event_id,
                "communicationId": item.communication_id,
                "customerId": item.customer_id,
                "jobId": job.job_id,
                "documentId": item.document_id,
                "channel": item.channel,
                "status": step.status.value,
                "occurredAt": now_ms,
                "bounceType": step.bounce_type,
                "exceptionCode": step.exception_code,
                "exceptionText": step.exception_text,
            },
        )
