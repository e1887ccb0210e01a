"""Decoding an input record while the schema registry may be briefly unreachable.

A record whose framing names a schema the registry must resolve cannot be read while the
registry does not answer; that is not the record's fault, so it is never dead-lettered for it.
The worker waits and tries again (no transaction is open while a handler waits), up to
``wait_s``; then the worker exits (:func:`decode_in_worker`, the commit watchdog's exit) for its
supervisor to restart it, the batch's transaction never begun and the record read again on
restart: nothing is lost or duplicated. An exception instead would end the worker the same way
but with the record's failure reported as the handler's, which it is not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from streams.codec import RegistryUnavailable
from streams.routing.watchdog import exit_stuck_worker

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


async def decode_in_worker(decode: Callable[[], T], *, wait_s: float) -> T:
    """:func:`decode_waiting`; a registry still down after ``wait_s`` ends the worker."""
    try:
        return await decode_waiting(decode, wait_s=wait_s)
    except RegistryUnavailable as exc:
        log.critical("%s", exc)
        exit_stuck_worker("reading a record through the schema registry", wait_s)
        raise  # not reached: the worker has exited
