"""Decoding an input record while the schema registry may be briefly unreachable.

A record whose framing names a schema the registry must resolve cannot be read while the
registry does not answer; that is not the record's fault, so it is never dead-lettered for it.
The worker waits and tries again (the record's partition pauses, the commit lock is held), up to
``wait_s``; then :class:`~streams.codec.errors.RegistryUnavailable` propagates and the worker
stops for its supervisor to restart it, the record's transaction aborted and the record read
again on restart: nothing is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.codec import RegistryUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)


async def decode_waiting(
    decode: Callable[[], T],
    *,
    wait_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``decode()``, tried again with backoff while it raises RegistryUnavailable."""
    deadline = monotonic() + wait_s
    delay = 0.2
    while True:
        try:
            return decode()
        except RegistryUnavailable as exc:
            if monotonic() + delay > deadline:
                raise
            log.warning("%s; trying again in %.1f s", exc, delay)
            await sleep(delay)
            delay = min(delay * 2, 5.0)
