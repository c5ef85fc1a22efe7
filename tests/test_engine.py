"""The shared run engine's pieces that need no server: the chunk scheduler's bounds and order,
and the file locks (held by another process, as in real use)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from concurrent.futures import Future

import pytest

from migrator.engine.locks import hold, locked
from migrator.engine.scheduler import ChunkScheduler
from migrator.errors import StateError
from migrator.executor import Executor
from migrator.workdir import WorkDir


class _Finishing(Executor):
    """Tasks complete when waited for, in an order the test picks (remote: lost workers count)."""

    def __init__(self, pick, remote: bool = False):
        self.pick = pick
        self.remote = remote

    def wait_first(self, futures, timeout=None):
        return {self.pick(list(futures))}

    def is_lost_worker(self, exc):
        return isinstance(exc, ConnectionResetError)


def _scan(tasks, parallel, per_source, finish_order):
    """Copy's scheduling before the engine: the first pending task whose source has a free slot."""
    pending, running, busy, started = list(tasks), [], {}, []
    for k in range(10_000):
        i = 0
        while i < len(pending) and len(running) < parallel:
            t = pending[i]
            if busy.get(t[0], 0) >= per_source:
                i += 1
                continue
            pending.pop(i)
            busy[t[0]] = busy.get(t[0], 0) + 1
            running.append(t)
            started.append(t)
        if not running:
            return started
        t = running.pop(finish_order[k] % len(running))
        busy[t[0]] -= 1
    raise AssertionError("did not finish")


@pytest.mark.parametrize("seed", range(40))
def test_scheduler_keeps_both_bounds_and_the_callers_order(seed):
    rnd = random.Random(seed)
    parallel, per_source = rnd.randint(1, 6), rnd.randint(1, 3)
    tasks = [(f"src{rnd.randint(1, 5)}", i) for i in range(rnd.randint(0, 60))]
    finish_order = [rnd.randint(0, 99) for _ in range(len(tasks) + 1)]
    submitted: dict[Future, tuple] = {}
    started: list[tuple] = []
    done_sources: list[str] = []
    turn = iter(finish_order)

    def pick(futures):
        live = [f for f in submitted if f in futures]  # in submission order, as _scan keeps them
        return live[next(turn) % len(live)]

    scheduler = ChunkScheduler(tasks, lambda t: t[0], parallel=parallel, per_source=per_source,
                               executor=_Finishing(pick))

    def submit(task):
        running = list(scheduler.running.values())
        assert len(running) < parallel
        assert sum(1 for s in running if s.source == task[0]) < per_source
        fut: Future = Future()
        fut.set_result(task)
        submitted[fut] = task
        started.append(task)
        return fut

    scheduler.run(submit, lambda slot, fut: submitted.pop(fut), source_done=done_sources.append)
    assert started == _scan(tasks, parallel, per_source, finish_order)
    assert sorted(done_sources) == sorted({t[0] for t in tasks})  # each source told once, when done


def test_scheduler_skips_failed_tables_and_resubmits_lost_tasks_first():
    tasks = [("a", 1), ("a", 2), ("a", 3), ("b", 4)]
    lost_once = {2}
    started: list[int] = []
    finished: list[tuple[int, int]] = []
    lost: list[int] = []

    def submit(task):
        fut: Future = Future()
        if task[1] in lost_once:
            lost_once.discard(task[1])
            fut.set_exception(ConnectionResetError("worker died"))
        else:
            fut.set_result(task)
        started.append(task[1])
        return fut

    scheduler = ChunkScheduler(tasks, lambda t: t[0], parallel=1, per_source=1,
                               executor=_Finishing(lambda fs: fs[0], remote=True), task_retries=1)
    scheduler.run(submit, lambda slot, fut: finished.append((slot.task[1], slot.attempt)),
                  skip=lambda t: t[1] == 3, lost=lambda slot, exc: lost.append(slot.task[1]))
    assert started == [1, 2, 2, 4]  # the lost task ran again before the next; task 3 skipped
    assert lost == [2] and finished == [(1, 1), (2, 2), (4, 1)]


_HOLDER = """
import sys, time
from migrator.engine.locks import hold
from migrator.errors import StateError
hold(sys.argv[1], note="4242 holder\\n", busy=lambda h: StateError(h))
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_is_refused_at_once_with_the_holders_note(tmp_path):
    wd = WorkDir(tmp_path / "work")
    proc = _holder(wd.writer_lock, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(StateError, match="in use by another migrator process; wait for it or stop it before "
                                             "running copy"):
            wd.lock("copy")
        with pytest.raises(StateError, match="^4242 holder$"):
            hold(wd.writer_lock, busy=lambda holder: StateError(holder))
        assert time.monotonic() - t0 < 1
    finally:
        proc.kill()
        proc.wait()
    wd.lock("copy")  # free again once its holder is gone (killed: the lock goes with the process)
    assert wd.writer_lock.read_text() == f"{os.getpid()} copy\n"
    wd.unlock()


def test_a_lock_waited_for_is_taken_when_its_holder_exits_or_refused_at_the_deadline(tmp_path):
    path = tmp_path / "sync" / "src1.lock"
    told: list[str] = []
    proc = _holder(path, 0.5)
    try:
        fd = hold(path, wait=10, waiting=told.append, busy=lambda h: StateError(h), note="mine\n")
        os.close(fd)
        assert told == ["4242 holder"]  # said once, while waiting
    finally:
        proc.wait()
    proc = _holder(path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(StateError, match="4242 holder"):
            hold(path, wait=0.3, busy=lambda h: StateError(h))
        assert 0.3 <= time.monotonic() - t0 < 2
    finally:
        proc.kill()
        proc.wait()
    with locked(path):  # blocking form: free now
        pass
