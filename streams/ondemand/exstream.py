"""Exstream's synchronous generation as the on-demand service uses it (through
:mod:`streams.exstream`, the project's one Exstream client).

``compose`` runs the template's Exstream communication on the customer's driver data
(``communicationId`` and ``driverDataSource`` from the template record, ``Accept:
application/pdf``) and returns the PDF with what the service records about it. Exstream's public
on-demand answer is the document alone: the document id is the service's own
(``ondemand-<request id>``), the template version the one the service resolved (Exstream runs
the communication's latest approved version, which the template sync publishes as the only
usable one).

Every failure is one :class:`ExstreamFailure` whose ``kind`` says what the portal is told:
``unavailable`` (429, 503, connection refused: 503 with ``Retry-After``), ``timeout`` (504 or a
client timeout: 504), ``error`` (other 5xx, token failures: 502) and ``rejected`` (other 4xx, or
a template with no Exstream communication: 502, the local template view and Exstream disagree).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.domain.records import TemplateVersion
from streams.errors import AirExstreamError
from streams.exstream.client import ExstreamClient
from streams.exstream.driver import ondemand_record
from streams.exstream.errors import (
    ExstreamError,
    ExstreamThrottled,
    ExstreamTimeout,
    ExstreamUnavailable,
)

DEFAULT_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class Rendered:
    document_id: str
    template_id: str
    template_version: int
    produced_at: int
    pdf: bytes


class ExstreamFailure(AirExstreamError):
    """``retriable`` when the portal may ask again shortly (``unavailable``, ``timeout``)."""

    def __init__(
        self, kind: str, detail: str, *, status: int | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(detail, retriable=kind in ("unavailable", "timeout"))
        self.kind = kind
        self.detail = detail
        self.status = status
        self.retry_after_s = retry_after_s


def failure_of(error: ExstreamError) -> ExstreamFailure:
    after = int(error.retry_after_s) if error.retry_after_s else DEFAULT_RETRY_AFTER_S
    if isinstance(error, ExstreamThrottled) or (
        isinstance(error, ExstreamUnavailable) and (error.status in (None, 503))
    ):
        return ExstreamFailure("unavailable", str(error), status=error.status, retry_after_s=after)
    if isinstance(error, ExstreamTimeout):
        return ExstreamFailure("timeout", str(error), status=error.status)
    if error.retriable or error.status is None:
        return ExstreamFailure("error", str(error), status=error.status)
    return ExstreamFailure("rejected", str(error), status=error.status)


class OnDemandClient:
    def __init__(self, client: ExstreamClient) -> None:
        self.client = client

    async def compose(
        self,
        *,
        request_id: str,
        customer_id: str,
        template: TemplateVersion,
        channel: str,
        data: dict[str, str],
        now_ms: int,
    ) -> Rendered:
        if not template.exstream_communication_id or not template.driver_data_source:
            raise ExstreamFailure(
                "rejected",
                f"template {template.template_id} v{template.version} ({template.language}) has "
                "no Exstream communication on exstream.templates.v1 (is the template sync "
                "running?)",
            )
        driver = ondemand_record(
            request_id=request_id,
            customer_id=customer_id,
            template_id=template.template_id,
            version=template.version,
            language=template.language,
            channel=channel,
            data=data,
        )
        try:
            pdf = await self.client.orchestration.generate_pdf(
                communication_id=template.exstream_communication_id,
                driver_data_source=template.driver_data_source,
                driver_data=driver,
            )
        except ExstreamError as exc:
            raise failure_of(exc) from exc
        return Rendered(
            document_id=f"ondemand-{request_id}",
            template_id=template.template_id,
            template_version=template.version,
            produced_at=now_ms,
            pdf=pdf,
        )
