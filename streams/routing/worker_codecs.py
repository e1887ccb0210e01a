"""The routing worker's codecs, built and prepared once (:mod:`.engine_worker` wires them), and
:func:`usable`: a decode that also refuses reference records whose content cannot be used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.codec import Codec, Codecs
from streams.domain.records import (
    AccountEvent,
    AlignmentAlert,
    AuditRecord,
    CaseEvent,
    CommRule,
    CompositionCommand,
    DeadLetter,
    Preference,
    TemplateVersion,
)
from streams.errors import AirExstreamError
from topology import names
from topology.model import Topology

DEAD_LETTERED_INPUTS = (
    names.ACCOUNT_EVENTS,
    names.CASE_EVENTS,
    names.PREFERENCES,
    names.COMM_RULES,
    names.TEMPLATES,
    names.DOCUMENT_REQUESTS,
    names.DELIVERY_EVENTS,
    names.AUDIT_INTAKE,
)
"""The inputs whose bad records the worker dead-letters (each to ``<topic>.dlq``)."""


@dataclass(frozen=True, slots=True)
class WorkerCodecs:
    rule: Codec[CommRule]
    template: Codec[TemplateVersion]
    preference: Codec[Preference]
    preference_state: Codec[Preference]
    """The preferences table's values: single-object encoding whatever the topics carry."""
    account: Codec[AccountEvent]
    case: Codec[CaseEvent]
    command: Codec[CompositionCommand]
    alert: Codec[AlignmentAlert]
    intake: Codec[AuditRecord]
    audit: Codec[AuditRecord]

    @classmethod
    def prepared(cls, codecs: Codecs, topology: Topology) -> WorkerCodecs:
        """The worker's codecs, with every codec it writes (dead letters included) prepared
        now: the schema registry is asked at start (a clear error when it does not answer), not
        in the middle of a record's transaction."""

        built = cls(
            rule=codecs.for_topic(topology.name(names.COMM_RULES), CommRule),
            template=codecs.for_topic(topology.name(names.TEMPLATES), TemplateVersion),
            preference=codecs.for_topic(topology.name(names.PREFERENCES), Preference),
            preference_state=codecs.for_state(Preference),
            account=codecs.for_topic(topology.name(names.ACCOUNT_EVENTS), AccountEvent),
            case=codecs.for_topic(topology.name(names.CASE_EVENTS), CaseEvent),
            command=codecs.for_topic(topology.name(names.COMMANDS), CompositionCommand),
            alert=codecs.for_topic(topology.name(names.ALIGNMENT_ALERTS), AlignmentAlert),
            intake=codecs.for_topic(topology.name(names.AUDIT_INTAKE), AuditRecord),
            audit=codecs.for_topic(topology.name(names.AUDIT), AuditRecord),
        )
        for written in (
            built.command,
            built.alert,
            built.intake,
            built.audit,
            built.preference_state,
        ):
            written.prepare()
        for source in DEAD_LETTERED_INPUTS:
            codecs.for_topic(names.dlq(topology.name(source)), DeadLetter).prepare()
        return built


class UnusableRecord(AirExstreamError):
    """A reference record decodes but its content is not usable (see
    :mod:`streams.domain.reference_checks`); the views skip it, the handlers dead-letter it."""


def usable(
    decode: Callable[[bytes, Any], Any], problems: Callable[[Any], list[str]]
) -> Callable[[bytes, Any], Any]:
    """``decode`` that raises :class:`UnusableRecord` for a record with problems."""

    def checked(value: bytes, headers: Any) -> Any:
        record = decode(value, headers)
        found = problems(record)
        if found:
            raise UnusableRecord("; ".join(found))
        return record

    return checked
