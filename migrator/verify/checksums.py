"""The chunk checksums of a verify run, on both sides, scheduled by the engine over the whole
fleet (local threads or Dask workers); results are journaled by this process as they arrive."""

from __future__ import annotations

import time
from typing import Any

import pymysql

from ..db import connect, describe_error, with_retry
from ..endpoint import Endpoint
from ..engine.pool import TARGET, Pool
from ..engine.scheduler import ChunkScheduler, Slot
from ..errors import MigratorError, SourceError, TargetError
from ..executor import Executor
from ..plan.model import Chunk
from ..progress import Progress, VerifyProgress
from ..throttle import Throttle, ThrottleOptions
from .checksum import TableSide, chunk_checksum, decode_bound
from .journal import VerifyJournal
from .report import VerifyReport
from .tablerun import TableRun, carries_target, run_chunks


def pending_chunks(runs: list[TableRun], journal: VerifyJournal, report: VerifyReport) -> list[tuple[TableRun, Chunk]]:
    """The chunks still to checksum, in plan order; chunks a resumed run already found identical are counted."""
    todo: list[tuple[TableRun, Chunk]] = []
    for run in runs:
        if run.reported:
            report.tables.append(run.result)
        if run.sside is None:
            continue
        for chunk in run_chunks(run):
            run.result.chunks += 1
            done = journal.done.get((run.group.journal_key if run.group else run.tp.id, chunk.id))
            if done is not None:
                run.result.chunks_resumed += 1
                if carries_target(run, chunk):  # a merge's resumed range: counted on its carrier
                    run.result.rows_source += done[0]
                    run.result.rows_target += done[1]
                if run.group is not None:
                    run.group.expected.pop(chunk.id, None)
            else:
                todo.append((run, chunk))
    return todo


def record_checksums(run: TableRun, chunk: Chunk, cs: tuple, ct: tuple | None, journal: VerifyJournal,
                     started: float) -> None:
    run.result.rows_source += cs[0]
    run.result.rows_target += ct[0] if ct is not None else 0
    run.result.seconds = round(time.monotonic() - started, 3)  # chunks run concurrently: wall time
    group = run.group
    if group is not None:
        if group.add(chunk, cs, ct):  # the range's last member: compare the union with the target
            us, ut = group.sums[chunk.id], group.target_sums[chunk.id]
            journal.record(group.journal_key, chunk.id, us == ut, (us[0], ut[0]))
            if us != ut:
                group.differing.append((chunk, us, ut))
        return
    assert ct is not None
    journal.record(run.tp.id, chunk.id, cs == ct, (cs[0], ct[0]))
    if cs != ct:
        run.differing.append((chunk, cs, ct))


def checksum_pair(conns: Pool, run: TableRun, chunk: Chunk) -> tuple[tuple, tuple | None]:
    """One chunk on its source, then on the target (each on a pooled connection of that instance)."""
    assert run.sside is not None and run.tside is not None
    lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
    sside, tside = run.sside, run.tside
    cs = conns.run(sside.instance, lambda c: chunk_checksum(c, sside, lo, hi), what="checksum")
    if not carries_target(run, chunk):  # a merge member's share of a range another member carries
        return cs, None
    ct = conns.run(TARGET, lambda c: chunk_checksum(c, tside, lo, hi), what="checksum")
    return cs, ct


def checksum_pair_task(source: Endpoint, target: Endpoint, sside: TableSide, tside: TableSide | None, lo: Any,
                       hi: Any, max_threads_running: int) -> tuple[tuple, tuple | None]:
    """Run on a worker: one chunk's checksum on its source and on the target (own connections;
    tside None: the source only, a merge member's share of a range another member carries)."""
    throttle = Throttle(ThrottleOptions(max_threads_running=max_threads_running))

    def side(ep: Endpoint, role: str, s: TableSide) -> tuple:
        def attempt() -> tuple:
            conn = connect(ep, role, attempts=3)
            try:
                if role == "source":
                    throttle.source_wait(s.instance, conn)
                return chunk_checksum(conn, s, lo, hi)
            finally:
                conn.close()
        try:
            return with_retry(attempt, what=f"checksum on {role} {ep.label}", attempts=3)
        except pymysql.err.MySQLError as exc:
            raise (SourceError if role == "source" else TargetError)(describe_error(ep, role, exc)) from None

    return side(source, "source", sside), (side(target, "target", tside) if tside is not None else None)


LOST_WORKER_RETRIES = 3  # a chunk whose Dask worker died is submitted again this often


def checksum_chunks(runs: list[TableRun], pools: Pool, executor: Executor, journal: VerifyJournal,
                    report: VerifyReport, progress: Progress, *, parallel: int,
                    per_source: int, max_threads_running: int) -> None:
    """Every pending chunk on both sides: at most `parallel` at once, `per_source` of one source.
    Sources are taken in plan order, so only a few have connections open at a time, and a source's
    connections are closed as soon as its last chunk is done (memory stays flat with the fleet).
    On Dask workers each chunk opens its own connections (checksum_pair_task)."""
    started = time.monotonic()
    todo = pending_chunks(runs, journal, report)
    order = {source: i for i, source in enumerate(dict.fromkeys(run.tp.source for run, _ in todo))}
    todo.sort(key=lambda task: order[task[0].tp.source])  # stable: plan order within a source
    total = sum(r.result.chunks for r in runs)
    finished = total - len(todo)
    rows = sum(r.result.rows_source for r in runs)

    def submit(task: tuple[TableRun, Chunk]) -> Any:
        run, chunk = task
        if not executor.remote:
            return executor.submit(checksum_pair, pools, run, chunk)
        assert run.sside is not None and run.tside is not None
        return executor.submit(checksum_pair_task, executor.ship(pools.endpoint(run.tp.source), "source"),
                               executor.ship(pools.target_ep, "target"), run.sside,
                               run.tside if carries_target(run, chunk) else None, decode_bound(chunk.lower),
                               decode_bound(chunk.upper), max_threads_running)

    def failed_table(task: tuple[TableRun, Chunk]) -> bool:
        nonlocal finished
        if task[0].result.status != "error":
            return False
        finished += 1  # the table already failed: do not read more of it
        return True

    def done(slot: Slot[tuple[TableRun, Chunk]], fut: Any) -> None:
        nonlocal finished, rows
        run, chunk = slot.task
        finished += 1
        exc = fut.exception()
        if exc is not None:
            if not isinstance(exc, MigratorError):
                raise exc
            if run.result.status != "error":
                run.result.status, run.result.error = "error", f"{run.tp.id} chunk {chunk.id}: {exc}"
        elif run.result.status != "error":
            cs, ct = fut.result()
            record_checksums(run, chunk, cs, ct, journal, started)
            rows += cs[0]
        progress.emit(VerifyProgress(done=finished, total=total, rows=rows))

    scheduler: ChunkScheduler[tuple[TableRun, Chunk]] = ChunkScheduler(
        todo, lambda task: task[0].tp.source, parallel=parallel, per_source=per_source, executor=executor,
        task_retries=LOST_WORKER_RETRIES)
    try:
        scheduler.run(submit, done, skip=failed_table, source_done=None if executor.remote else pools.release)
    finally:
        pools.release(TARGET)  # the sequential steps after this use their own connection
    journal.flush()
