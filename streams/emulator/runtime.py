"""The emulator's Orchestration world: on-demand runs, batch jobs, flow steps, documents.

Pure bookkeeping with no HTTP in it (the server is a thin translation layer over it).

- :meth:`Runtime.ondemand` runs one communication on one customer's driver data now;
- :meth:`Runtime.submit_batch` accepts a multi-customer driver file as a job (``waiting``); the
  server then calls :meth:`Runtime.run_job_steps`, which composes every customer (``started`` ->
  ``complete``, or ``error`` when no customer could be composed), one customer at a time, yielding
  each customer's Experience Insights events to send;
- a job can be stopped (``canceled``) before it ran, and deleted once finished.

A communication runs its highest APPROVED version (the Design world decides which). Exstream
does not refuse to compose a communication twice: a driver file submitted twice composes twice,
and the ledger shows it (``communications_with_more_than_one_document``). Keeping that at 0 is
the client's job.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.domain.records import TemplateVersion
from streams.emulator.design import DesignWorld, iso
from streams.emulator.events import Customer, event
from streams.emulator.ledger import Ledger, LedgerEntry
from streams.emulator.lifecycle import GENERATED, Outcomes, failed_type, plan
from streams.emulator.rendering import disclaimer_text, render
from streams.errors import AirExstreamError

CHANNELS = frozenset({"PRINT", "EMAIL", "WEB", "SMS", "PUSH"})
NAMESPACE = uuid.UUID("7a1d2c3b-4e5f-4a6b-9c8d-0e1f2a3b4c5d")


class RequestError(AirExstreamError, ValueError):
    """A request refused as a whole: HTTP status, message, and which error envelope to use
    (``spring``: the Spring-style body; ``orchestration``: ``{status: error, data: [...]}``)."""

    def __init__(
        self, status: int, message: str, *, envelope: str = "spring", error: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.envelope = envelope
        self.error = error


@dataclass(frozen=True, slots=True)
class Document:
    document_id: str
    pdf: bytes
    text: str
    template: TemplateVersion
    produced_at: int
    communication_id: str | None

    @property
    def file_name(self) -> str:
        return f"{self.document_id}.pdf"


@dataclass(slots=True)
class CustomerRun:
    record: dict[str, Any]
    status: str = "pending"
    """pending, composed, failed or canceled."""
    document: Document | None = None
    error: str | None = None

    @property
    def communication_id(self) -> str:
        return str(self.record["communicationId"])

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "customerId": self.communication_id,
            "status": self.status,
            "files": [self.document.file_name] if self.document else [],
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class Job:
    id: str
    external_id: str | None
    mode: str
    channel: str
    created_ms: int
    customers: list[CustomerRun] = field(default_factory=list)
    status: str = "waiting"
    msg: str | None = None
    end_ms: int | None = None

    @property
    def instance_id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, f"instance/{self.id}"))

    @property
    def step_id(self) -> str:
        return str(uuid.uuid5(NAMESPACE, f"output-step/{self.id}"))

    def as_json(self) -> dict[str, Any]:
        """A ``Job`` of the runtime API."""
        out: dict[str, Any] = {
            "id": self.id,
            "domainId": "",
            "channel": self.channel,
            "mode": self.mode,
            "status": self.status,
            "flowModelType": "COMMUNICATION",
            "triggeredBy": "air-exstream",
            "startDate": iso(self.created_ms),
        }
        if self.external_id is not None:
            out["externalId"] = self.external_id
        if self.msg is not None:
            out["msg"] = self.msg
        if self.end_ms is not None:
            out["endDate"] = iso(self.end_ms)
        return out

    def instance_json(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "jobId": self.id,
            "status": "finishing" if self.status == "deleted" else self.status,
            "startDate": iso(self.created_ms),
            "externalId": self.external_id,
            "flowModelType": "COMMUNICATION",
        }

    def step_json(self) -> dict[str, Any]:
        done = self.status in ("complete", "error")
        return {
            "id": self.step_id,
            "flowInstanceId": self.instance_id,
            "stepName": "output",
            "displayName": "Output",
            "stepType": "output",
            "status": self.status if self.status != "waiting" else "created",
            "startDate": iso(self.created_ms),
            "externalId": self.external_id,
            "deliveryFileRetrievable": done,
        }


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RequestError(400, f"{where}: {key} must be a non-empty string")
    return value


def validate_record(raw: Any, where: str) -> dict[str, Any]:
    """One customer's driver record (the project's driver data source definition)."""
    if not isinstance(raw, dict):
        raise RequestError(400, f"{where} must be an object")
    for key in ("communicationId", "customerId", "channel", "language"):
        _text(raw, key, where)
    version = raw.get("templateVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RequestError(400, f"{where}: templateVersion must be a positive integer")
    if raw["channel"] not in CHANNELS:
        raise RequestError(400, f"{where}: channel must be one of {sorted(CHANNELS)}")
    data = raw.get("data", {})
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise RequestError(400, f"{where}: data must map strings to strings")
    design = raw.get("exstreamCommunicationId")
    if design is not None and not isinstance(design, str):
        raise RequestError(400, f"{where}: exstreamCommunicationId must be a string")
    return dict(raw)


@dataclass(slots=True)
class Runtime:
    design: DesignWorld
    tenant: str = "air"
    domain: str = "air"
    outcomes: Outcomes = field(default_factory=Outcomes)
    rng: random.Random = field(default_factory=random.Random)
    max_customers: int = 1000
    ledger: Ledger = field(default_factory=Ledger)
    jobs: dict[str, Job] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    ondemand_documents: int = 0

    # ------------------------------------------------------------------ on demand

    def ondemand(
        self, *, communication_id: str | None, dsn: str | None, body: bytes, now_ms: int
    ) -> Document:
        if not communication_id or not dsn:
            raise RequestError(400, "the communicationId and driverDataSource headers are required")
        version = self.design.latest_approved(communication_id)
        if version is None:
            raise RequestError(
                404, f"no approved communication {communication_id}", envelope="orchestration"
            )
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestError(
                400, f"the driver data is not JSON: {exc}", envelope="orchestration"
            ) from exc
        if not isinstance(raw, dict):
            raise RequestError(400, "the driver data must be an object", envelope="orchestration")
        data = raw.get("data", {})
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise RequestError(400, "data must map strings to strings", envelope="orchestration")
        missing = self._missing(version.template, data)
        if missing:
            raise RequestError(
                400, f"required fields missing: {', '.join(missing)}", envelope="orchestration"
            )
        self.ondemand_documents += 1
        return self._render(
            version.template, data, None, now_ms, salt=str(raw.get("communicationId"))
        )

    # ------------------------------------------------------------------ batch

    def submit_batch(
        self, body: bytes, *, external_id: str | None, service: str, now_ms: int
    ) -> Job:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestError(400, f"the driver file is not JSON: {exc}") from exc
        customers = raw.get("customers") if isinstance(raw, dict) else None
        if not isinstance(customers, list) or not customers:
            raise RequestError(400, "the driver file must hold a non-empty customers list")
        if len(customers) > self.max_customers:
            raise RequestError(413, f"at most {self.max_customers} customers per driver file")
        records = [validate_record(c, f"customers[{i}]") for i, c in enumerate(customers)]
        job = Job(
            id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            external_id=external_id,
            mode="BATCH",
            channel=service,
            created_ms=now_ms,
            customers=[CustomerRun(r) for r in records],
        )
        self.jobs[job.id] = job
        return job

    def run_job(self, job: Job, *, now_ms: int) -> list[dict[str, Any]]:
        """Compose every pending customer; returns their events, in order per customer."""
        return [e for events in self.run_job_steps(job, now_ms=now_ms) for e in events]

    def run_job_steps(self, job: Job, *, now_ms: int) -> Iterator[list[dict[str, Any]]]:
        """:meth:`run_job` one customer at a time: yields each customer's events (the job is
        ``started`` until the last one), so that a server can answer other requests between
        customers, as Exstream's API does while its engines compose."""
        if job.status != "waiting":
            return
        job.status = "started"
        for run in job.customers:
            if job.status != "started":
                break  # stopped between two customers: the rest stay canceled
            if run.status == "pending":
                yield self._compose(job, run, now_ms)
        if job.status != "started":
            return
        composed = sum(1 for c in job.customers if c.status == "composed")
        job.status = "complete" if composed else "error"
        if not composed:
            job.msg = "no customer of the driver file could be composed"
        job.end_ms = now_ms

    def _compose(self, job: Job, run: CustomerRun, now_ms: int) -> list[dict[str, Any]]:
        record = run.record
        design_id = record.get("exstreamCommunicationId")
        version = self.design.latest_approved(design_id) if isinstance(design_id, str) else None
        customer = Customer(
            communication_id=run.communication_id,
            customer_id=str(record["customerId"]),
            channel=str(record["channel"]),
            exstream_communication_id=design_id if isinstance(design_id, str) else None,
            job_id=job.id,
            document_id=None,
            email=(record.get("recipient") or {}).get("email"),
        )
        if version is None:
            run.status, run.error = "failed", "UNKNOWN_TEMPLATE: no approved communication"
            return [self._event(customer, failed_type(customer.channel), now_ms, run.error)]
        missing = self._missing(version.template, record.get("data") or {})
        if missing:
            run.status, run.error = "failed", f"MISSING_DATA: {', '.join(missing)}"
            return [self._event(customer, failed_type(customer.channel), now_ms, run.error)]
        document = self._render(version.template, record["data"], run.communication_id, now_ms)
        run.status, run.document = "composed", document
        self.ledger.record(
            LedgerEntry(
                communication_id=run.communication_id,
                document_id=document.document_id,
                job_id=job.id,
                template_id=document.template.template_id,
                template_version=document.template.version,
                language=document.template.language,
                channel=customer.channel,
                produced_at=now_ms,
            )
        )
        customer = Customer(**{**_fields(customer), "document_id": document.document_id})
        events = [self._event(customer, GENERATED, now_ms)]
        for i, step in enumerate(plan(customer.channel, self.outcomes, self.rng), start=1):
            failed = step.schema_type.endswith("-Failed")
            events.append(self._event(customer, step.schema_type, now_ms + i, step.msg, failed))
        return events

    def _event(
        self,
        customer: Customer,
        schema_type: str,
        now_ms: int,
        msg: str | None = None,
        failed: bool | None = None,
    ) -> dict[str, Any]:
        return event(
            customer,
            schema_type,
            tenant=self.tenant,
            domain=self.domain,
            at_ms=now_ms,
            msg=msg,
            failed=schema_type.endswith("-Failed") if failed is None else failed,
        )

    # ------------------------------------------------------------------ jobs

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.status == "deleted":
            raise RequestError(404, f"no job {job_id}")
        return job

    def stop(self, job_id: str, *, now_ms: int) -> Job:
        job = self.job(job_id)
        if job.status in ("waiting", "started", "holding"):
            job.status = "canceled"
            job.end_ms = now_ms
            for run in job.customers:
                if run.status == "pending":
                    run.status = "canceled"
        return job

    def delete(self, job_id: str) -> None:
        job = self.job(job_id)
        if job.status not in ("complete", "error", "canceled"):
            raise RequestError(409, f"job {job_id} is {job.status}: only a finished job is deleted")
        job.status = "deleted"

    def find(self, filters: Mapping[str, str], *, fetch_deleted: bool = False) -> list[Job]:
        out = []
        for job in self.jobs.values():
            if (job.status == "deleted") != fetch_deleted:
                continue
            if "externalId" in filters and job.external_id != filters["externalId"]:
                continue
            if "ids" in filters and job.id not in filters["ids"].split(","):
                continue
            if "statuses" in filters and job.status not in filters["statuses"].split(","):
                continue
            if "mode" in filters and job.mode != filters["mode"]:
                continue
            out.append(job)
        return sorted(out, key=lambda j: (j.created_ms, j.id))

    def job_of_instance(self, instance_id: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.instance_id == instance_id), None)

    def job_of_step(self, step_id: str) -> Job | None:
        return next((j for j in self.jobs.values() if j.step_id == step_id), None)

    # ------------------------------------------------------------------ composition

    @staticmethod
    def _missing(template: TemplateVersion, data: Mapping[str, Any]) -> list[str]:
        return sorted(f for f in template.required_fields if not str(data.get(f) or "").strip())

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
        seed = f"{communication_id or salt}/{now_ms}/{len(self.documents)}"
        document = Document(
            document_id=f"doc-{uuid.uuid5(NAMESPACE, seed).hex[:24]}",
            pdf=rendered.pdf,
            text=rendered.text,
            template=template,
            produced_at=now_ms,
            communication_id=communication_id,
        )
        self.documents[document.document_id] = document
        return document


def _fields(customer: Customer) -> dict[str, Any]:
    return {
        "communication_id": customer.communication_id,
        "customer_id": customer.customer_id,
        "channel": customer.channel,
        "exstream_communication_id": customer.exstream_communication_id,
        "job_id": customer.job_id,
        "document_id": customer.document_id,
        "email": customer.email,
    }
