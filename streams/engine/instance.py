"""A process slot's stable instance id, kept in its state directory (as Kafka Streams keeps its
process id): a worker restarted on the same directory gets the same transactional id, so its
``init_transactions`` aborts the dead process's open transaction at once instead of leaving
``read_committed`` readers blocked until the transaction timeout.

The id file is locked while a process holds it; a second live process on the same directory
(which would fence the first with the same transactional id) gets a fresh id of its own.
"""

from __future__ import annotations

import fcntl
import logging
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

FILE_NAME = "engine-instance-id"


class InstanceSlot:
    """The claimed id; holds the directory's lock until :meth:`release` (or process exit)."""

    def __init__(self, instance_id: str, lock: IO[str] | None) -> None:
        self.instance_id = instance_id
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None


def claim(directory: Path) -> InstanceSlot:
    """The id kept in ``directory`` (created on first use), locked for this process; a fresh
    unpersisted id when another live process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    handle = path.open("a+", encoding="ascii")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        fresh = uuid.uuid4().hex
        log.warning(
            "%s is held by another live process: this one runs as instance %s (its open "
            "transaction, should it die, is aborted only by the transaction timeout)",
            path,
            fresh,
        )
        return InstanceSlot(fresh, None)
    handle.seek(0)
    known = handle.read().strip()
    if not known:
        known = uuid.uuid4().hex
        handle.seek(0)
        handle.truncate()
        handle.write(known + "\n")
        handle.flush()
    return InstanceSlot(known, handle)
