"""When the open transaction is committed (pure: no Kafka).

A transaction is committed when ``max_batch`` records were handled in it, when it has been open
for ``commit_interval_ms`` while records flow, and at once when nothing is left to handle (a
record waited for, nothing buffered): a quiet input never holds handled records uncommitted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitPolicy:
    max_batch: int
    commit_interval_ms: int

    def due(self, *, handled: int, open_ms: float, nothing_left: bool) -> bool:
        """Whether a transaction with ``handled`` records, open for ``open_ms``, is committed
        now (a transaction with nothing handled is never due: there is nothing to commit)."""
        if handled <= 0:
            return False
        return nothing_left or handled >= self.max_batch or open_ms >= self.commit_interval_ms
