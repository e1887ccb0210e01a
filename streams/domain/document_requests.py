"""Document requests from the portal (flow 5, the asynchronous path): one pure decision.

The portal has two ways to ask for a document. The *synchronous* one is the on-demand HTTP
service (:mod:`streams.ondemand`), which answers with the PDF or a signed link. The
*asynchronous* one is a :class:`~streams.domain.records.DocumentRequest` on
``air.document-requests.v1``: the routing worker decides it with :func:`decide_request` and
emits a :class:`~streams.domain.records.CompositionCommand`, which the bulk sink submits to
Exstream like every other command; delivery tracking then reports the document's metadata
(origin ``ON_DEMAND``) on ``air.document-metadata.v1`` and its statuses (``WEB_POSTED``...) on
``air.communication-status.v1``, where the portal picks the document up.

**Templates.** Each document type has one template (:data:`TEMPLATE_OF`, shared with the
on-demand service). The catalogue has no template dedicated to on-demand copies, so each type
uses the closest template that carries the data of that document:

===================  ========================  ==========================================
document type        template                  identifying field (from ``reference_id``)
===================  ========================  ==========================================
POLICY_COPY          ``tpl-renewal-notice``    ``policy_number``
INVOICE              ``tpl-billing-statement`` none (the statement has no invoice number)
CONFIRMATION_LETTER  ``tpl-service-change``    ``service_id``
ACCOUNT_SUMMARY      ``tpl-account-status``    none
===================  ========================  ==========================================

Resolution is :func:`streams.domain.templates.resolve_template`, the very function routing and
the on-demand service use: the highest APPROVED version in the request's language, else in
``en``. The template's channel restriction is not applied (as in the on-demand service): a
portal copy is handed to the customer who asked, not dispatched over a channel, so a regulatory,
print-only template's copy is still produced.

**The template's data** is ``customer_id`` (from the request), the identifying field (from
``reference_id``, when the type has one) and the request's ``fields`` named after the resolved
version's ``required_fields``; ``reference_id`` itself is always passed too, so the document can
be found by it. Fields the version does not need are not forwarded, as in the on-demand service.

**Validation**, in this order; the first failure is the rejection (the dead letter's code and
reason). Reasons name fields, never their values (a value may be personal data), except an
unknown document type that looks like a code (upper-case letters, digits, underscores):

1. ``request_id``, ``customer_id``, ``document_type``, ``reference_id`` blank
   -> ``MISSING_FIELD``;
2. ``document_type`` not one of :class:`~streams.domain.records.DocumentType`
   -> ``UNKNOWN_DOCUMENT_TYPE``;
3. ``request_id`` or ``reference_id`` longer than :data:`MAX_VALUE_CHARS` or holding control
   characters; ``customer_id`` not ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}`` (the on-demand service's
   rule); ``language`` set but not a BCP 47 tag like ``fr`` or ``pt-BR`` (``None`` means
   the fallback, an empty string is invalid); ``delivery`` not ``DOWNLOAD`` or ``SECURE_URL``;
   ``requested_at`` negative; more than :data:`MAX_FIELDS` fields, a field name not
   lower_snake_case, a value too long or with control characters; ``fields`` giving
   ``customer_id`` or the identifying field a value other than the request's
   -> ``INVALID_FIELD``;
4. no usable template version (missing, only DRAFT/RETIRED, no version in the language or in
   ``en``) -> ``TEMPLATE_UNAVAILABLE``, the reason naming the resolution's miss code;
5. a required field of the resolved version missing or blank -> ``MISSING_FIELD`` naming them;
   a present field of a catalogued kind (amounts, dates, periods, currency codes: see
   :data:`streams.domain.catalogue.ATTRIBUTE_KINDS`) without that kind's shape
   -> ``INVALID_FIELD`` naming it.

**The command** (deterministic, like routing's): ``communication_id`` is
:func:`request_communication_id` (a hash of customer id and request id under the fixed marker
``document-request``), so a portal retry of the same ``request_id`` maps to the same
communication. Channel ``WEB`` (as the on-demand service tells Exstream), an empty recipient
(WEB needs no contact), ``rule_id`` :data:`REQUEST_RULE_ID` (no rule decides a request; delivery
tracking recognises the origin by it), ``event_type`` :data:`REQUEST_EVENT_TYPE`,
``communication_type`` the document type (as the on-demand metadata says), ``regulatory`` false
(a copy is not a regulatory dispatch), ``created_at`` the request's ``requested_at``. One
COMMAND_EMITTED audit record goes with it; its details hold ids, codes and names only, never the
request's field values or ``reference_id``.

**What does not apply**, on purpose: preferences (channel consent, paperless, quiet hours) and
suppression. A portal request is the customer asking for this document now, through an
authenticated session, so it is answered whatever the channel consents say, and it is answered
every time it is asked: two requests for the same invoice are two documents. Retries of one
request are not "the same communication within a window" but the same request, and the id
already recognises them: the worker emits a command once per communication id (a retry finds the
communication already tracked, see :func:`retry_audit`), and Exstream's idempotency refuses a
second document for the same id should one get through. A retry carrying different content
still maps to the first request's communication: the request id names the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from streams.domain.catalogue import ATTRIBUTE_KINDS, FieldKind, value_has_kind
from streams.domain.ids import audit_id, digest_id
from streams.domain.records import (
    AuditKind,
    AuditRecord,
    Channel,
    CompositionCommand,
    DocumentRequest,
    DocumentType,
    Recipient,
    TemplateVersion,
)
from streams.domain.templates import TemplateMiss, resolve_template

TEMPLATE_OF: dict[DocumentType, str] = {
    DocumentType.POLICY_COPY: "tpl-renewal-notice",
    DocumentType.INVOICE: "tpl-billing-statement",
    DocumentType.CONFIRMATION_LETTER: "tpl-service-change",
    DocumentType.ACCOUNT_SUMMARY: "tpl-account-status",
}
"""Which template composes each document type (see the module docstring); the on-demand HTTP
service uses the same mapping."""

IDENTIFYING_FIELD: dict[DocumentType, str | None] = {
    DocumentType.POLICY_COPY: "policy_number",
    DocumentType.INVOICE: None,
    DocumentType.CONFIRMATION_LETTER: "service_id",
    DocumentType.ACCOUNT_SUMMARY: None,
}
"""The template field ``reference_id`` fills, for the types whose template has one."""

REQUEST_CHANNEL = Channel.WEB
"""Portal documents go to the portal (the on-demand service tells Exstream the same)."""
REQUEST_RULE_ID = "portal-document-request"
"""The ``rule_id`` of every request's command: no rule decides a request."""
REQUEST_RULE_VERSION = 0
REQUEST_EVENT_TYPE = "DOCUMENT_REQUESTED"
"""The ``event_type`` of every request's command."""
ORIGIN = "ON_DEMAND"
"""Document metadata origin of a requested document (routing's documents are ``STREAM``)."""
DELIVERIES = frozenset({"DOWNLOAD", "SECURE_URL"})
MAX_FIELDS = 32
MAX_VALUE_CHARS = 256

_CUSTOMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class RequestRejectionCode(StrEnum):
    """Stable machine codes of a rejected request (the dead letter's ``error_type``)."""

    MISSING_FIELD = "MISSING_FIELD"
    UNKNOWN_DOCUMENT_TYPE = "UNKNOWN_DOCUMENT_TYPE"
    INVALID_FIELD = "INVALID_FIELD"
    TEMPLATE_UNAVAILABLE = "TEMPLATE_UNAVAILABLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejection:
    """Why a request cannot be served: ``code`` for machines, ``reason`` for a person."""

    code: RequestRejectionCode
    fields: tuple[str, ...]
    """The offending field names (``fields.<name>`` for the request's data), sorted."""
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedRequest:
    """A request that becomes a document: the command and its COMMAND_EMITTED audit record."""

    command: CompositionCommand
    audit: AuditRecord


def request_communication_id(customer_id: str, request_id: str) -> str:
    """The communication id of portal request ``request_id`` of ``customer_id``: equal for every
    retry of the request, distinct from any routed (``communication``) or on-demand HTTP
    (``ondemand``) id by its namespace, and from another customer's request with the same id."""
    return digest_id("com", "document-request", customer_id, request_id)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _reject(code: RequestRejectionCode, fields: Sequence[str], reason: str) -> RequestRejection:
    return RequestRejection(code=code, fields=tuple(sorted(fields)), reason=reason)


def unusable_text(value: str) -> bool:
    """Longer than :data:`MAX_VALUE_CHARS` or holding control characters (a request's ids and
    data, the on-demand service's query values)."""
    return len(value) > MAX_VALUE_CHARS or _CONTROL.search(value) is not None


def valid_customer_id(customer_id: str) -> bool:
    """A customer id as the portal sends it (Kafka requests and on-demand URLs alike)."""
    return _CUSTOMER_ID.fullmatch(customer_id) is not None


def valid_language(language: str) -> bool:
    """A BCP 47-like language tag such as ``fr`` or ``pt-BR``."""
    return _LANGUAGE.fullmatch(language) is not None


def valid_field_name(name: str) -> bool:
    """A template data field name: lower_snake_case, at most 64 characters."""
    return _FIELD_NAME.fullmatch(name) is not None


def _check_fields(request: DocumentRequest, identifying: str | None) -> RequestRejection | None:
    """Step 3 for the ``fields`` map: bounds, names, values, contradictions."""
    fields = request.fields
    invalid = RequestRejectionCode.INVALID_FIELD
    if len(fields) > MAX_FIELDS:
        return _reject(invalid, ["fields"], f"fields holds more than {MAX_FIELDS} entries")
    bad_names = sorted(name for name in fields if not valid_field_name(name))
    if bad_names:
        return _reject(
            invalid,
            ["fields"],
            f"{len(bad_names)} field name(s) in fields are not lower_snake_case "
            "(a letter, then letters, digits or underscores, at most 64)",
        )
    bad_values = sorted(name for name, value in fields.items() if unusable_text(value))
    if bad_values:
        return _reject(
            invalid,
            [f"fields.{name}" for name in bad_values],
            f"fields {', '.join(bad_values)}: longer than {MAX_VALUE_CHARS} characters or "
            "holding control characters",
        )
    given = {"customer_id": request.customer_id}
    if identifying is not None:
        given[identifying] = request.reference_id
    contradicting = sorted(
        name for name, value in given.items() if name in fields and fields[name] != value
    )
    if contradicting:
        sources = {"customer_id": "customer_id"} | (
            {identifying: "reference_id"} if identifying else {}
        )
        return _reject(
            invalid,
            [f"fields.{name}" for name in contradicting],
            "; ".join(
                f"fields.{name} differs from the request's {sources[name]}, which supplies it"
                for name in contradicting
            ),
        )
    return None


def validate_request(request: DocumentRequest) -> RequestRejection | None:
    """Steps 1 to 3 of the module docstring: the checks that need no template."""
    missing = [
        name
        for name, value in (
            ("request_id", request.request_id),
            ("customer_id", request.customer_id),
            ("document_type", request.document_type),
            ("reference_id", request.reference_id),
        )
        if _blank(value)
    ]
    if missing:
        return _reject(
            RequestRejectionCode.MISSING_FIELD,
            missing,
            f"the request lacks {', '.join(sorted(missing))} (blank or empty)",
        )
    try:
        document_type = DocumentType(request.document_type)
    except ValueError:
        shown = f" '{request.document_type}'" if _CODE.fullmatch(request.document_type) else ""
        known = ", ".join(t.value for t in DocumentType)
        return _reject(
            RequestRejectionCode.UNKNOWN_DOCUMENT_TYPE,
            ["document_type"],
            f"unknown document type{shown}; one of: {known}",
        )
    invalid = RequestRejectionCode.INVALID_FIELD
    for name, value in (("request_id", request.request_id), ("reference_id", request.reference_id)):
        if unusable_text(value):
            return _reject(
                invalid,
                [name],
                f"{name} is longer than {MAX_VALUE_CHARS} characters or holds control characters",
            )
    if not valid_customer_id(request.customer_id):
        return _reject(
            invalid,
            ["customer_id"],
            "customer_id is malformed: a letter or digit, then at most 63 letters, digits, "
            "dots, underscores or hyphens",
        )
    if request.language is not None and not valid_language(request.language):
        return _reject(
            invalid,
            ["language"],
            "language must be a BCP 47 tag like 'fr' or 'pt-BR' (or absent for the default)",
        )
    if request.delivery not in DELIVERIES:
        return _reject(
            invalid, ["delivery"], f"delivery must be one of: {', '.join(sorted(DELIVERIES))}"
        )
    if request.requested_at < 0:
        return _reject(invalid, ["requested_at"], "requested_at must not be negative")
    return _check_fields(request, IDENTIFYING_FIELD[document_type])


def request_data(request: DocumentRequest, template: TemplateVersion) -> dict[str, str]:
    """The template's data for a valid request (see the module docstring), sorted by name;
    a required field absent from the request is absent here."""
    document_type = DocumentType(request.document_type)
    data = {"customer_id": request.customer_id, "reference_id": request.reference_id}
    identifying = IDENTIFYING_FIELD[document_type]
    if identifying is not None:
        data[identifying] = request.reference_id
    for name in template.required_fields:
        value = request.fields.get(name)
        if name not in data and value is not None and value.strip():
            data[name] = value
    return dict(sorted(data.items()))


def decide_request(
    request: DocumentRequest,
    *,
    source_topic: str,
    templates_by_id: Mapping[str, Sequence[TemplateVersion]],
) -> AcceptedRequest | RequestRejection:
    """The command for ``request``, or why there is none (see the module docstring). Pure and
    deterministic: equal inputs give equal commands and audit records; never raises on bad
    data. ``templates_by_id`` holds every known version per template id (all statuses)."""
    rejection = validate_request(request)
    if rejection is not None:
        return rejection
    document_type = DocumentType(request.document_type)
    template_id = TEMPLATE_OF[document_type]
    resolved = resolve_template(
        templates_by_id.get(template_id, ()), template_id=template_id, language=request.language
    )
    if isinstance(resolved, TemplateMiss):
        return _reject(
            RequestRejectionCode.TEMPLATE_UNAVAILABLE,
            ["document_type"] + (["language"] if resolved.language is not None else []),
            f"no {document_type.value} can be composed ({resolved.code.value}): {resolved.reason}",
        )
    data = request_data(request, resolved)
    missing = sorted(name for name in resolved.required_fields if _blank(data.get(name)))
    if missing:
        return _reject(
            RequestRejectionCode.MISSING_FIELD,
            [f"fields.{name}" for name in missing],
            f"the {document_type.value} (template {resolved.template_id} v{resolved.version}) "
            f"needs these fields: {', '.join(missing)}",
        )
    misshapen = sorted(
        name
        for name, value in data.items()
        if not value_has_kind(value, ATTRIBUTE_KINDS.get(name, FieldKind.TEXT))
    )
    if misshapen:
        return _reject(
            RequestRejectionCode.INVALID_FIELD,
            [f"fields.{name}" for name in misshapen],
            "; ".join(
                f"fields.{name} is not a valid {ATTRIBUTE_KINDS[name].value.lower()}"
                for name in misshapen
            ),
        )
    com_id = request_communication_id(request.customer_id, request.request_id)
    command = CompositionCommand(
        communication_id=com_id,
        source_event_id=request.request_id,
        source_topic=source_topic,
        event_type=REQUEST_EVENT_TYPE,
        rule_id=REQUEST_RULE_ID,
        rule_version=REQUEST_RULE_VERSION,
        customer_id=request.customer_id,
        communication_type=document_type.value,
        template_id=resolved.template_id,
        template_version=resolved.version,
        language=resolved.language,
        channel=REQUEST_CHANNEL.value,
        recipient=Recipient(),
        data=data,
        regulatory=False,
        disclaimer_id=resolved.disclaimer_id,
        disclaimer_version=resolved.disclaimer_version,
        created_at=request.requested_at,
    )
    audit = AuditRecord(
        audit_id=audit_id(AuditKind.COMMAND_EMITTED, com_id),
        kind=AuditKind.COMMAND_EMITTED.value,
        customer_id=request.customer_id,
        communication_id=com_id,
        source_event_id=request.request_id,
        occurred_at=request.requested_at,
        summary=(
            f"portal request: {document_type.value} via {REQUEST_CHANNEL.value} from template "
            f"{resolved.template_id} v{resolved.version} ({resolved.language})"
        ),
        details={
            "channel": REQUEST_CHANNEL.value,
            "delivery": request.delivery,
            "document_type": document_type.value,
            "event_type": REQUEST_EVENT_TYPE,
            "language": resolved.language,
            "origin": ORIGIN,
            "request_id": request.request_id,
            "rule_id": REQUEST_RULE_ID,
            "source_topic": source_topic,
            "template_id": resolved.template_id,
            "template_version": str(resolved.version),
        },
    )
    return AcceptedRequest(command=command, audit=audit)


def retry_audit(request: DocumentRequest, source: str) -> AuditRecord:
    """The SUPPRESSED audit record of a retry: ``request``'s communication was already emitted,
    so no second command is. ``source`` (``topic/partition/offset`` of the retry) makes each
    retry's record distinct and a replay of the same retry's record equal."""
    com_id = request_communication_id(request.customer_id, request.request_id)
    return AuditRecord(
        audit_id=digest_id("aud", "audit", AuditKind.SUPPRESSED.value, com_id, source),
        kind=AuditKind.SUPPRESSED.value,
        customer_id=request.customer_id,
        communication_id=com_id,
        source_event_id=request.request_id,
        occurred_at=request.requested_at,
        summary="portal request retried: its document was already requested",
        details={
            "cause": "RETRY",
            "origin": ORIGIN,
            "request_id": request.request_id,
            "rule_id": REQUEST_RULE_ID,
            "source": source,
        },
    )
