"""Copy on Dask workers: one chunk per task, committed on the target by the worker and journaled
by the coordinator (the only checkpoint writer) from the returned outcome (see migrator.executor)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..endpoint import Endpoint
from ..engine.pool import Pool
from ..plan.model import Chunk, TablePlan
from ..throttle import Throttle, ThrottleOptions
from .chunk import ChunkCopier, open_session
from .contracts import CopyOptions, TableFailed
from .pagesize import PageSizing


@dataclass
class ChunkTask:
    """Everything a worker needs to copy one chunk: picklable, no work-directory paths."""

    table: TablePlan
    chunk: Chunk
    after: list[Any] | None
    source: Endpoint
    target: Endpoint
    opts: CopyOptions
    shares_target: bool = False


@dataclass
class ChunkOutcome:
    """What a worker committed: (after, rows, bytes, done) per page, for the coordinator to journal."""

    pages: list[tuple[list[Any] | None, int, int, bool]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    throttled: list[str] = field(default_factory=list)
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    worker: str = ""


class _PageList:
    """Stands in for the journal inside a worker: pages are only collected and returned."""

    def __init__(self, out: ChunkOutcome):
        self.out = out

    def page(self, table_id: str, chunk_id: int, after: list[Any] | None, rows: int, nbytes: int, done: bool) -> None:
        self.out.pages.append((after, rows, nbytes, done))


_worker_throttle: Throttle | None = None
_worker_lock = threading.Lock()


def _throttle_for(opts: CopyOptions) -> Throttle:
    """One throttle per worker process: stall detection needs the commits of earlier tasks."""
    global _worker_throttle
    with _worker_lock:
        if _worker_throttle is None:
            _worker_throttle = Throttle(ThrottleOptions(max_threads_running=opts.max_source_threads_running))
        return _worker_throttle


class _TaskContext(PageSizing):
    """What ChunkCopier needs from its runner, inside a worker process for one chunk."""

    def __init__(self, task: ChunkTask, out: ChunkOutcome):
        self.opts = task.opts
        self.task = task
        self.out = out
        self._lock = threading.Lock()
        self._page_rows: dict[str, int] = {}
        self.conns = Pool({task.table.source: task.source}, task.target, opener=open_session)
        self.journal = _PageList(out)
        self.readers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read")
        self.throttle = _throttle_for(task.opts)

    def stopping(self, table: TablePlan) -> bool:
        return False

    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None:
        pass  # the pages go back in the outcome (_PageList); the coordinator shows them

    def warn(self, message: str) -> None:
        self.out.warnings.append(message)

    def shares_target(self, table: TablePlan) -> bool:
        return self.task.shares_target

    def timed(self, read: float, write: float) -> None:
        self.out.read_seconds += read
        self.out.write_seconds += write

    def count(self, table: TablePlan, rows: int, nbytes: int) -> None:
        pass

    def close(self) -> None:
        self.readers.shutdown(wait=True)
        self.conns.close_all()


def copy_chunk_task(task: ChunkTask) -> ChunkOutcome:
    """Run on a worker: copy one chunk from task.after to its upper bound, committing each page
    on the target, and return what was committed. Writes no checkpoint (the coordinator does)."""
    out = ChunkOutcome(worker=f"{os.uname().nodename}:{os.getpid()}")
    ctx = _TaskContext(task, out)
    seen = len(ctx.throttle.events)
    try:
        ChunkCopier(ctx, task.table, task.chunk, task.after).run()
    except TableFailed as exc:
        out.error, out.error_kind = str(exc.error), type(exc.error).__name__
    finally:
        ctx.close()
    out.throttled = ctx.throttle.events[seen:]
    return out