"""Every document the emulator produced, keyed by our communication id: what tests count.

Exstream composes whatever it is sent, twice if it is sent twice; the ledger counts the
communications that got more than one document (``communications_with_more_than_one_document``),
which a client that never duplicates keeps at 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    communication_id: str
    document_id: str
    job_id: str
    template_id: str
    template_version: int
    language: str
    channel: str
    produced_at: int
    """Unix milliseconds."""


@dataclass(slots=True)
class Ledger:
    entries: list[LedgerEntry] = field(default_factory=list)
    _by_communication: dict[str, list[LedgerEntry]] = field(default_factory=dict)

    def record(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)
        self._by_communication.setdefault(entry.communication_id, []).append(entry)

    def documents_for(self, communication_id: str) -> list[LedgerEntry]:
        return list(self._by_communication.get(communication_id, ()))

    def has(self, communication_id: str) -> bool:
        return communication_id in self._by_communication

    def twice(self) -> list[str]:
        """Communication ids composed more than once."""
        return sorted(c for c, docs in self._by_communication.items() if len(docs) > 1)

    def summary(self) -> dict[str, object]:
        counts = Counter(len(v) for v in self._by_communication.values())
        return {
            "documents": len(self.entries),
            "communications": len(self._by_communication),
            "communications_with_more_than_one_document": sum(
                n for size, n in counts.items() if size > 1
            ),
            "by_channel": dict(Counter(e.channel for e in self.entries)),
        }
