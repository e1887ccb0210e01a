"""An independent reference computation of what the routing worker must emit for a dataset.

It re-derives every routing policy from its *documented* behaviour (the module docstrings of
``streams/domain``) with plain loops and dicts, and deliberately does not call the production
decision logic (``route_event``, ``matching_rules``, ``resolve_template``, ``choose_channel``,
``decide``, ``validate_event``, the alignment checks). It only uses the record dataclasses, the
catalogue's data tables (required attributes, natural keys, attribute kinds), the id format
(``communication_id``, a wire contract) and the simulator's dataset.

The end-to-end test compares the worker's output on the real broker with :func:`expected_outcome`;
``tests/e2e/test_reference.py`` cross-checks this module against the production function.

The portal's document requests (``dataset.document_requests``) are derived the same way from the
docstring of ``streams/domain/document_requests.py``, without calling ``decide_request``; their
id (``request_communication_id``) is a wire contract too.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from streams.domain.catalogue import ATTRIBUTE_KINDS, CATALOGUE, FieldKind
from streams.domain.document_requests import request_communication_id
from streams.domain.ids import communication_id
from streams.domain.records import (
    AccountEvent,
    BusinessEvent,
    CaseEvent,
    CommRule,
    CompositionCommand,
    Condition,
    DocumentRequest,
    PostalAddress,
    Preference,
    QuietHours,
    Recipient,
    TemplateVersion,
)
from streams.simulator.generator import Dataset, template_key
from topology import names

BYTE_LEVEL_KINDS = frozenset({"garbage", "truncated"})
"""Invalid kinds the publisher corrupts at byte level: the worker cannot even decode them."""

FALLBACK_LANGUAGE = "en"


@dataclass
class Expected:
    commands: dict[str, CompositionCommand] = field(default_factory=dict)
    """communication_id -> the exact command the worker must emit."""
    dead_lettered_event_ids: set[str] = field(default_factory=set)
    """Event ids of records that decode but are semantically invalid."""
    byte_level_invalid: int = 0
    """Invalid records that cannot be decoded at all (garbage, truncated)."""
    rejection_codes: dict[str, str] = field(default_factory=dict)
    """event id -> UNKNOWN_EVENT_TYPE / MISSING_FIELD / INVALID_FIELD (first failing group)."""
    suppressed: set[str] = field(default_factory=set)
    """Communication ids not emitted as duplicates of an earlier communication."""
    undeliverable: set[str] = field(default_factory=set)
    """Communication ids not emitted because no channel may be used."""
    alerts: set[str] = field(default_factory=set)
    """Communication ids that raised an alignment alert (template miss, missing fields)."""
    dead_lettered_request_ids: set[str] = field(default_factory=set)
    """Request ids of document requests that decode but are invalid."""
    request_rejection_codes: dict[str, str] = field(default_factory=dict)
    """request id -> MISSING_FIELD, UNKNOWN_DOCUMENT_TYPE, INVALID_FIELD or TEMPLATE_UNAVAILABLE."""
    byte_level_invalid_requests: int = 0
    """Document requests that cannot be decoded at all (garbage, truncated)."""
    request_retries: int = 0
    """Valid requests whose communication was already emitted (a portal retry): no command."""
    request_commands: set[str] = field(default_factory=set)
    """The communication ids (in ``commands``) of document requests."""


# --------------------------------------------------------------------------- event fields


def _present(value: str | None) -> bool:
    """catalogue/rules: a field is present when it has a non-blank value."""
    return value is not None and value.strip() != ""


def _event_fields(event: BusinessEvent) -> dict[str, str]:
    """catalogue.py: attributes, then base fields on top (base wins); unset optional base
    fields (segment, a case's outcome) are absent."""
    data = dict(event.attributes)
    data.pop("segment", None)  # a base field of every event: set below when the event has one
    data["event_type"] = event.event_type
    data["customer_id"] = event.customer_id
    data["occurred_at"] = str(event.occurred_at)
    if isinstance(event, AccountEvent):
        data["account_id"] = event.account_id
    else:
        data["case_id"] = event.case_id
        data["case_type"] = event.case_type
        data.pop("outcome", None)  # a base field of case events only
        if event.outcome is not None:
            data["outcome"] = event.outcome
    if event.segment is not None:
        data["segment"] = event.segment
    return data


# --------------------------------------------------------------------------- validation


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _has_shape(value: str, kind: FieldKind) -> bool:
    """catalogue.FieldKind: decimal, ISO date, YYYY-MM period, ISO 4217 code, integer, boolean."""
    if kind is FieldKind.DECIMAL:
        return _decimal(value) is not None
    if kind is FieldKind.CURRENCY:
        return re.fullmatch(r"[A-Z]{3}", value) is not None
    if kind is FieldKind.INTEGER:
        return re.fullmatch(r"[+-]?[0-9]+", value) is not None
    if kind is FieldKind.BOOLEAN:
        return value in ("true", "false")
    if kind is FieldKind.PERIOD:
        m = re.fullmatch(r"([0-9]{4})-([0-9]{2})", value)
        return m is not None and 1 <= int(m[2]) <= 12
    if kind is FieldKind.DATE:
        m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", value)
        if m is None:
            return False
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        if not 1 <= month <= 12:
            return False
        days = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
        return 1 <= day <= days + (month == 2 and calendar.isleap(year))
    return True  # TEXT


def _rejection(event: BusinessEvent) -> str | None:
    """catalogue.py "Validation rules": the code of the first failing group, or None."""
    spec = CATALOGUE.get(event.event_type)
    # 1. the type must be a known type of the record's kind
    if spec is None or spec.is_case != isinstance(event, CaseEvent):
        return "UNKNOWN_EVENT_TYPE"
    # 2. ids, case_type and (for types reporting one) outcome must be non-blank
    base: list[str | None] = [event.event_id, event.customer_id]
    if isinstance(event, AccountEvent):
        base.append(event.account_id)
    else:
        base += [event.case_id, event.case_type]
        if spec.outcome_required:
            base.append(event.outcome)
    if not all(_present(v) for v in base):
        return "MISSING_FIELD"
    # 3. time not negative, case_type allowed for the event type
    if event.occurred_at < 0:
        return "INVALID_FIELD"
    if isinstance(event, CaseEvent) and event.case_type not in spec.case_types:
        return "INVALID_FIELD"
    # 4. required attributes present and non-blank
    if not all(_present(event.attributes.get(name)) for name in spec.required):
        return "MISSING_FIELD"
    # 5. catalogued attributes that are present have their kind's shape
    for name in spec.required | spec.optional:
        value = event.attributes.get(name)
        if value is not None and not _has_shape(value, ATTRIBUTE_KINDS.get(name, FieldKind.TEXT)):
            return "INVALID_FIELD"
    return None


# --------------------------------------------------------------------------- rules


def _cmp(left: str, right: str) -> int:
    """rules.py: numeric when both sides are finite decimals, else by code point."""
    a, b = _decimal(left), _decimal(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def _condition_holds(c: Condition, data: Mapping[str, str]) -> bool:
    """rules.py operator table; a missing field, no value or an unknown op is false."""
    actual = data.get(c.field)
    if c.op == "EXISTS":
        wants_absent = c.value is not None and c.value.strip().lower() == "false"
        return _present(actual) != wants_absent
    if actual is None or not _present(actual):
        return False
    if c.op == "IN":
        return any(_cmp(actual, v) == 0 for v in c.values)
    if c.value is None:
        return False
    order = _cmp(actual, c.value)
    tests: dict[str, bool] = {
        "EQ": order == 0,
        "NE": order != 0,
        "GT": order > 0,
        "GTE": order >= 0,
        "LT": order < 0,
        "LTE": order <= 0,
    }
    return tests.get(c.op, False)


def _firing_rules(
    event: BusinessEvent, rules: Sequence[CommRule], data: Mapping[str, str]
) -> list[CommRule]:
    """rules.py: type, enabled, [from, to) on event time, segments, all conditions; by priority
    descending then rule id ascending."""
    fired = [
        r
        for r in rules
        if r.event_type == event.event_type
        and r.enabled
        and (r.effective_from is None or event.occurred_at >= r.effective_from)
        and (r.effective_to is None or event.occurred_at < r.effective_to)
        and (not r.segments or event.segment in r.segments)
        and all(_condition_holds(c, data) for c in r.conditions)
    ]
    return sorted(fired, key=lambda r: (-r.priority, r.rule_id))


# --------------------------------------------------------------------------- templates


def _language(language: str | None) -> str:
    """templates.py: lower-case primary subtag; blank -> fallback."""
    if language is None or not language.strip():
        return FALLBACK_LANGUAGE
    return language.strip().replace("_", "-").split("-")[0].lower()


def _template(versions: Sequence[TemplateVersion], language: str | None) -> TemplateVersion | None:
    """templates.py: highest APPROVED version in the customer's language, else in ``en``; ties by
    updated_at then content. None is a miss (missing, all retired/draft, no language)."""
    approved = [v for v in versions if v.status == "APPROVED"]
    for lang in (_language(language), FALLBACK_LANGUAGE):
        mine = [v for v in approved if _language(v.language) == lang]
        if mine:
            return max(mine, key=lambda v: (v.version, v.updated_at, repr(v)))
    return None


# --------------------------------------------------------------------------- contacts, channel


def _valid_email(email: str | None) -> bool:
    """contacts.py: <=254 chars, one @, 1-64 atext/dot local part (no leading, trailing or double
    dot), >=2 labels of letters/digits/inner hyphens (<=63), last label 2-63 letters."""
    if email is None or len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}", local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    label = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
    return (
        len(labels) >= 2
        and all(len(lb) <= 63 and label.fullmatch(lb) for lb in labels)
        and re.fullmatch(r"[A-Za-z]{2,63}", labels[-1]) is not None
    )


def _valid_phone(phone: str | None) -> bool:
    """contacts.py: E.164 after removing spaces, hyphens, dots, parentheses."""
    if phone is None:
        return False
    digits = re.sub(r"[ \-.()]", "", phone)
    return re.fullmatch(r"\+[1-9][0-9]{7,14}", digits) is not None


def _valid_address(a: PostalAddress | None) -> bool:
    """contacts.py: line1, city, postal code non-blank; code <=12 letters/digits/spaces/hyphens;
    country an upper-case alpha-2 code."""
    if a is None or not (_present(a.line1) and _present(a.city) and _present(a.postal_code)):
        return False
    code = a.postal_code.strip()
    return (
        re.fullmatch(r"[A-Za-z0-9 -]{1,12}", code) is not None
        and re.fullmatch(r"[A-Z]{2}", a.country) is not None
    )


def _quiet(q: QuietHours | None, at_ms: int) -> bool:
    """contacts.py: local hours [start, end); start > end wraps midnight; start == end none;
    uninterpretable windows (hours outside 0..24, offset beyond 18 h) are always quiet."""
    if q is None:
        return False
    if not (0 <= q.start_hour <= 24 and 0 <= q.end_hour <= 24):
        return True
    if abs(q.utc_offset_minutes) > 18 * 60:
        return True
    hour = (at_ms // 60_000 + q.utc_offset_minutes) // 60 % 24
    if q.start_hour == q.end_hour:
        return False
    if q.start_hour < q.end_hour:
        return q.start_hour <= hour < q.end_hour
    return hour >= q.start_hour or hour < q.end_hour


def _channel(
    pref: Preference | None, *, regulatory: bool, at_ms: int, allowed: Sequence[str]
) -> str | None:
    """channel.py: the first eligible channel, or None (undeliverable)."""
    if pref is None:  # row 1: nothing known about the customer
        return None

    def ok(channel: str) -> bool:  # the template renders it (no channel list: every channel)
        return not allowed or channel in allowed

    if regulatory:  # row 2: print only, whatever paperless and consents say
        return "PRINT" if _valid_address(pref.postal_address) and ok("PRINT") else None
    order = ["EMAIL", "WEB", "PUSH", "SMS"]  # row 4: paperless never prints
    if not pref.paperless:
        order.insert(0, "PRINT")  # row 3
    quiet = _quiet(pref.quiet_hours, at_ms)
    eligible = {
        "PRINT": _valid_address(pref.postal_address),
        "EMAIL": pref.email_consent and _valid_email(pref.email),
        "WEB": pref.web_consent,
        "PUSH": pref.push_consent and pref.push_registered and not quiet,
        "SMS": pref.sms_consent and _valid_phone(pref.phone) and not quiet,
    }
    return next((ch for ch in order if eligible[ch] and ok(ch)), None)


def _recipient(pref: Preference, channel: str) -> Recipient:
    """routing.py: only the contact the chosen channel needs."""
    if channel == "EMAIL":
        return Recipient(email=pref.email)
    if channel == "SMS":
        return Recipient(phone=pref.phone)
    if channel == "PRINT":
        return Recipient(postal_address=pref.postal_address)
    return Recipient()


# --------------------------------------------------------------------------- the computation


@dataclass(frozen=True)
class _Sent:
    """The last emission of one suppression key."""

    communication_id: str
    at: int


def expected_outcome(
    dataset: Dataset,
    *,
    source_topics: Callable[[BusinessEvent], str],
    request_topic: str = names.DOCUMENT_REQUESTS,
    preference_at: Callable[[BusinessEvent], Preference | None] | None = None,
) -> Expected:
    """What the worker must produce for ``dataset`` (reference data loaded before any event or
    request); ``request_topic`` is the document requests' (prefixed) topic name.
    ``preference_at``: the customer's preference in force when the event was published (the
    join is with the preference as of the event), when preferences changed between events;
    by default the last of ``dataset.preferences`` per customer."""
    out = Expected()
    # compacted reference topics: the last record per key is what the worker holds
    prefs = {p.customer_id: p for p in dataset.preferences}
    templates: dict[str, list[TemplateVersion]] = {}
    for t in {template_key(t): t for t in dataset.templates}.values():
        templates.setdefault(t.template_id, []).append(t)
    # the rules topic is keyed by rule id, so the worker holds one version per id (the last
    # published); rules.py's "only the highest version counts" then has nothing to choose from
    rules: list[CommRule] = list({r.rule_id: r for r in dataset.rules}.values())

    # suppression.py: key = customer, communication type, event type, business object, natural
    # key; the value is the last emission under that key
    sent: dict[tuple[str | None, ...], _Sent] = {}

    for sim in dataset.events:
        if sim.invalid in BYTE_LEVEL_KINDS:  # undecodable: dead-lettered without an event id
            out.byte_level_invalid += 1
            continue
        event = sim.record
        code = _rejection(event)
        if code is not None:  # routing.py step 1: a rejection and nothing else
            out.dead_lettered_event_ids.add(event.event_id)
            out.rejection_codes[event.event_id] = code
            continue

        data = _event_fields(event)
        pref = preference_at(event) if preference_at else prefs.get(event.customer_id)
        spec = CATALOGUE[event.event_type]
        business_id = event.account_id if isinstance(event, AccountEvent) else event.case_id
        here: dict[tuple[str | None, ...], _Sent] = {}  # emissions of this event (sibling rules)

        for rule in _firing_rules(event, rules, data):  # step 2
            com_id = communication_id(event.event_id, rule.rule_id)
            # step 3: template in the customer's language (fallback en); a miss is an alert
            tpl = _template(templates.get(rule.template_id, []), pref.language if pref else None)
            # step 4: every required field of the version present and non-blank, else an alert
            if tpl is None or not all(_present(data.get(f)) for f in tpl.required_fields):
                out.alerts.add(com_id)
                continue
            # step 5: a channel among the template's, or undeliverable
            channel = _channel(
                pref, regulatory=rule.regulatory, at_ms=event.occurred_at, allowed=tpl.channels
            )
            if channel is None or pref is None:
                out.undeliverable.add(com_id)
                continue
            # step 6: duplicate of another communication within the window (absolute time
            # difference; a window <= 0 disables it; the own id is a replay, not a duplicate)
            key = (
                event.customer_id,
                rule.communication_type,
                event.event_type,
                business_id,
                *(data.get(name) for name in spec.natural_key),
            )
            previous = here.get(key, sent.get(key))
            window = rule.suppression_window_ms
            if (
                previous is not None
                and previous.communication_id != com_id
                and window > 0
                and abs(event.occurred_at - previous.at) < window
            ):
                out.suppressed.add(com_id)
                continue
            # step 7: the command; the stored entry only moves forward in time
            emitted = _Sent(com_id, event.occurred_at)
            here[key] = emitted
            if previous is None or (
                previous.communication_id != com_id and event.occurred_at >= previous.at
            ):
                sent[key] = emitted
            out.commands[com_id] = CompositionCommand(
                communication_id=com_id,
                source_event_id=event.event_id,
                source_topic=source_topics(event),
                event_type=event.event_type,
                rule_id=rule.rule_id,
                rule_version=rule.version,
                customer_id=event.customer_id,
                account_id=event.account_id if isinstance(event, AccountEvent) else None,
                case_id=event.case_id if isinstance(event, CaseEvent) else None,
                communication_type=rule.communication_type,
                template_id=tpl.template_id,
                template_version=tpl.version,
                language=tpl.language,
                channel=channel,
                recipient=_recipient(pref, channel),
                data=dict(sorted(data.items())),
                regulatory=rule.regulatory,
                disclaimer_id=tpl.disclaimer_id,
                disclaimer_version=tpl.disclaimer_version,
                created_at=event.occurred_at,
            )
    _expected_requests(dataset, templates, request_topic, out)
    return out


# --------------------------------------------------------------------------- document requests

REQUEST_TEMPLATES = {
    "POLICY_COPY": ("tpl-renewal-notice", "policy_number"),
    "INVOICE": ("tpl-billing-statement", None),
    "CONFIRMATION_LETTER": ("tpl-service-change", "service_id"),
    "ACCOUNT_SUMMARY": ("tpl-account-status", None),
}
"""document_requests.py's table: document type -> (template, field reference_id fills)."""


def _request_rejection(
    r: DocumentRequest, templates: Mapping[str, Sequence[TemplateVersion]]
) -> tuple[str | None, dict[str, str], TemplateVersion | None]:
    """document_requests.py "Validation": (code of the first failing step or None, the
    template's data, the template version)."""
    # 1. ids, type and reference non-blank
    if not all(_present(v) for v in (r.request_id, r.customer_id, r.document_type, r.reference_id)):
        return "MISSING_FIELD", {}, None
    # 2. a known document type
    if r.document_type not in REQUEST_TEMPLATES:
        return "UNKNOWN_DOCUMENT_TYPE", {}, None
    template_id, identifying = REQUEST_TEMPLATES[r.document_type]
    # 3. shapes and bounds of the request's own fields
    text_ok = all(
        len(v) <= 256 and re.search(r"[\x00-\x1f\x7f]", v) is None
        for v in (r.request_id, r.reference_id, *r.fields.values())
    )
    fixed = {"customer_id": r.customer_id} | ({identifying: r.reference_id} if identifying else {})
    if (
        not text_ok
        or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", r.customer_id) is None
        or (
            r.language is not None
            and re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*", r.language) is None
        )
        or r.delivery not in ("DOWNLOAD", "SECURE_URL")
        or r.requested_at < 0
        or len(r.fields) > 32
        or any(re.fullmatch(r"[a-z][a-z0-9_]{0,63}", n) is None for n in r.fields)
        or any(n in r.fields and r.fields[n] != v for n, v in fixed.items())
    ):
        return "INVALID_FIELD", {}, None
    # 4. the template in the request's language, else en (no channel restriction)
    tpl = _template(templates.get(template_id, []), r.language)
    if tpl is None:
        return "TEMPLATE_UNAVAILABLE", {}, None
    # 5. customer_id, reference_id, the identifying field, then the required fields given
    data = {**fixed, "reference_id": r.reference_id}
    for name in tpl.required_fields:
        if name not in data and _present(r.fields.get(name)):
            data[name] = r.fields[name]
    if not all(_present(data.get(name)) for name in tpl.required_fields):
        return "MISSING_FIELD", data, tpl
    if not all(_has_shape(v, ATTRIBUTE_KINDS.get(n, FieldKind.TEXT)) for n, v in data.items()):
        return "INVALID_FIELD", data, tpl
    return None, data, tpl


def _expected_requests(
    dataset: Dataset,
    templates: Mapping[str, Sequence[TemplateVersion]],
    topic: str,
    out: Expected,
) -> None:
    """document_requests.py: one WEB command per request id (a retry emits nothing), no
    preferences, no suppression."""
    for sim in dataset.document_requests:
        if sim.invalid in BYTE_LEVEL_KINDS:
            out.byte_level_invalid_requests += 1
            continue
        r = sim.record
        code, data, tpl = _request_rejection(r, templates)
        if code is not None or tpl is None:
            out.dead_lettered_request_ids.add(r.request_id)
            out.request_rejection_codes[r.request_id] = code or "?"
            continue
        com_id = request_communication_id(r.customer_id, r.request_id)
        if com_id in out.commands:
            out.request_retries += 1
            continue
        out.request_commands.add(com_id)
        out.commands[com_id] = CompositionCommand(
            communication_id=com_id,
            source_event_id=r.request_id,
            source_topic=topic,
            event_type="DOCUMENT_REQUESTED",
            rule_id="portal-document-request",
            rule_version=0,
            customer_id=r.customer_id,
            communication_type=r.document_type,
            template_id=tpl.template_id,
            template_version=tpl.version,
            language=tpl.language,
            channel="WEB",
            recipient=Recipient(),
            data=dict(sorted(data.items())),
            regulatory=False,
            disclaimer_id=tpl.disclaimer_id,
            disclaimer_version=tpl.disclaimer_version,
            created_at=r.requested_at,
        )
