"""Exstream Orchestration: on-demand generation, batch input channel, runtime jobs and outputs.

Public sources (see ``docs/exstream-emulator.md`` for each call): OpenText's SDK
``OrchestrationService`` (on-demand generate: ``communicationId`` and ``driverDataSource``
headers, the driver data as the body, ``Accept: application/pdf`` for the raw PDF or the JSON
list of outputs), Exstream's Orchestration OpenAPI document (runtime jobs, flow instances, flow
steps, delivery files, customer artifacts, the ``filter`` syntax, job statuses), and public
customer code for the batch input channel path (medium confidence).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from streams.exstream import paths
from streams.exstream.driver import DRIVER_CONTENT_TYPE, external_id_header
from streams.exstream.errors import ExstreamError
from streams.exstream.settings import ExstreamSettings
from streams.exstream.transport import Answer, Transport

FINISHED = frozenset({"complete", "error", "canceled", "deleted"})
"""Job statuses after which a job does no more work (the runtime API's names)."""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    status: str
    """uninitialized, started, waiting, holding, complete, error, canceled or deleted."""
    external_id: str | None = None
    mode: str | None = None
    msg: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_json(cls, raw: Any) -> Job:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ExstreamError("Exstream answered a job without an id")
        return cls(
            id=raw["id"],
            status=str(raw.get("status", "uninitialized")),
            external_id=raw.get("externalId"),
            mode=raw.get("mode"),
            msg=raw.get("msg"),
        )


@dataclass(frozen=True, slots=True)
class Output:
    """One output of an on-demand generation (the JSON answer)."""

    content: bytes
    mime_type: str
    queue_name: str | None
    file_name: str | None
    customer_number: str | None


class Orchestration:
    def __init__(self, settings: ExstreamSettings, transport: Transport) -> None:
        self._s = settings
        self._t = transport
        self._base = settings.orchestration_base

    # ------------------------------------------------------------------ on demand

    async def generate_pdf(
        self,
        *,
        communication_id: str,
        driver_data_source: str,
        driver_data: bytes,
        content_type: str = DRIVER_CONTENT_TYPE,
    ) -> bytes:
        """Run one design on one customer's driver data now; the raw PDF."""
        answer = await self._generate(
            communication_id, driver_data_source, driver_data, content_type, "application/pdf"
        )
        return answer.body

    async def generate_outputs(
        self,
        *,
        communication_id: str,
        driver_data_source: str,
        driver_data: bytes,
        content_type: str = DRIVER_CONTENT_TYPE,
    ) -> list[Output]:
        """Run one design now; every output it produced (the JSON envelope)."""
        answer = await self._generate(
            communication_id, driver_data_source, driver_data, content_type, "application/json"
        )
        body = answer.json(what="on-demand generation")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise ExstreamError("Exstream answered on-demand generation without a data list")
        outputs = []
        for item in data:
            context = item.get("engineOutputContext") or {}
            try:
                content = base64.b64decode(str(item.get("content", "")), validate=True)
            except ValueError as exc:
                raise ExstreamError("an on-demand output is not base64") from exc
            outputs.append(
                Output(
                    content=content,
                    mime_type=str(item.get("mimeType", "")),
                    queue_name=context.get("queueName"),
                    file_name=context.get("fileName"),
                    customer_number=context.get("customerNumber"),
                )
            )
        return outputs

    async def _generate(
        self, communication_id: str, dsn: str, data: bytes, content_type: str, accept: str
    ) -> Answer:
        return await self._t.request(
            "POST",
            self._base + paths.ondemand_generate(self._s.domain),
            what="on-demand generation",
            headers={
                "communicationId": communication_id,
                "driverDataSource": dsn,
                "Content-Type": content_type,
                "Accept": accept,
            },
            data=data,
        )

    # ------------------------------------------------------------------ batch

    async def submit_batch(
        self, driver_file: bytes, *, external_id: str, content_type: str = DRIVER_CONTENT_TYPE
    ) -> str:
        """Post a multi-customer driver file to the batch input channel; the job id.

        ``external_id`` (our batch id) becomes the job's external id, so that
        :meth:`jobs_by_external_id` finds the job after a crash or an ambiguous failure."""
        answer = await self._t.request(
            "POST",
            self._base + paths.batch_input(self._s.domain, self._s.batch_service),
            what="batch submission",
            headers={"Content-Type": content_type, **external_id_header(external_id)},
            data=driver_file,
        )
        body = answer.json(what="batch submission")
        try:
            return str(body["data"][0]["jobId"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ExstreamError("Exstream accepted a batch without naming its job") from exc

    # ------------------------------------------------------------------ jobs

    async def job(self, job_id: str) -> Job:
        answer = await self._t.request(
            "GET", self._base + paths.job(self._s.domain, job_id), what="job lookup"
        )
        return Job.from_json(_data(answer.json(what="job lookup")))

    async def jobs_by_external_id(self, external_id: str) -> list[Job]:
        """Every job whose external id is ``external_id`` (deleted ones excluded)."""
        return [
            Job.from_json(j)
            for j in await self._page(
                paths.jobs(self._s.domain),
                paths.runtime_filter(externalId=external_id),
                what="job search",
            )
        ]

    async def stop(self, job_id: str) -> None:
        await self._t.request(
            "POST", self._base + paths.job_stop(self._s.domain, job_id), what="job stop"
        )

    async def delete(self, job_id: str) -> None:
        """Delete a finished job (Exstream refuses a running one with 409)."""
        await self._t.request(
            "DELETE", self._base + paths.job(self._s.domain, job_id), what="job deletion"
        )

    # ------------------------------------------------------------------ outputs

    async def output_steps(self, job_id: str) -> list[dict[str, Any]]:
        """The output flow steps of a job (job -> flow instances -> output steps)."""
        steps: list[dict[str, Any]] = []
        instances = await self._page(
            paths.flow_instances(self._s.domain),
            paths.runtime_filter(jobId=job_id),
            what="flow instances",
        )
        for instance in instances:
            steps += await self._page(
                paths.flow_steps(self._s.domain),
                paths.runtime_filter(flowInstanceId=str(instance["id"]), stepTypes="output"),
                what="flow steps",
            )
        return steps

    async def delivery_outputs(self, step_id: str) -> Any:
        """The outputs of an output step's delivery file (per-customer results)."""
        answer = await self._t.request(
            "GET",
            self._base + paths.delivery_outputs(self._s.domain, step_id),
            what="delivery outputs",
        )
        return _data(answer.json(what="delivery outputs"))

    async def customer_artifacts(self, step_id: str, customer_id: str) -> bytes:
        """One customer's outputs of a step (a zip archive)."""
        answer = await self._t.request(
            "GET",
            self._base + paths.customer_artifacts(self._s.domain, step_id, customer_id),
            what="customer artifacts",
        )
        return answer.body

    async def _page(self, path: str, filter_value: str, *, what: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset, count = 0, 100
        while True:
            answer = await self._t.request(
                "GET",
                self._base + path,
                what=what,
                params={"filter": filter_value, "offset": str(offset), "count": str(count)},
            )
            body = answer.json(what=what)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise ExstreamError(f"Exstream answered {what} without a data list")
            out += [d for d in data if isinstance(d, dict)]
            total = (body.get("page") or {}).get("totalElements")
            offset += len(data)
            if not data or not isinstance(total, int) or offset >= total:
                return out


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise ExstreamError("Exstream answered without a data field")
    return body["data"]
