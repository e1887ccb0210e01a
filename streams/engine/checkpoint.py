"""Where the stores' files stood when the engine last stopped cleanly (file I/O only).

With its stores on disk (``state_dir``), an engine that stops cleanly (its last transaction
committed, every database flushed and closed) writes each held changelog partition's high
watermark to ``<state_dir>/changelog-offsets.json``: the offset its files stand at. The next
engine on that directory takes the file (reads it and removes it, before any database is
opened, so that a crash from then on leaves none) and reads each such partition's changelog on
from there instead of replaying it into an empty database. Without the file, or for a partition
it does not name, the files are not trusted: what a crash left there may hold puts of a
transaction that never committed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "changelog-offsets.json"

ChangelogPartition = tuple[str, int]


def write(directory: Path, offsets: Mapping[ChangelogPartition, int]) -> None:
    """Write ``offsets`` ({(changelog topic, partition): offset}) for the next engine, atomically
    (a crash while writing leaves the previous state of the directory: no file)."""
    by_topic: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        by_topic.setdefault(topic, {})[str(partition)] = offset
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{FILE}.tmp"
    with tmp.open("w") as f:
        json.dump(by_topic, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(directory / FILE)
    _sync(directory)


def take(directory: Path) -> dict[ChangelogPartition, int]:
    """The offsets the last clean stop wrote in ``directory``, the file removed; empty when there
    is none, or it cannot be read (said in the log: the partitions are then replayed whole)."""
    path = directory / FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    path.unlink()
    _sync(directory)
    try:
        data = json.loads(text)
        return {
            (str(topic), int(partition)): int(offset)
            for topic, partitions in data.items()
            for partition, offset in partitions.items()
        }
    except (ValueError, AttributeError, TypeError) as exc:
        log.warning("%s could not be read (%s): every partition is replayed whole", path, exc)
        return {}


def _sync(directory: Path) -> None:
    """Make a rename or removal in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
