"""The engine's errors (all :class:`~streams.errors.AirExstreamError`)."""

from __future__ import annotations

from streams.errors import AirExstreamError


class EngineError(AirExstreamError):
    """The engine stopped: a Kafka error, a restore that did not finish, a misuse."""


class HandlerFailed(EngineError):
    """A handler or timer raised: its transaction was aborted and the engine stopped (the
    handler's exception is the ``__cause__``)."""


class RestoreTimeout(EngineError):
    """A store's changelog partitions were not read to their ends within the restore timeout."""

    retriable = True


class NotInTransaction(EngineError):
    """A send or put outside a handler or timer (no transaction is open)."""


class PartitionNotHeld(EngineError):
    """A put into a store partition this process does not hold (not assigned or not restored)."""
