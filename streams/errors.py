"""The root of every error the project raises on purpose.

Each part of the system defines its own exceptions module deriving from :class:`AirExstreamError`,
so callers can catch one type at the boundary (the CLI prints ``str(exc)`` and exits non-zero) while
retry logic asks the error's flags instead of parsing messages.
"""

from __future__ import annotations


class AirExstreamError(Exception):
    """Base class of all project errors. ``str(exc)`` is written for a person.

    ``retriable`` is a class default that one error may override when it is raised
    (``KafkaWriteError(message, retriable=kafka_error.retriable())``): retry paths (the sink,
    the on-demand service, the Kafka writer's callers, the routing worker's registry wait) read
    it and never match types or messages."""

    retriable: bool = False
    """True when the same operation may succeed if tried again later."""

    def __init__(self, *args: object, retriable: bool | None = None) -> None:
        super().__init__(*args)
        if retriable is not None:
            self.retriable = retriable
