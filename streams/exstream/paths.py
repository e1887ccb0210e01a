"""Every Exstream and OTDS path the client calls, in one place (pure).

Public sources: OpenText's Communications SDK (``OtdsUriBuilder``, ``OrchestrationUriBuilder``,
``DasUriBuilder``), its Postman collection, and Exstream's Orchestration and Design OpenAPI
documents. The batch input channel path is of medium confidence (seen in public customer code);
see ``docs/exstream-emulator.md``.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

OtdsStyle = Literal["self-hosted", "cloud"]


def _seg(value: str) -> str:
    return quote(value, safe="")


def otds_token(style: OtdsStyle, tenant: str) -> str:
    """Self-hosted OTDS serves tokens under ``/otdsws``; OpenText's cloud does not."""
    prefix = "/otdsws" if style == "self-hosted" else ""
    return f"{prefix}/otdstenant/{_seg(tenant)}/oauth2/token"


def ondemand_generate(domain: str) -> str:
    return f"/orchestration/api/v1/inputs/ondemand/{_seg(domain)}/generate"


def batch_input(domain: str, service: str) -> str:
    return f"/orchestration/api/v1/inputs/batch/{_seg(domain)}/{_seg(service)}"


def jobs(domain: str) -> str:
    return f"/orchestration/api/v1/runtime/{_seg(domain)}/jobs"


def job(domain: str, job_id: str) -> str:
    return f"{jobs(domain)}/{_seg(job_id)}"


def job_stop(domain: str, job_id: str) -> str:
    return f"{job(domain, job_id)}/stop"


def flow_instances(domain: str) -> str:
    return f"/orchestration/api/v1/runtime/{_seg(domain)}/flow-instances"


def flow_steps(domain: str) -> str:
    return f"/orchestration/api/v1/runtime/{_seg(domain)}/flow-steps"


def delivery_outputs(domain: str, step_id: str) -> str:
    return f"{flow_steps(domain)}/{_seg(step_id)}/delivery-file/outputs"


def customer_artifacts(domain: str, step_id: str, customer_id: str) -> str:
    return f"{flow_steps(domain)}/{_seg(step_id)}/customer-artifacts/{_seg(customer_id)}"


def resources(domain: str) -> str:
    return f"/design/api/v1/resources/{_seg(domain)}"


def resource_content(domain: str, resource_id: str) -> str:
    return f"{resources(domain)}/{_seg(resource_id)}/content"


def links(domain: str) -> str:
    return f"/design/api/v1/links/{_seg(domain)}"


def communication_set_manifest(domain: str, set_id: str) -> str:
    return f"/design/api/v1/manifests/{_seg(domain)}/communication-set/{_seg(set_id)}"


def runtime_filter(**pairs: str | None) -> str:
    """The runtime API's ``filter`` value: ``key:value`` pairs joined by ``;`` (values of a list
    separated by commas), pairs with no value left out."""
    return ";".join(f"{k}:{v}" for k, v in pairs.items() if v)
