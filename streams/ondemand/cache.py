"""A bounded LRU of produced documents, for signed links (pure).

Bounded both by entry count and by total bytes: inserting evicts the least recently used
entries until both bounds hold, so memory never grows without limit. A document larger than the
byte bound is not cached (a link to it is served by re-fetching from Exstream).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachedDocument:
    document_id: str
    customer_id: str
    filename: str
    pdf: bytes


class DocumentCache:
    def __init__(self, max_entries: int = 256, max_bytes: int = 64 * 1024 * 1024) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("cache bounds must be >= 0")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, document: CachedDocument) -> bool:
        """Cache ``document``; False when it cannot fit at all."""
        size = len(document.pdf)
        if self.max_entries == 0 or size > self.max_bytes:
            return False
        old = self._entries.pop(document.document_id, None)
        if old is not None:
            self.bytes -= len(old.pdf)
        self._entries[document.document_id] = document
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted.pdf)
            self.evictions += 1
        return True

    def get(self, document_id: str) -> CachedDocument | None:
        document = self._entries.get(document_id)
        if document is not None:
            self._entries.move_to_end(document_id)
        return document
