"""Declared (unprefixed) topic names. Resolve them through a :class:`Topology` (``topology.name``)
so that prefixed test copies of the topology work the same way."""

from __future__ import annotations

ACCOUNT_EVENTS = "air.account-events.v1"
CASE_EVENTS = "air.case-events.v1"
DOCUMENT_REQUESTS = "air.document-requests.v1"
PREFERENCES = "air.preferences.v1"
COMM_RULES = "air.comm-rules.v1"
TEMPLATES = "exstream.templates.v1"
DELIVERY_EVENTS = "exstream.delivery-events.v1"
COMMANDS = "exstream.composition-commands.v1"
SUBMISSIONS = "exstream.submissions.v1"
SINK_BATCHES = "exstream.sink-batches.v1"
COMMUNICATION_STATUS = "air.communication-status.v1"
DOCUMENT_METADATA = "air.document-metadata.v1"
AUDIT = "audit.communications.v1"
AUDIT_INTAKE = "audit.intake.v1"
AUDIT_CHECKPOINTS = "audit.checkpoints.v1"
ALIGNMENT_ALERTS = "alignment.alerts.v1"


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return topic + ".dlq"
