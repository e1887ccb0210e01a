"""The routing worker's codecs, built and prepared once for either worker (the Faust one,
:mod:`.app`, and the one on the engine, :mod:`.engine_worker`)."""

from __future__ import annotations

from dataclasses import dataclass

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
