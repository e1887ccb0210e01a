"""The routing worker's state as changelog values: a customer's suppression entries and an audit
partition's chain head, serialised only when they change (kept as Python objects in between).

The formats are the ones the routing worker has always written to its table changelogs, so
state written before is read back unchanged:

- suppression (key: customer id): a JSON object ``{suppression key: {"communication_id",
  "source_event_id", "emitted_at", "expires_at"}}``, entries in the mapping's order;
- chain head (key: audit partition number as text): ``{"seq": n, "hash": "<64 hex>"}``.

Decoding raises :class:`~streams.codec.errors.DecodeError` (code ``STATE_ERROR``) on a value that
is not in these formats, naming the table, never the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from streams.audit.chain import ChainHead
from streams.codec.errors import DecodeError
from streams.domain.suppression import SuppressionEntry


def encode_suppression(state: Mapping[str, SuppressionEntry]) -> bytes:
    """The changelog value of one customer's suppression entries."""
    return orjson.dumps(
        {
            key: {
                "communication_id": e.communication_id,
                "source_event_id": e.source_event_id,
                "emitted_at": e.emitted_at,
                "expires_at": e.expires_at,
            }
            for key, e in state.items()
        }
    )


def decode_suppression(raw: bytes | None) -> dict[str, SuppressionEntry]:
    """One customer's suppression entries from their changelog value (empty for None/empty)."""
    if not raw:
        return {}
    try:
        loaded: Any = orjson.loads(raw)
        return {
            key: SuppressionEntry(
                communication_id=value["communication_id"],
                source_event_id=value["source_event_id"],
                emitted_at=value["emitted_at"],
                expires_at=value["expires_at"],
            )
            for key, value in loaded.items()
        }
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise DecodeError(
            "STATE_ERROR",
            f"suppression state is not in its changelog format ({type(exc).__name__})",
        ) from None


def encode_chain_head(head: ChainHead) -> bytes:
    """The changelog value of one audit partition's chain head."""
    return orjson.dumps({"seq": head.seq, "hash": head.hash})


def decode_chain_head(raw: bytes | None) -> ChainHead:
    """A chain head from its changelog value (the genesis head for None/empty)."""
    if not raw:
        return ChainHead()
    try:
        loaded: Any = orjson.loads(raw)
        return ChainHead(seq=loaded["seq"], hash=loaded["hash"])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise DecodeError(
            "STATE_ERROR", f"audit chain head is not in its changelog format ({type(exc).__name__})"
        ) from None
