"""The routing worker's running totals, logged periodically (the handlers' counter protocols
are satisfied by :class:`Counters`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Counters:
    """What the worker did since it started (logged periodically)."""

    events: int = 0
    commands: int = 0
    suppressed: int = 0
    alerts: int = 0
    dead_letters: int = 0
    audit_written: int = 0
    preferences: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        rate = self.events / max(time.monotonic() - self.started, 1e-9)
        return (
            f"events={self.events} ({rate:.0f}/s) commands={self.commands} "
            f"suppressed={self.suppressed} alerts={self.alerts} "
            f"dead_letters={self.dead_letters} audit={self.audit_written} "
            f"preferences={self.preferences}"
        )
