"""Document types the portal may ask for, and how one request is validated and resolved (pure).

Mapping of document types onto the templates Exstream publishes (``exstream.templates.v1``). The
catalogue has no template dedicated to on-demand copies, so each type uses the closest template
that carries the data of that document:

===================  ========================  =====================================================
URL segment          template                  why
===================  ========================  =====================================================
policy-copy          ``tpl-renewal-notice``    the policy document (number, renewal date, premium)
invoice              ``tpl-billing-statement`` the billing statement is the invoice
confirmation-letter  ``tpl-service-change``    confirms a change of service (id, change, date)
account-summary      ``tpl-account-status``    the account's status (previous/new status, date)
===================  ========================  =====================================================

Resolution is :func:`streams.domain.templates.resolve_template`, the very function the routing
agents use: the highest APPROVED version in the customer's language, else in ``en``. The
template's channel restriction is *not* applied: a portal download is a copy handed to the
authenticated customer, not a dispatch over a channel (``tpl-renewal-notice`` is a regulatory,
print-only template, and its copy must still be downloadable). The driver data says
``channel=WEB`` and the metadata record says ``WEB``.

The data the template needs comes from query parameters named after the template's
``required_fields``; ``customer_id`` always comes from the path. Parameters the resolved version
does not need are not forwarded to Exstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from streams.domain.document_requests import (
    MAX_VALUE_CHARS,
    REQUEST_CHANNEL,
    TEMPLATE_OF,
    unusable_text,
    valid_customer_id,
    valid_field_name,
    valid_language,
)
from streams.domain.records import DocumentType, TemplateVersion
from streams.domain.templates import TemplateMiss, resolve_template
from streams.errors import AirExstreamError

ONDEMAND_CHANNEL = REQUEST_CHANNEL.value

RESERVED_PARAMS = frozenset({"language", "delivery"})
MAX_PARAMS = 32
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class Delivery(StrEnum):
    DOWNLOAD = "DOWNLOAD"
    """The PDF bytes in the answer."""
    SECURE_URL = "SECURE_URL"
    """A signed, expiring URL to fetch the PDF from (``?delivery=url``)."""


class InvalidRequest(AirExstreamError, ValueError):
    """The request cannot be served as asked; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, title: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = dict(extra)


def document_type_from_slug(slug: str) -> DocumentType:
    """``policy-copy`` -> ``POLICY_COPY``; 404 for anything that is not a known type."""
    name = slug.strip().upper().replace("-", "_")
    try:
        return DocumentType(name)
    except ValueError:
        known = ", ".join(slug_of(t) for t in DocumentType)
        raise InvalidRequest(
            404, "Unknown document type", f"unknown document type; one of: {known}"
        ) from None


def slug_of(document_type: DocumentType) -> str:
    return document_type.value.lower().replace("_", "-")


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentOrder:
    """A validated request, resolved to one template version: what to ask Exstream for."""

    customer_id: str
    document_type: DocumentType
    template: TemplateVersion
    language_asked: str | None
    delivery: Delivery
    data: dict[str, str] = field(default_factory=dict)


def parse_delivery(value: str | None) -> Delivery:
    if value is None or value.lower() in ("", "download", "pdf"):
        return Delivery.DOWNLOAD
    if value.lower() in ("url", "secure_url", "secure-url"):
        return Delivery.SECURE_URL
    raise InvalidRequest(400, "Invalid delivery", "delivery must be 'download' or 'url'")


def order_document(
    templates: list[TemplateVersion],
    *,
    customer_id: str,
    document_slug: str,
    params: Mapping[str, str],
) -> DocumentOrder:
    """Validate one request and resolve its template version, or raise :class:`InvalidRequest`.

    Order of checks: customer id (400), document type (404), parameters (400), template
    resolution (422 with the miss code), required data (422 listing the missing field names).
    """
    if not valid_customer_id(customer_id):
        raise InvalidRequest(400, "Invalid customer id", "the customer id is malformed")
    document_type = document_type_from_slug(document_slug)
    if len(params) > MAX_PARAMS:
        raise InvalidRequest(400, "Invalid query", f"at most {MAX_PARAMS} query parameters")
    for name, value in params.items():
        if not valid_field_name(name):
            raise InvalidRequest(400, "Invalid query", "parameter names are lower_snake_case")
        if unusable_text(value):
            raise InvalidRequest(
                400,
                "Invalid query",
                f"parameter '{name}' is longer than {MAX_VALUE_CHARS} characters or holds "
                "control characters",
            )
    language = params.get("language") or None
    if language is not None and not valid_language(language):
        raise InvalidRequest(400, "Invalid language", "language must be a BCP 47 tag like 'fr'")
    delivery = parse_delivery(params.get("delivery"))
    resolved = resolve_template(
        templates, template_id=TEMPLATE_OF[document_type], language=language
    )
    if isinstance(resolved, TemplateMiss):
        raise InvalidRequest(422, "Document unavailable", resolved.reason, code=resolved.code.value)
    data = {"customer_id": customer_id}
    for name in resolved.required_fields:
        if name == "customer_id":
            continue
        value = params.get(name, "").strip()
        if value:
            data[name] = value
    missing = sorted(f for f in resolved.required_fields if not data.get(f))
    if missing:
        raise InvalidRequest(
            422,
            "Missing data",
            f"the {slug_of(document_type)} needs these query parameters: {', '.join(missing)}",
            missing=missing,
        )
    return DocumentOrder(
        customer_id=customer_id,
        document_type=document_type,
        template=resolved,
        language_asked=language,
        delivery=delivery,
        data=data,
    )


def safe_filename(document_type: DocumentType, document_id: str) -> str:
    """``invoice-doc-1a2b.pdf``: only ``[A-Za-z0-9._-]``, bounded, never a path."""
    stem = _UNSAFE_FILENAME.sub("_", f"{slug_of(document_type)}-{document_id}").strip("._")
    return f"{stem[:100] or 'document'}.pdf"
