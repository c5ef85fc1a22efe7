"""The copy runner: every active table's chunks, in parallel, checkpointed after each commit.

Work unit: a page of one plan chunk, read by keyset (`key > last AND key <= upper ORDER BY key
LIMIT n`) with n adapted so a page takes about `page_seconds`; the page is written in one
target transaction (multi-row REPLACE: a replayed page neither duplicates nor fails) and its
last key is journaled only after the commit. Resume continues each chunk after its last
journaled key; a page committed but not journaled is simply written again. While a page is
written, the chunk's next page is already being read (read-ahead). See copy/chunk.py.

A fresh chunk the plan estimates under WHOLE_CHUNK_BYTES skips paging: one aggregated read,
one transaction, one journal record; any doubt (cut result, rejected row) falls back to pages.

Threads, not processes: the source renders rows as SQL literals (sqlgen), so Python only moves
bytes and the GIL is rarely the limit. The engine's scheduler runs chunks under a global bound
and a per-source bound (engine/scheduler.py); workers keep one source and one target connection
each (engine/pool.py). With --executor dask://..., chunks run on Dask workers (copy/remote.py).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymysql

from ..db import connect, describe_error, query, quote_ident, session
from ..engine.pool import Pool
from ..engine.scheduler import ChunkScheduler, Slot
from ..errors import MigratorError, SourceError, StateError, TargetError
from ..executor import Executor, make_executor
from ..plan.model import Chunk, Plan, TablePlan
from ..positions import read_position, read_start_position
from ..schema.apply import TargetTable, create_tables
from ..throttle import Throttle, ThrottleOptions
from ..workdir import WorkDir
from . import sqlgen
from .chunk import ChunkCopier, open_session, retry_copy_step
from ..progress import CopyFinished, CopyProgress, Progress, Throttled
from .contracts import CopyOptions, CopyResult, NullReporter, TableFailed, TableResult, copy_started, copy_warning
from .faults import FAULT_ENV, fault_point
from .pagesize import PageSizing
from .remote import ChunkOutcome, ChunkTask, copy_chunk_task
from ..schema.catalog import read_shape
from .shape import RunContext, check_plan_columns, shape_record
from .state import CopyJournal, CopyState, chunk_ids, compact_journal, write_position

__all__ = ["FAULT_ENV", "CopyOptions", "CopyResult", "CopyRunner", "TableResult", "run_copy"]

log = logging.getLogger(__name__)

PREPARE_PARALLEL = 8  # sources checked and positioned at once before copying
PendingChunk = tuple[TablePlan, Chunk, "list[Any] | None"]  # a chunk and the key it resumes after


class CopyRunner(PageSizing):
    def __init__(self, plan: Plan, workdir: WorkDir, opts: CopyOptions, reporter: Progress | None = None,
                 plan_path: str | Path | None = None):
        self.plan = plan
        self.workdir = workdir
        self.opts = opts
        self.reporter: Progress = reporter if reporter is not None else NullReporter()
        self.plan_path = plan_path
        self.conns = Pool({s.name: s.endpoint() for s in plan.sources}, plan.target.endpoint(),
                          target_limit=opts.target_connections, opener=open_session)
        self.journal: CopyJournal | None = None
        self._lock = threading.Lock()
        self._page_rows: dict[str, int] = {}
        self.timing: dict[str, float] = {"prepare": 0.0, "read": 0.0, "write": 0.0}
        self._failed: dict[str, TableFailed] = {}
        self._stop = threading.Event()  # Ctrl-C: copiers stop after their current page
        self._created: set[str] = set()  # target tables checked or created in this run
        self._create_errors: dict[str, TargetError] = {}  # target table -> why it could not be created
        self._emptied: set[str] = set()  # --restart: target tables (or shard slices) emptied
        self._prepare_lock = threading.Lock()
        self.readers: ThreadPoolExecutor | None = None  # read-ahead of each chunk's next page
        self.executor: Executor | None = None  # where chunks run (local threads or Dask workers)
        self._failed_sources: dict[str, MigratorError] = {}
        self.results: dict[str, TableResult] = {t.id: TableResult(t) for t in plan.active_tables()}
        self.throttle = Throttle(ThrottleOptions(max_threads_running=opts.max_source_threads_running,
                                                 workdir=workdir.root, max_replica_lag=opts.max_replica_lag,
                                                 replicas=opts.replicas),
                                 notify=self._throttled)

    def _throttled(self, reason: str | None) -> None:
        """Show why copying slowed down (progress view), or that it stopped being slowed."""
        self.reporter.emit(Throttled(stage="copy", reason=reason))

    def warn(self, message: str) -> None:
        self.reporter.emit(copy_warning(message))

    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None:
        """Rows of `table` committed on the target, to the progress sink."""
        self.reporter.emit(CopyProgress(source=table.source, table=table.id, rows=rows, bytes=nbytes))

    # ---- shared by chunk copiers
    def timed(self, read: float, write: float) -> None:
        with self._lock:
            self.timing["read"] += read
            self.timing["write"] += write

    def count(self, table: TablePlan, rows: int, nbytes: int) -> None:
        with self._lock:
            res = self.results[table.id]
            res.rows += rows
            res.bytes += nbytes

    def stopping(self, table: TablePlan) -> bool:
        return self._stop.is_set() or table.id in self._failed or table.source in self._failed_sources

    def shares_target(self, table: TablePlan) -> bool:
        return any(t.target_name == table.target_name and t.id != table.id for t in self.plan.active_tables())

    # ---- phases
    def run(self) -> CopyResult:
        t0 = time.monotonic()
        self.workdir.lock("copy")
        try:
            # First: an unreachable Dask scheduler is refused before anything is recorded.
            self.executor = make_executor(self.opts.executor, self.opts.parallel, "copy", self.plan.endpoints())
            if self.opts.restart:
                self._clear()
            ctx = RunContext(self.workdir)
            ctx.check_plan(self.plan, self.plan_path)
            state = CopyState.load(self.workdir, self.plan)
            # Resumed many times, the journal would replay every page ever copied: fold it first.
            compact_journal(self.workdir, state, before_rename=lambda: fault_point("compact_written"))
            for res in self.results.values():
                res.rows = res.earlier_rows = state.table_progress(res.table.id).rows
                res.bytes = state.table_progress(res.table.id).bytes
            self.journal = CopyJournal(self.workdir)
            self.reporter.emit(copy_started(self.plan, state))
            t1 = time.monotonic()
            self._prepare_sources(ctx, state)
            ctx.save()
            self.timing["prepare"] = time.monotonic() - t1
            self._copy_chunks(state)
            self._record_end_positions()
        finally:
            if self.journal:
                self.journal.close()
            if self.executor is not None:
                self.executor.close()
            self.conns.close_all()
            self.throttle.close()
            self.workdir.unlock()
        result = CopyResult(tables=list(self.results.values()), seconds=time.monotonic() - t0)
        log.info("copy took %.1fs: prepare %.1fs; summed over workers: read %.1fs, write %.1fs",
                 result.seconds, self.timing["prepare"], self.timing["read"], self.timing["write"])
        for res in result.tables:
            if res.status == "pending":
                res.status = "done"
        self.reporter.emit(CopyFinished(result=result))
        return result

    def _clear(self) -> None:
        shutil.rmtree(self.workdir.copy_dir, ignore_errors=True)
        ctx = RunContext(self.workdir)
        ctx.forget_copy()
        ctx.save()

    def _tables_of(self, source: str) -> list[TablePlan]:
        return [t for t in self.plan.active_tables() if t.source == source]

    def _prepare_sources(self, ctx: RunContext, state: CopyState) -> None:
        """Per source: check shapes, create missing target tables, record the start position.
        Sources are prepared a few at a time: a fleet of hundreds would otherwise wait on one
        round trip after another (a failed source only fails its own tables)."""
        todo: list[tuple[str, list[TablePlan]]] = []
        for src in self.plan.sources:
            tables = [t for t in self._tables_of(src.name) if not state.table_complete(t.id)]
            for t in self._tables_of(src.name):
                if state.table_complete(t.id):
                    self.results[t.id].status = "done"
            if tables:
                todo.append((src.name, tables))
        self._create_missing_tables([t for _, tables in todo for t in tables])

        def one(source: str, tables: list[TablePlan]) -> None:
            try:
                self._prepare_source(source, tables, ctx, state)
            except (SourceError, TargetError) as exc:
                with self._lock:
                    self._fail_source(source, exc)

        workers = max(1, min(PREPARE_PARALLEL, self.opts.parallel, len(todo)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
            for fut in [pool.submit(one, name, tables) for name, tables in todo]:
                fut.result()  # a StateError (changed table) stops the run, as before

    def _prepare_source(self, source: str, tables: list[TablePlan], ctx: RunContext, state: CopyState) -> None:
        ep = self.conns.endpoint(source)
        conn = retry_copy_step(lambda: connect(ep, "source"), f"connect to source {source}", self.opts, self.warn)
        try:
            self._check_shapes(tables, conn, ctx)
            fresh = state.start_position(source) is None  # else target rows may be ours, uncheckpointed
            for t in tables:
                with self._prepare_lock:  # merged tables: one source creates, the others wait
                    if t.target_name not in self._created:
                        self._ensure_target_table(t)
                        self._created.add(t.target_name)
                if fresh and not any(state.chunk(t.id, c).rows or state.chunk(t.id, c).done for c in chunk_ids(t)):
                    self._check_empty_target(t)
            if fresh:
                self._record_start(source, conn, tables)
        except pymysql.err.MySQLError as exc:
            raise SourceError(describe_error(ep, "source", exc) + " (reading table definitions)") from None
        finally:
            conn.close()

    def _check_shapes(self, tables: list[TablePlan], conn: pymysql.connections.Connection, ctx: RunContext) -> None:
        """Refuse a source table that differs from the plan or from when its copy started."""
        for t in tables:
            shape = shape_record(read_shape(conn, t.database, t.table))
            ctx.check_shape(t, shape)
            problem = check_plan_columns(t, shape)
            if problem:
                raise StateError(f"source table {t.id} does not match the plan: {problem}; re-run `migrator plan`")
            ctx.record_shape(t.id, shape)

    def _record_start(self, source: str, conn: pymysql.connections.Connection, tables: list[TablePlan]) -> None:
        try:
            pos = read_start_position(conn)
        except RuntimeError as exc:
            if all(t.mode == "copy-only" for t in tables):
                self.warn(f"source {source}: {exc}; only copy-only tables, so no sync start is recorded")
                return
            raise SourceError(f"source {source}: {exc}: enable log_bin (ROW format) before copying tables "
                              "that will be synced") from None
        except pymysql.err.MySQLError as exc:
            raise SourceError(describe_error(self.conns.endpoint(source), "source", exc) +
                              " (reading the binlog position: grant REPLICATION CLIENT / BINLOG MONITOR)") from None
        write_position(self.workdir, source, pos, None)

    def _create_missing_tables(self, tables: list[TablePlan]) -> None:
        """Create every missing target table of this run at once, parents before children (the
        path `schema --apply` takes: schema.apply.create_tables). A table that cannot be created
        fails the sources that feed it, when they are prepared."""
        ep = self.conns.target_ep
        wanted = {t.target_name: t for t in tables}
        try:
            with session(ep, "target") as conn:  # foreign_key_checks=0, as every target session
                dbs = sorted({t.target_database for t in wanted.values()})
                rows = query(conn, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                                   f"IN ({', '.join(['%s'] * len(dbs))})", dbs) if dbs else []
                existing = {f"{r[0]}.{r[1]}" for r in rows}
                missing = [TargetTable(t.target_database, t.target_table, t.target_ddl, [t.id])
                           for name, t in wanted.items() if name not in existing]
                self._created.update(existing & set(wanted))
                for tt in missing:
                    if not tt.ddl:
                        self._create_errors[tt.name] = TargetError(
                            f"target table {tt.name} does not exist and the plan has no DDL for it: "
                            "run `migrator schema PLAN --apply` or re-run `migrator plan`")
                todo = [tt for tt in missing if tt.ddl]
                for db in dict.fromkeys(tt.database for tt in todo):
                    query(conn, f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)}")
                for name, outcome in create_tables(conn, todo).items():
                    if outcome.status in ("created", "exists"):
                        self._created.add(name)
                        log.info("created missing target table %s%s", name,
                                 f" ({'; '.join(outcome.detail)})" if outcome.detail else "")
                    else:
                        self._create_errors[name] = TargetError(
                            f"target {ep.label}: creating {name} for {wanted[name].id} failed: "
                            f"{'; '.join(outcome.detail)}")
        except pymysql.err.MySQLError as exc:
            err = TargetError(f"{describe_error(ep, 'target', exc)} (creating missing target tables)")
            for name in wanted:
                if name not in self._created:
                    self._create_errors.setdefault(name, err)
        except TargetError as exc:  # cannot connect
            for name in wanted:
                self._create_errors.setdefault(name, exc)

    def _ensure_target_table(self, t: TablePlan) -> None:
        """Created up front by _create_missing_tables; raise what went wrong there."""
        err = self._create_errors.get(t.target_name)
        if err is not None:
            raise err

    def _check_empty_target(self, t: TablePlan) -> None:
        """A table copied from scratch must start empty on the target: rows deleted on the source
        since an earlier copy would otherwise stay forever. --restart empties it; else warn."""
        dst = f"{quote_ident(t.target_database)}.{quote_ident(t.target_table)}"
        mine = ""
        if t.source_column:
            mine = f" WHERE {quote_ident(t.source_column)} = " + sqlgen.sql_string_literal(f"{t.source}/{t.database}")
        ep = self.conns.target_ep
        try:
            with self.conns.target() as conn:  # pooled: a fleet's tables do not each open a session
                found = query(conn, f"SELECT 1 FROM {dst}{mine} LIMIT 1")
                conn.commit()
                if not found:
                    return
                if not self.opts.restart:
                    self.warn(f"target table {t.target_name} already holds rows{' of ' + t.id if mine else ''}: "
                                       "copy replaces rows by key, but rows missing on the source stay; use "
                                       "--restart to empty it first")
                    return
                marker = f"{t.target_name}{mine}"
                with self._prepare_lock:
                    if marker in self._emptied:
                        return
                    self._emptied.add(marker)
                with conn.cursor() as cur:
                    cur.execute(f"DELETE FROM {dst}{mine}" if mine else f"TRUNCATE TABLE {dst}")
                conn.commit()
                log.info("--restart: emptied %s%s", t.target_name, mine)
        except pymysql.err.MySQLError as exc:
            raise TargetError(f"{describe_error(ep, 'target', exc)} (checking {t.target_name} for {t.id})") from None

    def _fail_source(self, source: str, exc: MigratorError) -> None:
        self._failed_sources[source] = exc
        for t in self._tables_of(source):
            res = self.results[t.id]
            if res.status != "done":
                res.status, res.error, res.error_kind = "failed", str(exc), type(exc)

    def _tasks(self, state: CopyState) -> list[PendingChunk]:
        """Pending chunks, biggest tables first, interleaved across sources."""
        per_source: dict[str, list] = defaultdict(list)
        for t in sorted(self.plan.active_tables(), key=lambda t: -t.estimated_rows):
            if t.source in self._failed_sources or state.table_complete(t.id):
                continue
            chunks = t.chunks or [Chunk(id=0, estimated_rows=t.estimated_rows)]
            if not t.key:
                chunks = [Chunk(id=chunk_ids(t)[0])]
            for c in chunks:
                cp = state.chunk(t.id, c.id)
                if not cp.done:
                    per_source[t.source].append((t, c, cp.after))
        out: list = []
        queues = list(per_source.values())
        while any(queues):
            for q in queues:
                if q:
                    out.append(q.pop(0))
        return out

    def _copy_chunks(self, state: CopyState) -> None:
        """Schedule pending chunks under the global (--parallel) and per-source bounds, on the
        local threads or the remote workers the executor names. Ctrl-C: copiers stop after their
        current page; committed pages are journaled, the rest is redone on resume."""
        executor = self.executor or make_executor(self.opts.executor, self.opts.parallel, "copy", self.plan.endpoints())
        if executor.remote:
            log.info("copy: chunks run on %s", executor.label)
        scheduler: ChunkScheduler[PendingChunk] = ChunkScheduler(
            self._tasks(state), lambda task: task[0].source, parallel=self.opts.parallel,
            per_source=self.opts.per_source, executor=executor, task_retries=self.opts.task_retries)
        with ThreadPoolExecutor(max_workers=max(1, self.opts.parallel), thread_name_prefix="read") as readers:
            self.readers = readers
            scheduler.run(lambda task: self._submit(executor, *task), self._chunk_finished,
                          skip=lambda task: self.stopping(task[0]), source_done=self.conns.release,
                          lost=self._worker_lost, interrupted=self._stop.set)
        for res in self.results.values():
            if res.status == "pending" and not state.table_complete(res.table.id) and res.table.id in self._failed:
                res.status = "failed"

    def _submit(self, executor: Executor, table: TablePlan, chunk: Chunk, after: list[Any] | None) -> Any:
        if not executor.remote:
            return executor.submit(ChunkCopier(self, table, chunk, after).run)
        task = ChunkTask(table=table, chunk=chunk, after=after,
                         source=executor.ship(self.conns.endpoint(table.source), "source"),
                         target=executor.ship(self.conns.target_ep, "target"), opts=self.opts, shares_target=self.shares_target(table))
        return executor.submit(copy_chunk_task, task, key_hint=f"{table.id}#{chunk.id}")

    def _worker_lost(self, slot: Slot[PendingChunk], exc: BaseException) -> None:
        table, chunk, _ = slot.task
        self.warn(f"{table.id} chunk {chunk.id}: worker lost ({type(exc).__name__}); "
                           f"submitting it again ({slot.attempt}/{self.opts.task_retries})")

    def _chunk_finished(self, slot: Slot[PendingChunk], fut: Any) -> None:
        """Journal a finished chunk's outcome (a remote one's pages); a failed table is recorded."""
        table, chunk, _ = slot.task
        exc = fut.exception()
        if exc is None and self.executor is not None and self.executor.remote:
            exc = self._journal_outcome(table, chunk, fut.result())
        if exc is None:
            return
        if not isinstance(exc, TableFailed):
            raise exc
        if table.id in self._failed:
            return
        self._failed[table.id] = exc
        res = self.results[table.id]
        res.status, res.error, res.error_kind = "failed", str(exc.error), type(exc.error)
        assert self.journal is not None
        self.journal.error(table.id, str(exc.error))
        self.warn(f"{table.id}: {exc.error}")
        if isinstance(exc.error, SourceError) and exc.error.transient:  # the server is gone: stop its other tables too
            self._fail_source(table.source, exc.error)

    def _journal_outcome(self, table: TablePlan, chunk: Chunk, out: ChunkOutcome) -> TableFailed | None:
        """A remote task's pages, journaled here (the only checkpoint writer) after their commits."""
        assert self.journal is not None
        for after, rows, nbytes, done in out.pages:
            self.journal.page(table.id, chunk.id, after, rows, nbytes, done)
            self.count(table, rows, nbytes)
            self.advance(table, rows, nbytes)
        self.timed(out.read_seconds, out.write_seconds)
        for message in out.warnings:
            self.warn(f"[{out.worker}] {message}")
        for reason in out.throttled:
            self._throttled(f"[{out.worker}] {reason}")
        if out.error is None:
            return None
        kind = {"SourceError": SourceError, "TargetError": TargetError}.get(out.error_kind or "", StateError)
        return TableFailed(kind(out.error))

    def _record_end_positions(self) -> None:
        state = CopyState.load(self.workdir, self.plan)
        for src in self.plan.sources:
            tables = self._tables_of(src.name)
            if not tables or src.name in self._failed_sources or not state.source_complete(src.name):
                continue
            start = state.start_position(src.name)
            if start is None or state.end_position(src.name) is not None:
                continue
            try:
                with session(self.conns.endpoint(src.name), "source") as conn:
                    end = read_position(conn)
            except (SourceError, pymysql.err.MySQLError) as exc:
                self.warn(f"source {src.name}: copy finished but its end position could not be read "
                                   f"({exc}); rerun `migrator copy` to record it")
                continue
            write_position(self.workdir, src.name, start, end)


def run_copy(plan: Plan, workdir: WorkDir, opts: CopyOptions | None = None, reporter: Progress | None = None,
             plan_path: str | Path | None = None) -> CopyResult:
    """Copy every active table of the plan; raise the typed error when anything did not finish."""
    result = CopyRunner(plan, workdir, opts or CopyOptions(), reporter, plan_path).run()
    failed = [t for t in result.tables if t.status != "done"]
    if failed:
        kinds = {t.error_kind for t in failed if t.error_kind}
        cls: type[MigratorError] = TargetError if TargetError in kinds else (
            SourceError if SourceError in kinds else StateError)
        lines = "; ".join(f"{t.table.id}: {t.error}" for t in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise cls(f"copy did not finish for {len(failed)} of {len(result.tables)} table(s): {lines}{more}. "
                  "Rerun `migrator copy` after fixing: finished chunks are kept")
    return result
