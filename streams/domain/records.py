"""Plain records of the domain: what flows on the topics, independent of encoding.

These frozen dataclasses are the single source of truth for record shapes. The Avro schemas in
``schemas/`` mirror them field for field (``streams.codec`` converts between the two), and the pure
decision logic works on them without any Kafka import.

Conventions:
- timestamps are integers in milliseconds since the Unix epoch (UTC), taken from the business event
  wherever possible so that replays produce identical output;
- identifiers are strings; a missing optional value is ``None``, never an empty string;
- ``attributes`` / ``data`` maps carry business fields as strings (amounts as decimal strings).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

# --------------------------------------------------------------------------- enumerations


class Channel(StrEnum):
    """How a communication reaches the customer."""

    PRINT = "PRINT"
    EMAIL = "EMAIL"
    WEB = "WEB"
    SMS = "SMS"
    PUSH = "PUSH"


class AccountEventType(StrEnum):
    """Business events from Air Inc.'s billing, policy and account systems (flow 1)."""

    BILLING_CYCLE_CLOSED = "BILLING_CYCLE_CLOSED"
    POLICY_RENEWED = "POLICY_RENEWED"
    SERVICE_CHANGED = "SERVICE_CHANGED"
    ACCOUNT_STATUS_CHANGED = "ACCOUNT_STATUS_CHANGED"


class CaseEventType(StrEnum):
    """Case, claim, service-request and dispute events (flow 2)."""

    CLAIM_SUBMITTED = "CLAIM_SUBMITTED"
    CLAIM_DECIDED = "CLAIM_DECIDED"
    SERVICE_REQUEST_COMPLETED = "SERVICE_REQUEST_COMPLETED"
    DISPUTE_OPENED = "DISPUTE_OPENED"
    DISPUTE_RESOLVED = "DISPUTE_RESOLVED"
    CASE_ESCALATED = "CASE_ESCALATED"


class TemplateStatus(StrEnum):
    DRAFT = "DRAFT"
    APPROVED = "APPROVED"
    RETIRED = "RETIRED"


class DocumentType(StrEnum):
    """What the portal can ask for on demand (flow 5)."""

    POLICY_COPY = "POLICY_COPY"
    INVOICE = "INVOICE"
    CONFIRMATION_LETTER = "CONFIRMATION_LETTER"
    ACCOUNT_SUMMARY = "ACCOUNT_SUMMARY"


class DeliveryStatus(StrEnum):
    """Lifecycle events Exstream reports for one communication (flow 3)."""

    ACCEPTED = "ACCEPTED"
    COMPOSED = "COMPOSED"
    PRINTED = "PRINTED"
    MAILED = "MAILED"
    EMAIL_SENT = "EMAIL_SENT"
    EMAIL_DELIVERED = "EMAIL_DELIVERED"
    EMAIL_OPENED = "EMAIL_OPENED"
    EMAIL_BOUNCED = "EMAIL_BOUNCED"
    WEB_POSTED = "WEB_POSTED"
    SMS_DELIVERED = "SMS_DELIVERED"
    PUSH_DELIVERED = "PUSH_DELIVERED"
    FAILED = "FAILED"


class AuditKind(StrEnum):
    COMMAND_EMITTED = "COMMAND_EMITTED"
    SUPPRESSED = "SUPPRESSED"
    ALIGNMENT_ALERT = "ALIGNMENT_ALERT"
    DEAD_LETTER = "DEAD_LETTER"
    SUBMITTED = "SUBMITTED"
    STATUS_CHANGED = "STATUS_CHANGED"
    DOCUMENT_PRODUCED = "DOCUMENT_PRODUCED"


class AlertKind(StrEnum):
    """Why a rule and a template do not line up (flow 6)."""

    MISSING_TEMPLATE = "MISSING_TEMPLATE"
    RETIRED_TEMPLATE = "RETIRED_TEMPLATE"
    MISSING_FIELDS = "MISSING_FIELDS"
    DISCLAIMER_CHANGED = "DISCLAIMER_CHANGED"
    REGULATORY_TEXT_CHANGED = "REGULATORY_TEXT_CHANGED"


class ConditionOp(StrEnum):
    EQ = "EQ"
    NE = "NE"
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    IN = "IN"
    EXISTS = "EXISTS"


# --------------------------------------------------------------------------- inputs from Air Inc.


@dataclass(frozen=True, slots=True, kw_only=True)
class PostalAddress:
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str
    """ISO 3166-1 alpha-2 country code."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountEvent:
    """``air.account-events.v1``, keyed by customer id."""

    event_id: str
    event_type: str
    """One of :class:`AccountEventType`; anything else is dead-lettered as unknown."""
    customer_id: str
    account_id: str
    segment: str | None = None
    occurred_at: int
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseEvent:
    """``air.case-events.v1``, keyed by customer id."""

    event_id: str
    event_type: str
    """One of :class:`CaseEventType`; anything else is dead-lettered as unknown."""
    customer_id: str
    case_id: str
    case_type: str
    """CLAIM, SERVICE_REQUEST, DISPUTE or COMPLAINT."""
    outcome: str | None = None
    segment: str | None = None
    occurred_at: int
    attributes: dict[str, str] = field(default_factory=dict)


BusinessEvent = AccountEvent | CaseEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietHours:
    """Local hours [start, end) during which mobile channels must not be used."""

    start_hour: int
    end_hour: int
    utc_offset_minutes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Preference:
    """``air.preferences.v1`` (compacted), keyed by customer id. A tombstone deletes it."""

    customer_id: str
    language: str
    """ISO 639-1 code, e.g. ``en``."""
    paperless: bool = False
    email_consent: bool = False
    sms_consent: bool = False
    push_consent: bool = False
    web_consent: bool = False
    email: str | None = None
    phone: str | None = None
    push_registered: bool = False
    postal_address: PostalAddress | None = None
    quiet_hours: QuietHours | None = None
    updated_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One predicate on an event field.

    ``field`` is ``event_type``, ``segment``, ``outcome``, ``case_type`` or an attribute name.
    Values compare numerically when both sides parse as numbers."""

    field: str
    op: str
    """One of :class:`ConditionOp`."""
    value: str | None = None
    # the attribute named ``field`` shadows dataclasses.field inside this class body
    values: list[str] = dataclasses.field(default_factory=list)
    """Candidates for ``IN``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommRule:
    """``air.comm-rules.v1`` (compacted), keyed by rule id. Air Inc. owns these."""

    rule_id: str
    version: int
    enabled: bool = True
    event_type: str
    conditions: list[Condition] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    """Customer segments the rule applies to; empty means all."""
    communication_type: str
    template_id: str
    priority: int = 0
    """Higher fires first; commands of one event are emitted in descending priority."""
    regulatory: bool = False
    """Regulatory documents always go by print, whatever the preferences say."""
    effective_from: int | None = None
    effective_to: int | None = None
    suppression_window_ms: int = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRequest:
    """``air.document-requests.v1``, keyed by customer id: the portal asks for a document now
    (flow 5, the asynchronous path; the routing worker decides it with
    :func:`streams.domain.document_requests.decide_request`)."""

    request_id: str
    customer_id: str
    document_type: str
    reference_id: str
    """Policy number, invoice id, ... depending on the document type."""
    language: str | None = None
    delivery: str = "DOWNLOAD"
    """DOWNLOAD (bytes) or SECURE_URL (signed, expiring link)."""
    requested_at: int
    fields: dict[str, str] = field(default_factory=dict)
    """The template's data, named after its ``required_fields`` (schema release 2; absent in
    older records, read as empty). ``customer_id`` comes from the request and the template's
    identifying field from ``reference_id`` (see :mod:`streams.domain.document_requests`)."""


# --------------------------------------------------------------------------- inputs from Exstream


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateVersion:
    """``exstream.templates.v1`` (compacted), keyed by ``template_id/version/language``."""

    template_id: str
    version: int
    language: str
    status: str
    """One of :class:`TemplateStatus`. Only APPROVED versions are ever used."""
    communication_type: str
    required_fields: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    """Channels the template can render for; empty means all."""
    disclaimer_id: str | None = None
    disclaimer_version: int | None = None
    regulatory_text_version: int | None = None
    body: str = ""
    """The template's text with ``{field}`` placeholders (rendered by Exstream)."""
    exstream_communication_id: str | None = None
    """Exstream's communication (design) id for this template in this language, set by the
    template sync (schema release 3): what the Exstream client runs."""
    driver_data_source: str | None = None
    """The design's driver data source (``prodDsn``), set by the template sync (release 3)."""
    updated_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEvent:
    """``exstream.delivery-events.v1``, keyed by customer id."""

    event_id: str
    communication_id: str
    customer_id: str
    job_id: str | None = None
    document_id: str | None = None
    channel: str
    status: str
    """One of :class:`DeliveryStatus`."""
    occurred_at: int
    bounce_type: str | None = None
    exception_code: str | None = None
    exception_text: str | None = None


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    """Where the document goes. Personal data: never logged."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: PostalAddress | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompositionCommand:
    """``exstream.composition-commands.v1``, keyed by customer id: one document to compose."""

    communication_id: str
    """Deterministic: hash of source event id and rule id, so replays create no duplicates."""
    source_event_id: str
    source_topic: str
    event_type: str
    rule_id: str
    rule_version: int
    customer_id: str
    account_id: str | None = None
    case_id: str | None = None
    communication_type: str
    template_id: str
    template_version: int
    language: str
    channel: str
    recipient: Recipient
    data: dict[str, str] = field(default_factory=dict)
    regulatory: bool = False
    disclaimer_id: str | None = None
    disclaimer_version: int | None = None
    created_at: int
    """The source event's time, so identical inputs give identical commands."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignmentAlert:
    """``alignment.alerts.v1``, keyed by rule id (or template id), read by both sides."""

    alert_id: str
    kind: str
    """One of :class:`AlertKind`."""
    rule_id: str | None = None
    template_id: str
    template_version: int | None = None
    event_type: str | None = None
    missing_fields: list[str] = field(default_factory=list)
    message: str
    raised_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CommunicationStatus:
    """``air.communication-status.v1``, keyed by customer id (flow 3)."""

    communication_id: str
    customer_id: str
    case_id: str | None = None
    source_event_id: str | None = None
    channel: str
    status: str
    previous_status: str | None = None
    fallback_of: str | None = None
    """Communication id this one replaces (e.g. print after an email bounce)."""
    exception_code: str | None = None
    exception_text: str | None = None
    updated_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentMetadata:
    """``air.document-metadata.v1``, keyed by customer id (flow 7)."""

    document_id: str
    communication_id: str
    customer_id: str
    account_id: str | None = None
    case_id: str | None = None
    template_id: str
    template_version: int
    communication_type: str
    channel: str
    language: str
    origin: str
    """STREAM (from a business event) or ON_DEMAND (portal request)."""
    produced_at: int
    delivered_at: int | None = None
    archive_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """``audit.communications.v1`` (append-only, hash-chained per partition), keyed by customer id.

    ``details`` never holds personal data (no address, email or phone)."""

    audit_id: str
    kind: str
    """One of :class:`AuditKind`."""
    customer_id: str | None = None
    case_id: str | None = None
    communication_id: str | None = None
    source_event_id: str | None = None
    occurred_at: int
    summary: str
    details: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    """Position in this partition's chain, starting at 1 (0 until the audit writer chains it)."""
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """Dead-letter topics (``<source>.dlq``): the original bytes plus why they were rejected."""

    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    """For a person: what was wrong and what to fix."""
    error_type: str
    """For a machine: a stable code such as ``DECODE_ERROR`` or ``UNKNOWN_EVENT_TYPE``."""
    original_key: bytes | None = None
    original_value: bytes | None = None
    original_headers: dict[str, str] = field(default_factory=dict)
    failed_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """``exstream.submissions.v1``, keyed by customer id: the Exstream job of a communication."""

    communication_id: str
    customer_id: str
    job_id: str
    correlation_id: str
    """The sink's id for the batch (source topic, partition and offset range)."""
    outcome: str
    """``accepted`` (new in this job) or ``duplicate`` (Exstream already had it)."""
    source_partition: int
    source_offset: int
    submitted_at: int
