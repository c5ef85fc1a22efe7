"""One chunk scheduler for copy and verify: a global and a per-source bound, local or Dask.

Tasks are taken in the caller's order: the first pending task whose source has a free slot
runs next, while fewer than `parallel` run in all. Copy interleaves its sources (biggest tables
first); verify groups them, so only a few sources have connections open at a time. When a
source's last task is done, `source_done(source)` is told (its connections can be closed). A task
lost with its Dask worker is submitted again, ahead of the others, up to `task_retries` times.
`run` schedules in the calling thread; `start` does it on a thread of its own and hands each
finished task to the caller as it ends (continuous verify and cutover check while they do more).
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..executor import Executor

T = TypeVar("T")


@dataclass
class Slot(Generic[T]):
    """A task as scheduled: its source and how many times it was submitted."""

    task: T
    source: str
    attempt: int = 1


@dataclass
class _Queue(Generic[T]):
    busy: int = 0
    left: int = 0  # tasks of this source not finished (pending or running)
    items: deque[tuple[int, Slot[T]]] = field(default_factory=deque)


class ChunkScheduler(Generic[T]):
    def __init__(self, tasks: Iterable[T], source_of: Callable[[T], str], *, parallel: int, per_source: int,
                 executor: Executor, task_retries: int = 0):
        self.parallel = max(1, parallel)
        self.per_source = max(1, per_source)
        self.executor = executor
        self.task_retries = task_retries
        self._seq = itertools.count()
        self._first = itertools.count(-1, -1)  # resubmitted tasks go ahead of every other
        self._queues: dict[str, _Queue[T]] = {}
        self._ready: list[tuple[int, str]] = []  # (head's order, source) of sources with a free slot
        self.running: dict[Any, Slot[T]] = {}
        for task in tasks:
            source = source_of(task)
            q = self._queues.setdefault(source, _Queue())
            q.items.append((next(self._seq), Slot(task, source)))
            q.left += 1
        for source, q in self._queues.items():
            heapq.heappush(self._ready, (q.items[0][0], source))

    @property
    def pending(self) -> int:
        return sum(len(q.items) for q in self._queues.values())

    def run(self, submit: Callable[[T], Any], finished: Callable[[Slot[T], Any], None], *,
            skip: Callable[[T], bool] | None = None, source_done: Callable[[str], None] | None = None,
            lost: Callable[[Slot[T], BaseException], None] | None = None,
            interrupted: Callable[[], None] | None = None) -> None:
        """Run every task: submit(task) returns a future; finished(slot, future) is called in this
        thread as each ends (not for a lost worker's task that is submitted again). skip(task): drop
        it unrun (its table failed). interrupted(): Ctrl-C, before the running futures are cancelled."""
        while True:
            self._fill(submit, skip, source_done)
            if not self.running:
                return
            try:
                done = self.executor.wait_first(self.running)
            except KeyboardInterrupt:
                if interrupted is not None:
                    interrupted()
                for fut in self.running:
                    fut.cancel()
                raise
            for fut in done:
                slot = self.running.pop(fut)
                q = self._queues[slot.source]
                q.busy -= 1
                exc = fut.exception()
                if exc is not None and self._resubmit(slot, exc):
                    if lost is not None:
                        lost(slot, exc)
                    slot.attempt += 1
                    q.items.appendleft((next(self._first), slot))
                else:
                    finished(slot, fut)
                    self._finish_one(slot.source, source_done)
                if q.items and q.busy < self.per_source:  # a slot opened (stale duplicates are skipped)
                    heapq.heappush(self._ready, (q.items[0][0], slot.source))

    def _resubmit(self, slot: Slot[T], exc: BaseException) -> bool:
        return (self.executor.remote and self.executor.is_lost_worker(exc)
                and slot.attempt <= self.task_retries)

    def _fill(self, submit: Callable[[T], Any], skip: Callable[[T], bool] | None,
              source_done: Callable[[str], None] | None) -> None:
        while self._ready and len(self.running) < self.parallel:
            order, source = heapq.heappop(self._ready)
            q = self._queues[source]
            if not q.items or q.items[0][0] != order or q.busy >= self.per_source:
                if q.items and q.busy < self.per_source:  # stale entry: its head changed
                    heapq.heappush(self._ready, (q.items[0][0], source))
                continue
            _, slot = q.items.popleft()
            if skip is not None and skip(slot.task):
                self._finish_one(source, source_done)
            else:
                q.busy += 1
                self.running[submit(slot.task)] = slot
            if q.items and q.busy < self.per_source:
                heapq.heappush(self._ready, (q.items[0][0], source))

    def _finish_one(self, source: str, source_done: Callable[[str], None] | None) -> None:
        q = self._queues[source]
        q.left -= 1
        if q.left <= 0 and q.busy == 0 and source_done is not None:
            source_done(source)

    def start(self, submit: Callable[[T], Any], *, stop: Callable[[], bool] | None = None,
              source_done: Callable[[str], None] | None = None) -> Iterator[tuple[Slot[T], Any]]:
        """`run` begun now on a thread of its own: iterate the result (in any one thread) for each
        (slot, future) as it ends; an error of the scheduling itself is raised there. stop():
        the tasks not yet submitted are dropped unrun (the iteration then ends early)."""
        ended: queue.Queue[tuple[Slot[T], Any] | tuple[None, BaseException | None]] = queue.Queue()

        def drive() -> None:
            try:
                self.run(submit, lambda slot, fut: ended.put((slot, fut)), source_done=source_done,
                         skip=None if stop is None else (lambda _task: stop()))
            except BaseException as exc:  # noqa: BLE001 - handed to the iterating thread
                ended.put((None, exc))
            else:
                ended.put((None, None))

        threading.Thread(target=drive, name="scheduler", daemon=True).start()

        def finished() -> Iterator[tuple[Slot[T], Any]]:
            while True:
                slot, item = ended.get()
                if slot is None:
                    if item is not None:
                        raise item
                    return
                yield slot, item

        return finished()
