"""Where a running service waits, for an operator: the stack of every asyncio task, named and
located (file, line, function, source line) and nothing else. No frame's local variables are read:
in these services they hold decoded records (customer addresses, email addresses), which must never
reach a log. The routing worker and the sink write it on SIGUSR1 (``kill -USR1 <pid>``).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import traceback
from types import FrameType
from typing import IO, Any


def format_tasks(tasks: set[asyncio.Task[Any]] | None = None) -> str:
    """One block per task (``tasks``, default every task of the running loop): its name and
    state, then its frames, innermost last. No local variable is read."""
    if tasks is None:
        tasks = asyncio.all_tasks()
    blocks = [f"asyncio tasks: {len(tasks)}"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        state = "done" if task.done() else "pending"
        coro = task.get_coro()
        frames = traceback.StackSummary.extract(
            ((f, f.f_lineno) for f in awaited_frames(coro)), capture_locals=False
        )
        name = getattr(coro, "__qualname__", type(coro).__name__)
        blocks.append(f"task {task.get_name()} ({name}, {state}):\n{''.join(frames.format())}")
    return "\n".join(blocks)


_FRAME = ("cr_frame", "gi_frame", "ag_frame")
_AWAITS = ("cr_await", "gi_yieldfrom", "ag_await")
MAX_DEPTH = 64


def awaited_frames(coro: object) -> list[FrameType]:
    """The frames of ``coro`` and of everything it awaits, outermost first, down to the future
    the innermost waits on. ``Task.get_stack`` gives only the outermost frame of a suspended
    task, which says nothing about where it waits. The chain is followed through coroutines,
    generators, awaited tasks (a supervisor's task awaiting its child's) and the
    wrappers ``__await__`` returns (found among the wrapper's referents)."""
    frames: list[FrameType] = []
    current: object = coro
    for _ in range(MAX_DEPTH):
        if isinstance(current, asyncio.Task):
            current = current.get_coro()
        frame = next((f for a in _FRAME if (f := getattr(current, a, None)) is not None), None)
        if frame is None:
            inner = _wrapped_coroutine(current)
            if inner is None:
                break
            current = inner
            continue
        frames.append(frame)
        current = next((c for a in _AWAITS if (c := getattr(current, a, None)) is not None), None)
        if current is None:
            break
    return frames


def _wrapped_coroutine(obj: object) -> object | None:
    """The coroutine behind an awaitable wrapper (``coroutine.__await__()`` returns one that
    exposes nothing but holds a reference to it) or the task behind the iterator ``await task``
    suspends on, or None (a plain future: the end of the chain)."""
    if obj is None or isinstance(obj, asyncio.Future):
        return None
    return next(
        (
            r
            for r in gc.get_referents(obj)
            if isinstance(r, asyncio.Task) or any(hasattr(r, a) for a in _FRAME)
        ),
        None,
    )


def dump_tasks(out: IO[str]) -> None:
    out.write(format_tasks() + "\n")
    out.flush()


def install_task_dump(loop: asyncio.AbstractEventLoop, out: IO[str] | None = None) -> None:
    """Answer SIGUSR1 on ``loop`` with :func:`dump_tasks` to ``out`` (default stderr)."""
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks, sys.stderr if out is None else out)
