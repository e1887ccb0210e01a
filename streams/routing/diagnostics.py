"""What a running worker is waiting on, for an operator: ``kill -USR1 <pid>`` writes the stack of
every asyncio task of the worker to its log.

faust's worker (``mode``) answers SIGUSR1 with a dump that also prints every frame's local
variables; in this worker those hold decoded records (customer addresses, email addresses), which
must never reach a log. This dump names each task and its frames (file, line, function, source
line) and nothing else.
"""

from __future__ import annotations

import sys

from faust.worker import Worker

from streams.diagnostics import awaited_frames, dump_tasks, format_tasks

__all__ = ["DiagnosableWorker", "awaited_frames", "dump_tasks", "format_tasks"]


class DiagnosableWorker(Worker):
    """faust's worker whose SIGUSR1 dump leaves local variables out (see the module docstring)."""

    def _on_sigusr1(self) -> None:
        dump_tasks(sys.stderr)
