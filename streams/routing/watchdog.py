"""A deadline on the worker's transactional calls: one that cannot finish ends the worker.

The engine's transactional calls into confluent-kafka (begin, produce and flush, sending the
offsets, commit, abort) block in a worker thread until the broker answers. A broker that takes
connections but never answers (the hung-broker fault test stops one with SIGSTOP) leaves such a
call waiting with no error, and the worker stands still while it looks alive: no crash, no
rebalance, nothing routed. Waiting longer cannot be relied on: librdkafka retries some requests
until the transaction times out, and a coordinator that never answers is not one.

When a guarded call takes longer than the deadline, the worker writes where every task waits to
its log (no local variables: see :mod:`streams.diagnostics`) and exits with
:data:`EXIT_STUCK`, leaving recovery to what already survives a crash: the supervisor (systemd,
Kubernetes, the demo) starts it again, its transactional producer fences the stuck one and
aborts its open transaction, and it resumes from the committed offsets: nothing lost, nothing
duplicated (the process-crash test SIGKILLs a worker for the same reason). This is Kafka
Streams' rule too: a task that cannot commit within ``task.timeout.ms`` fails its stream thread
instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from streams.diagnostics import dump_tasks

log = logging.getLogger(__name__)

EXIT_STUCK = 70
"""The worker's exit status after a missed commit deadline (``EX_SOFTWARE``): a supervisor
restarts on it; a test harness recognises it."""


def exit_stuck_worker(what: str, waited_s: float) -> None:
    """Log why, dump the tasks, flush the logs and exit with :data:`EXIT_STUCK` at once (no
    graceful shutdown: it would wait on the same stuck requests)."""
    log.critical(
        "%s has not completed in %.0f s: the worker is stuck; exiting (status %d) so that its "
        "supervisor restarts it. Open transactions are aborted by the restarted worker, which "
        "resumes from the committed offsets. Where each task waits follows.",
        what,
        waited_s,
        EXIT_STUCK,
    )
    dump_tasks(sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STUCK)


class Deadline:
    """Runs ``on_expiry(what, waited_s)`` if a block guarded by :meth:`guard` is still running
    ``timeout_s`` after it began. The block itself is not cancelled: cancelling a commit half
    way leaves a producer's transaction in a state it cannot leave."""

    def __init__(
        self, timeout_s: float, on_expiry: Callable[[str, float], None] = exit_stuck_worker
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"the commit deadline must be positive, not {timeout_s}")
        self.timeout_s = timeout_s
        self._on_expiry = on_expiry

    @asynccontextmanager
    async def guard(self, what: str) -> AsyncIterator[None]:
        began = time.monotonic()
        handle = asyncio.get_running_loop().call_later(
            self.timeout_s, lambda: self._on_expiry(what, time.monotonic() - began)
        )
        try:
            yield
        finally:
            handle.cancel()
