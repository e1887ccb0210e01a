"""The routing worker's table values as it keeps them: JSON bytes, decoded on every event."""

from __future__ import annotations

import orjson

from streams.audit.chain import ChainHead
from streams.domain.suppression import SuppressionEntry


def load_suppression(raw: bytes | None) -> dict[str, SuppressionEntry]:
    if not raw:
        return {}
    return {key: SuppressionEntry(**value) for key, value in orjson.loads(raw).items()}


def dump_suppression(state: dict[str, SuppressionEntry]) -> bytes:
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


def load_head(raw: bytes | None) -> ChainHead:
    return ChainHead(**orjson.loads(raw)) if raw else ChainHead()


def dump_head(head: ChainHead) -> bytes:
    return orjson.dumps({"seq": head.seq, "hash": head.hash})
