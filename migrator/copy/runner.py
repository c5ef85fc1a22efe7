"""The copy runner: every active table's chunks, in parallel, checkpointed after each commit.

Work unit: a page of one plan chunk, read by keyset (`key > last AND key <= upper ORDER BY key
LIMIT n`) with n adapted so a page takes about `page_seconds`; the page is written in one
target transaction (multi-row REPLACE: a replayed page neither duplicates nor fails) and its
last key is journaled only after the commit. Resume continues each chunk after its last
journaled key; a page committed but not journaled is simply written again. While a page is
written, the chunk's next page is already being read (read-ahead).

A fresh chunk the plan estimates under WHOLE_CHUNK_BYTES skips paging: one aggregated read,
one transaction, one journal record; any doubt (cut result, rejected row) falls back to pages.

Threads, not processes: the source renders rows as SQL literals (sqlgen), so Python only moves
bytes and the GIL is rarely the limit. The coordinating thread schedules chunks under a global
bound and a per-source bound; workers keep one source and one target connection each.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pymysql
import pymysql.cursors

from ..db import REFUSED_ERRORS, connect, describe_error, error_code, is_transient, query, quote_ident, session
from ..endpoint import Endpoint
from ..errors import MigratorError, SourceError, StateError, TargetError
from ..plan.model import Chunk, Plan, TablePlan, decode_key_value, encode_key_value
from ..schema.apply import TargetTable, create_tables
from ..executor import Executor, make_executor
from ..positions import read_position, read_start_position
from ..throttle import Throttle, ThrottleOptions
from ..workdir import WorkDir
from . import sqlgen
from .shape import RunContext, check_plan_columns, read_shape
from .state import CopyJournal, CopyState, chunk_ids, compact_journal, write_position

log = logging.getLogger(__name__)

FAULT_ENV = "MIGRATOR_COPY_FAULT"  # tests: "point:n[:pause]" kills (or pauses) at the n-th hit; n="*": every hit
# Measured on seekdb (4 writers, 200k rows of ~165 B): 1-2 MB statements ingest fastest; 4 MB
# statements took twice as long, 250 KB ones 1.5x. REPLACE and INSERT ran at the same speed.
MAX_STATEMENT_BYTES = 1024 * 1024
MAX_PAGE_BYTES = 16 * 1024 * 1024
FIRST_PAGE_BYTES = 4 * 1024 * 1024
# A chunk estimated below this is read in one GROUP_CONCAT: one result row instead of one per
# row, which cut the copy process's CPU per row by 7x (pymysql parses rows in Python).
WHOLE_CHUNK_BYTES = 24 * 1024 * 1024
PREPARE_PARALLEL = 8  # sources checked and positioned at once before copying


@dataclass
class CopyOptions:
    parallel: int = 4
    per_source: int = 2
    restart: bool = False
    page_seconds: float = 1.0
    initial_page_rows: int = 0  # 0: from the plan's row size estimate (FIRST_PAGE_BYTES)
    min_page_rows: int = 100
    max_page_rows: int = 50_000
    retries: int = 5
    retry_delay: float = 0.5
    verb: str = "REPLACE"
    whole_chunks: bool = True  # small fresh chunks in one GROUP_CONCAT read (falls back to pages)
    aggregated_pages: bool = True  # pages as one GROUP_CONCAT each (falls back to rows when cut)
    target_connections: int = 0  # most target connections at once; 0: one per running chunk
    max_source_threads_running: int = 25  # reads wait while a source runs more; 0: never wait
    executor: str | None = None  # None/"local": threads here; "dask://host:port": Dask workers
    task_retries: int = 3  # a chunk whose Dask worker died is submitted again this often


@dataclass
class TableResult:
    table: TablePlan
    status: str = "pending"  # done | failed | skipped | pending
    rows: int = 0  # copied so far, earlier runs included
    bytes: int = 0
    earlier_rows: int = 0  # of which copied by earlier runs
    error: str | None = None
    error_kind: type[MigratorError] | None = None


@dataclass
class CopyResult:
    tables: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status == "done" for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def rows_this_run(self) -> int:
        return sum(t.rows - t.earlier_rows for t in self.tables)


class Reporter(Protocol):
    def start(self, plan: Plan, state: CopyState) -> None: ...
    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None: ...
    def warn(self, message: str) -> None: ...
    def finish(self, result: CopyResult) -> None: ...


class NullReporter:
    def start(self, plan: Plan, state: CopyState) -> None:
        pass

    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None:
        pass

    def warn(self, message: str) -> None:
        log.warning("%s", message)

    def finish(self, result: CopyResult) -> None:
        pass


@dataclass
class Page:
    """One read page of a chunk: rows (key values after the rendering) or ready statements."""

    lower: list[Any] | None  # exclusive bound it was read from
    limit: int
    count: int
    last: list[Any] | None  # its last key (bound form), or the chunk's upper bound when done
    done: bool  # the chunk ends with this page
    rows: list[tuple] | None = None
    statements: list[bytes] | None = None
    read_seconds: float = 0.0


class TableFailed(Exception):
    """Stops one table (carries the typed error the user sees)."""

    def __init__(self, error: MigratorError):
        super().__init__(str(error))
        self.error = error


# ------------------------------------------------------------------ fault hooks (tests)

_fault_lock = threading.Lock()
_fault_hits: dict[str, int] = defaultdict(int)


def fault_point(name: str) -> None:
    """Kill (or pause) this process at the n-th time `name` is reached, per MIGRATOR_COPY_FAULT."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    n, _, pause = rest.partition(":")
    with _fault_lock:
        _fault_hits[name] += 1
        hit = n == "*" or _fault_hits[name] == int(n or 1)
    if not hit:
        return
    if pause:
        time.sleep(float(pause))
    else:
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------ connections


class Connections:
    """Checked-out connections: idle ones are pooled per instance, so a source never has more
    connections than chunks reading it at once (<= per_source), and the target never more than
    `target_limit` (writers wait for a free one). A connection that failed is closed, not pooled."""

    def __init__(self, sources: dict[str, Endpoint], target: Endpoint, target_limit: int = 0):
        self._endpoints = dict(sources)
        self.target_ep = target
        self._idle: dict[str, list[pymysql.connections.Connection]] = defaultdict(list)
        self._lock = threading.Lock()
        self._open: dict[str, int] = defaultdict(int)
        self._target_slots = threading.BoundedSemaphore(target_limit) if target_limit > 0 else None
        self.peak: dict[str, int] = defaultdict(int)  # most connections open at once, per instance

    @classmethod
    def for_plan(cls, plan: Plan, target_limit: int = 0) -> Connections:
        return cls({s.name: s.endpoint() for s in plan.sources}, plan.target.endpoint(), target_limit)

    def endpoint(self, source: str) -> Endpoint:
        return self._endpoints[source]

    @contextmanager
    def source(self, source: str) -> Iterator[pymysql.connections.Connection]:
        with self._checkout(source, "source") as conn:
            yield conn

    @contextmanager
    def target(self) -> Iterator[pymysql.connections.Connection]:
        if self._target_slots is not None:
            self._target_slots.acquire()
        try:
            with self._checkout("\0target", "target") as conn:
                yield conn
        finally:
            if self._target_slots is not None:
                self._target_slots.release()

    @contextmanager
    def _checkout(self, name: str, role: str) -> Iterator[pymysql.connections.Connection]:
        with self._lock:
            conn = self._idle[name].pop() if self._idle[name] else None
            if conn is None:
                self._open[name] += 1
                self.peak[name] = max(self.peak[name], self._open[name])
        if conn is None:
            try:
                conn = self._connect(name, role)
            except BaseException:
                with self._lock:
                    self._open[name] -= 1
                raise
        try:
            yield conn
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError, SourceError, TargetError):
            self._close(name, conn)  # lost or broken: the retry opens a fresh one
            raise
        except BaseException:
            if role == "target":
                _rollback(conn)
            with self._lock:
                self._idle[name].append(conn)
            raise
        with self._lock:
            self._idle[name].append(conn)

    def _connect(self, name: str, role: str) -> pymysql.connections.Connection:
        """A fresh session; connect's typed error says whether retrying can help (`transient`)."""
        ep = self.endpoint(name) if role == "source" else self.target_ep
        conn = connect(ep, role, autocommit=role == "source", read_timeout=3600)
        if role == "source":
            try:
                with conn.cursor() as cur:  # whole-chunk reads: as long as a packet may be
                    cur.execute("SET SESSION group_concat_max_len = @@max_allowed_packet")
            except BaseException:
                conn.close()  # not pooled: the caller's retry opens another
                raise
        return conn

    def _close(self, name: str, conn: pymysql.connections.Connection) -> None:
        with self._lock:
            self._open[name] -= 1
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass

    def release_source(self, source: str) -> None:
        """Close a source's idle connections (its chunks are all done: free its slots)."""
        with self._lock:
            idle, self._idle[source] = self._idle.pop(source, []), []
        for conn in idle:
            self._close(source, conn)

    def close_all(self) -> None:
        with self._lock:
            pools = list(self._idle.items())
            self._idle.clear()
        for name, idle in pools:
            for conn in idle:
                self._close(name, conn)


def _retryable(exc: BaseException) -> bool:
    """Lost connections, restarts, deadlocks: yes. A refusal (wrong password, missing grant, missing
    table, bad TLS) would only fail again after the backoff: it is reported at once."""
    if isinstance(exc, MigratorError):
        return exc.transient  # set by db.connect: connection-level failures only
    return is_transient(exc)


def retrying(fn: Callable[[], Any], *, what: str, opts: CopyOptions, on_error: Callable[[], None],
             reporter: Reporter) -> Any:
    """Run fn; on a transient error or lost server, drop the connection and retry with backoff."""
    for attempt in range(1, opts.retries + 1):
        try:
            return fn()
        except (pymysql.err.MySQLError, OSError, SourceError, TargetError) as exc:
            on_error()
            if attempt >= opts.retries or not _retryable(exc):
                raise
            delay = min(15.0, opts.retry_delay * 2 ** (attempt - 1)) * (0.5 + random.random())
            reporter.warn(f"{what}: {exc}; retry {attempt}/{opts.retries - 1} in {delay:.1f}s")
            time.sleep(delay)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ one chunk


class ChunkCopier:
    """Copies one plan chunk page by page, from its last journaled key to its upper bound."""

    def __init__(self, runner: CopyRunner, table: TablePlan, chunk: Chunk, after: list[Any] | None):
        self.r = runner
        self.table = table
        self.chunk = chunk
        self.lower = [decode_key_value(v) for v in after] if after is not None else (
            [decode_key_value(v) for v in chunk.lower] if chunk.lower is not None else None)
        self.upper = [decode_key_value(v) for v in chunk.upper] if chunk.upper is not None else None
        self.prefix = sqlgen.insert_prefix(table, runner.opts.verb)
        self.resumed = after is not None

    def run(self) -> None:
        if not self.table.key:
            self._run_keyless()
            return
        if self._whole_chunk_fits() and self._copy_whole_chunk():
            return
        # Read-ahead: the next page is read (source + parsing) while this one is written, so the
        # target always has a writer per running chunk.
        pending: Future | None = self._prefetch(self.lower, self.r.page_rows(self.table))
        while pending is not None:
            page: Page = pending.result()
            pending = None
            if not page.count and page.done:
                self._journal(None, 0, 0, done=True)
                return
            if self.r.stopping(self.table):
                return
            if not page.done:
                pending = self._prefetch(page.last, self.r.page_rows(self.table))
            t1 = time.monotonic()
            try:
                nbytes = self._write_page(page)
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            write_seconds = time.monotonic() - t1
            self.r.timed(page.read_seconds, write_seconds)
            fault_point("after_commit")
            after = self.chunk.upper if page.done and page.rows is None else [encode_key_value(v) for v in page.last]
            self._journal(after, page.count, nbytes, done=page.done)
            fault_point("after_journal")
            self.r.reporter.advance(self.table, page.count, nbytes)
            self.r.adapt(self.table, page.limit, page.count if not page.done else 0, nbytes,
                         page.read_seconds + write_seconds)

    def _write_page(self, page: Page) -> int:
        if page.rows is not None:
            return self._write(page.rows)
        if not page.statements:  # rows deleted between the bound and the read: nothing to write
            return 0
        try:
            return self._write_statements(page.statements, None)
        except _RejectedBatch:  # read the page's range again row by row to name the row the target refuses
            return self._write_rows_between(page.lower, page.last if not page.done else self.upper, page.limit)

    def _write_rows_between(self, lower: list[Any] | None, upper: list[Any] | None, limit: int) -> int:
        """Every row of (lower, upper], read and written in row pages (a rejected row is named)."""
        nbytes = 0
        while True:
            rows = self._read_page(lower, limit, upper)
            if rows:
                nbytes += self._write(rows)
            if len(rows) < limit:
                return nbytes
            lower = list(rows[-1][1:])

    def _whole_chunk_fits(self) -> bool:
        t, c = self.table, self.chunk
        if not self.r.opts.whole_chunks or self.resumed or not c.estimated_rows or not t.estimated_rows:
            return False
        return c.estimated_rows * max(t.estimated_bytes / t.estimated_rows, 50) <= WHOLE_CHUNK_BYTES

    def _copy_whole_chunk(self) -> bool:
        """The chunk in one aggregated read and one target transaction; False: use pages instead
        (result cut by group_concat_max_len, a NULL rendering, or a row the target rejects, which
        the page path narrows down to its key)."""
        sql, args = sqlgen.whole_chunk_select(self.table, self.lower, self.upper)
        src = self.table.source

        def read() -> tuple[int, bytes | None, int]:
            with self.r.conns.source(src) as conn:
                self.r.throttle.source_wait(src, conn)
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    count, blob, limit = cur.fetchone()
            fault_point("page_read")
            return int(count), blob, int(limit)

        t0 = time.monotonic()
        count, blob, limit = self._with_source_retry(read)
        got = blob.count(b"\0") + 1 if blob else 0
        if got != count or (blob is not None and len(blob) >= limit):  # cut by group_concat_max_len
            log.info("%s chunk %s: aggregated read incomplete (%d of %d rows); reading it in pages",
                     self.table.id, self.chunk.id, got, count)
            return False
        t1 = time.monotonic()
        # statements cut straight from the blob at row boundaries: no per-row objects
        statements = sqlgen.blob_statements(self.prefix, blob, MAX_STATEMENT_BYTES) if blob else []
        del blob
        if statements:
            try:
                nbytes = self._write_statements(statements, None)
            except _RejectedBatch:
                return False
        else:
            nbytes = 0
        self.r.timed(t1 - t0, time.monotonic() - t1)
        fault_point("after_commit")
        self._journal(self.chunk.upper, count, nbytes, done=True)
        fault_point("after_journal")
        self.r.reporter.advance(self.table, count, nbytes)
        return True

    def _prefetch(self, lower: list[Any] | None, limit: int) -> Future:
        def read() -> Page:
            t0 = time.monotonic()
            page = self._read_aggregated_page(lower, limit) if self.r.opts.aggregated_pages else None
            if page is None:
                rows = self._read_page(lower, limit)
                page = Page(lower, limit, len(rows), list(rows[-1][1:]) if rows else None, len(rows) < limit, rows=rows)
            page.read_seconds = time.monotonic() - t0
            return page

        return self.r.readers.submit(read)

    def _read_aggregated_page(self, lower: list[Any] | None, limit: int) -> Page | None:
        """The next `limit` rows as one aggregated value: first the page's last key (a key-only
        scan), then the rows up to it in one GROUP_CONCAT, cut into statements without per-row
        objects. None: the result was cut (group_concat_max_len), read rows instead."""
        bound_sql, bound_args = sqlgen.page_bound_select(self.table, lower, self.upper, limit)
        src = self.table.source

        def read() -> tuple[list[Any] | None, int, bytes | None, int]:
            with self.r.conns.source(src) as conn:
                self.r.throttle.source_wait(src, conn)
                with conn.cursor() as cur:
                    cur.execute(bound_sql, bound_args)
                    row = cur.fetchone()
                    last = list(row) if row else None
                    sql, args = sqlgen.whole_chunk_select(self.table, lower, last if last is not None else self.upper)
                    cur.execute(sql, args)
                    count, blob, max_len = cur.fetchone()
            fault_point("page_read")
            return last, int(count), blob, int(max_len)

        last, count, blob, max_len = self._with_source_retry(read)
        got = blob.count(b"\0") + 1 if blob else 0
        if got != count or (blob is not None and len(blob) >= max_len):
            self.r.shrink(self.table, limit)
            return None
        statements = sqlgen.blob_statements(self.prefix, blob, MAX_STATEMENT_BYTES) if blob else []
        # fewer than `limit` rows were left: this page ends the chunk
        return Page(lower, limit, count, last if last is not None else self.upper, last is None, statements=statements)

    def _journal(self, after: list[Any] | None, rows: int, nbytes: int, done: bool) -> None:
        self.r.journal.page(self.table.id, self.chunk.id, after, rows, nbytes, done)
        self.r.count(self.table, rows, nbytes)

    def _read_page(self, lower: list[Any] | None, limit: int, upper: list[Any] | None = None) -> list[tuple]:
        sql, args = sqlgen.page_select(self.table, lower, upper if upper is not None else self.upper, limit)
        src = self.table.source

        def read() -> list[tuple]:
            with self.r.conns.source(src) as conn:
                self.r.throttle.source_wait(src, conn)
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    rows = cur.fetchall()
            fault_point("page_read")
            return rows

        rows = self._with_source_retry(read)
        self._check_rendered(rows)
        return list(rows)

    def _with_source_retry(self, fn: Callable[[], Any]) -> Any:
        src = self.table.source
        ep = self.r.conns.endpoint(src)
        try:
            return retrying(fn, what=f"read {self.table.id}", opts=self.r.opts,
                            on_error=lambda: None, reporter=self.r.reporter)
        except pymysql.err.MySQLError as exc:
            err = SourceError(f"{describe_error(ep, 'source', exc)} (reading {self.table.source_name})")
            err.transient = is_transient(exc)  # a refusal (grant, missing table) fails this table only
            raise TableFailed(err) from None
        except OSError as exc:
            err = SourceError(f"source {src}: {exc} (reading {self.table.source_name})")
            err.transient = True
            raise TableFailed(err) from None
        except SourceError as exc:
            raise TableFailed(exc) from None

    def _check_rendered(self, rows: Any) -> None:
        for row in rows:
            if row[0] is None:  # CONCAT beyond the source's max_allowed_packet gives NULL
                raise TableFailed(SourceError(
                    f"source {self.table.source}: table {self.table.source_name}: row with key "
                    f"{self._key_text(row[1:])} is larger than the source's max_allowed_packet; raise "
                    "max_allowed_packet on the source and rerun"))

    def _run_keyless(self) -> None:
        """Copy-only table without a key: stream every row into one target transaction that first
        deletes this source's rows (so a rerun replaces, never duplicates). Memory stays bounded."""
        src, ep, tgt_ep = self.table.source, self.r.conns.endpoint(self.table.source), self.r.conns.target_ep
        if not self.table.source_column and self.r.shares_target(self.table):
            raise TableFailed(StateError(
                f"{self.table.id} has no key and shares target table {self.table.target_name} with other "
                "sources without a source column: a rerun could not tell their rows apart. Add a key, "
                "or plan with --with-source-column"))

        def copy_all() -> tuple[int, int]:
            src_conn = connect(ep, "source", cursorclass=pymysql.cursors.SSCursor, read_timeout=3600)
            rows = nbytes = 0
            try:
                self.r.throttle.source_wait(src, src_conn)
                with self.r.conns.target() as tgt:
                    try:
                        with src_conn.cursor() as scur, tgt.cursor() as tcur:
                            tcur.execute(self._clear_sql())
                            scur.execute(sqlgen.full_select(self.table))
                            while batch := scur.fetchmany(2000):
                                self._check_rendered(batch)
                                for _, _, stmt in self._statements(list(batch)):
                                    tcur.execute(stmt)
                                    nbytes += len(stmt)
                                rows += len(batch)
                        fault_point("before_commit")
                        tgt.commit()
                    except BaseException:
                        _rollback(tgt)
                        raise
            finally:
                src_conn.close()
            return rows, nbytes

        try:
            rows, nbytes = retrying(copy_all, what=f"copy {self.table.id}", opts=self.r.opts,
                                    on_error=lambda: None, reporter=self.r.reporter)
        except pymysql.err.MySQLError as exc:
            role = "source" if error_code(exc) in (2002, 2003, 2006, 2013) else "target"
            cls = SourceError if role == "source" else TargetError
            where = describe_error(ep if role == "source" else tgt_ep, role, exc)
            raise TableFailed(cls(f"{where} (copying keyless table {self.table.id} -> {self.table.target_name})")) from None
        except (SourceError, TargetError) as exc:
            raise TableFailed(exc) from None
        fault_point("after_commit")
        self._journal(None, rows, nbytes, done=True)
        self.r.reporter.advance(self.table, rows, nbytes)

    # ---- target side
    def _statements(self, rows: list[tuple]) -> list[tuple[int, int, bytes]]:
        """(first row index, end index, statement) of at most MAX_STATEMENT_BYTES each."""
        out = []
        start, size = 0, len(self.prefix)
        for i, row in enumerate(rows):
            n = len(row[0]) + 1
            if i > start and size + n > MAX_STATEMENT_BYTES:
                out.append((start, i, self.prefix + b",".join(r[0] for r in rows[start:i])))
                start, size = i, len(self.prefix)
            size += n
        if start < len(rows):
            out.append((start, len(rows), self.prefix + b",".join(r[0] for r in rows[start:])))
        return out

    def _clear_sql(self) -> str | None:
        dst = f"{quote_ident(self.table.target_database)}.{quote_ident(self.table.target_table)}"
        if self.table.source_column:
            return f"DELETE FROM {dst} WHERE {quote_ident(self.table.source_column)} = " + \
                sqlgen.sql_string_literal(f"{self.table.source}/{self.table.database}")
        return f"DELETE FROM {dst}"

    def _write(self, rows: list[tuple], clear: bool = False) -> int:
        return self._write_statements([stmt for _, _, stmt in self._statements(rows)], rows, clear)

    def _write_statements(self, statements: list[bytes], rows: list[tuple] | None, clear: bool = False) -> int:
        """Statements in one target transaction; a rejected row is narrowed down to its key when
        the rows (with their keys) are known, else _RejectedBatch (the caller reads pages)."""
        nbytes = sum(len(s) for s in statements)

        def write() -> None:
            self.r.throttle.target_wait()
            with self.r.conns.target() as conn:
                try:
                    with conn.cursor() as cur:
                        if clear:
                            cur.execute(self._clear_sql())
                        for stmt in statements:
                            cur.execute(stmt)
                    fault_point("before_commit")
                    t0 = time.monotonic()
                    conn.commit()
                    self.r.throttle.commit_took(time.monotonic() - t0)
                except pymysql.err.MySQLError:
                    _rollback(conn)
                    raise

        ep = self.r.conns.target_ep
        try:
            retrying(write, what=f"write {self.table.target_name}", opts=self.r.opts,
                     on_error=lambda: None, reporter=self.r.reporter)
        except pymysql.err.MySQLError as exc:
            if is_transient(exc) or error_code(exc) in REFUSED_ERRORS:  # not a bad row: no narrowing
                raise TableFailed(TargetError(f"{describe_error(ep, 'target', exc)} (writing {self.table.target_name})")) from None
            if rows is None:
                raise _RejectedBatch() from None
            raise TableFailed(self._narrow(rows, exc)) from None
        except OSError as exc:
            raise TableFailed(TargetError(f"target {ep.label}: {exc} (writing {self.table.target_name})")) from None
        except TargetError as exc:
            raise TableFailed(exc) from None
        return nbytes

    def _narrow(self, rows: list[tuple], exc: pymysql.err.MySQLError) -> TargetError:
        """Bisect the rejected page down to the row the target refuses; name its key and the error."""
        lo, hi, err = 0, len(rows), exc
        try:
            with self.r.conns.target() as conn:
                lo, hi, err = self._bisect(conn, rows, exc)
        except (pymysql.err.MySQLError, OSError, TargetError):
            pass
        code = error_code(err)
        msg = err.args[-1] if err.args else str(err)
        key = self._key_text(rows[lo][1:]) if self.table.key else "(table has no key)"
        return TargetError(
            f"target rejected a row of {self.table.id} -> {self.table.target_name}, key {key}: "
            f"error {code}: {msg} (fix the target column or the source row)")

    def _bisect(self, conn: pymysql.connections.Connection, rows: list[tuple],
                exc: pymysql.err.MySQLError) -> tuple[int, int, pymysql.err.MySQLError]:
        lo, hi, err = 0, len(rows), exc
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                with conn.cursor() as cur:
                    for stmt_rows in _split(rows[lo:mid], MAX_STATEMENT_BYTES):
                        cur.execute(self.prefix + b",".join(r[0] for r in stmt_rows))
                _rollback(conn)
                lo = mid
            except pymysql.err.MySQLError as e:
                _rollback(conn)
                hi, err = mid, e
        try:
            with conn.cursor() as cur:
                cur.execute(self.prefix + rows[lo][0])
        except pymysql.err.MySQLError as e:
            err = e
        _rollback(conn)
        return lo, hi, err

    def _key_text(self, values: Any) -> str:
        return "(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.table.key, values)) + ")"


class _RejectedBatch(Exception):
    """The target refused a batch read without keys: redo it in pages to name the row."""


def _split(rows: list[tuple], limit: int) -> list[list[tuple]]:
    out, cur, size = [], [], 0
    for r in rows:
        if cur and size + len(r[0]) > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(r)
        size += len(r[0]) + 1
    if cur:
        out.append(cur)
    return out


def _rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except (pymysql.err.MySQLError, OSError):
        pass


# ------------------------------------------------------------------ the run


class PageSizing:
    """Page size per table, adapted to page_seconds; shared by the runner and remote tasks."""

    opts: CopyOptions
    _lock: threading.Lock
    _page_rows: dict[str, int]

    def page_rows(self, table: TablePlan) -> int:
        with self._lock:
            return self._page_rows.get(table.id) or self.first_page_rows(table)

    def first_page_rows(self, table: TablePlan) -> int:
        if self.opts.initial_page_rows:
            return self.opts.initial_page_rows
        row_bytes = table.estimated_bytes / table.estimated_rows if table.estimated_rows and table.estimated_bytes else 200
        rows = int(FIRST_PAGE_BYTES / max(row_bytes, 20))
        return max(self.opts.min_page_rows, min(self.opts.max_page_rows, rows))

    def shrink(self, table: TablePlan, limit: int) -> None:
        """A page too long for one aggregated value: halve the table's pages."""
        with self._lock:
            self._page_rows[table.id] = max(self.opts.min_page_rows, limit // 2)

    def adapt(self, table: TablePlan, limit: int, rows: int, nbytes: int, seconds: float) -> None:
        """Aim the next page at page_seconds (within 0.5x..2x of this one) and MAX_PAGE_BYTES."""
        if rows < limit:
            return
        factor = max(0.5, min(2.0, self.opts.page_seconds / max(seconds, 1e-3)))
        new = int(limit * factor)
        if nbytes:
            new = min(new, int(limit * MAX_PAGE_BYTES / nbytes))
        with self._lock:
            self._page_rows[table.id] = max(self.opts.min_page_rows, min(self.opts.max_page_rows, new))



class CopyRunner(PageSizing):
    def __init__(self, plan: Plan, workdir: WorkDir, opts: CopyOptions, reporter: Reporter | None = None,
                 plan_path: str | Path | None = None):
        self.plan = plan
        self.workdir = workdir
        self.opts = opts
        self.reporter = reporter or NullReporter()
        self.plan_path = plan_path
        self.conns = Connections.for_plan(plan, opts.target_connections)
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
        self.throttle = Throttle(ThrottleOptions(max_threads_running=opts.max_source_threads_running),
                                 notify=self._throttled)

    def _throttled(self, reason: str | None) -> None:
        """Show why copying slowed down (progress view), or that it stopped being slowed."""
        show = getattr(self.reporter, "throttled", None)
        if show is not None:
            show(reason)
        elif reason:
            self.reporter.warn(f"throttling: {reason}")

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
            self.executor = make_executor(self.opts.executor, self.opts.parallel, "copy")
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
            self.reporter.start(self.plan, state)
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
            self.workdir.unlock()
        result = CopyResult(tables=list(self.results.values()), seconds=time.monotonic() - t0)
        log.info("copy took %.1fs: prepare %.1fs; summed over workers: read %.1fs, write %.1fs",
                 result.seconds, self.timing["prepare"], self.timing["read"], self.timing["write"])
        for res in result.tables:
            if res.status == "pending":
                res.status = "done"
        self.reporter.finish(result)
        return result

    def _clear(self) -> None:
        shutil.rmtree(self.workdir.root / "copy", ignore_errors=True)
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
        conn = retrying(lambda: connect(ep, "source"), what=f"connect to source {source}", opts=self.opts,
                        on_error=lambda: None, reporter=self.reporter)
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
            shape = read_shape(conn, t.database, t.table)
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
                self.reporter.warn(f"source {source}: {exc}; only copy-only tables, so no sync start is recorded")
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
                    self.reporter.warn(f"target table {t.target_name} already holds rows{' of ' + t.id if mine else ''}: "
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

    def _tasks(self, state: CopyState) -> list[tuple[TablePlan, Chunk, list[Any] | None]]:
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
        local threads or the remote workers the executor names."""
        pending: list[tuple[TablePlan, Chunk, list[Any] | None, int]] = [(t, c, a, 1) for t, c, a in self._tasks(state)]
        running: dict[Any, tuple[TablePlan, Chunk, list[Any] | None, int]] = {}
        busy: dict[str, int] = defaultdict(int)
        left = Counter(t.source for t, _, _, _ in pending)
        executor = self.executor or make_executor(self.opts.executor, self.opts.parallel, "copy")
        if executor.remote:
            log.info("copy: chunks run on %s", executor.label)
        with ThreadPoolExecutor(max_workers=max(1, self.opts.parallel), thread_name_prefix="read") as readers:
            self.readers = readers
            while pending or running:
                i = 0
                while i < len(pending) and len(running) < self.opts.parallel:
                    table, chunk, after, attempt = pending[i]
                    if self.stopping(table):
                        pending.pop(i)
                        left[table.source] -= 1
                        continue
                    if busy[table.source] >= self.opts.per_source:
                        i += 1
                        continue
                    pending.pop(i)
                    busy[table.source] += 1
                    running[self._submit(executor, table, chunk, after)] = (table, chunk, after, attempt)
                if not running:
                    break
                try:
                    done = executor.wait_first(running)
                except KeyboardInterrupt:
                    self._stop.set()  # committed pages are journaled; the rest is redone on resume
                    for fut in running:
                        fut.cancel()
                    raise
                for fut in done:
                    table, chunk, after, attempt = running.pop(fut)
                    busy[table.source] -= 1
                    if self._chunk_finished(table, chunk, fut, attempt, executor):
                        pending.insert(0, (table, chunk, after, attempt + 1))
                        continue
                    left[table.source] -= 1
                    if left[table.source] <= 0 and busy[table.source] == 0:
                        self.conns.release_source(table.source)  # done: its connections are closed
        for res in self.results.values():
            if res.status == "pending" and not state.table_complete(res.table.id) and res.table.id in self._failed:
                res.status = "failed"

    def _submit(self, executor: Executor, table: TablePlan, chunk: Chunk, after: list[Any] | None) -> Any:
        if not executor.remote:
            return executor.submit(ChunkCopier(self, table, chunk, after).run)
        task = ChunkTask(table=table, chunk=chunk, after=after, source=self.conns.endpoint(table.source),
                         target=self.conns.target_ep, opts=self.opts, shares_target=self.shares_target(table))
        return executor.submit(copy_chunk_task, task, key_hint=f"{table.id}#{chunk.id}")

    def _chunk_finished(self, table: TablePlan, chunk: Chunk, fut: Any, attempt: int, executor: Executor) -> bool:
        """Journal a finished chunk's outcome; True: submit it again (its worker was lost)."""
        exc = fut.exception()
        if exc is not None and executor.remote and executor.is_lost_worker(exc) and attempt <= self.opts.task_retries:
            self.reporter.warn(f"{table.id} chunk {chunk.id}: worker lost ({type(exc).__name__}); "
                               f"submitting it again ({attempt}/{self.opts.task_retries})")
            return True
        if exc is None and executor.remote:
            exc = self._journal_outcome(table, chunk, fut.result())
        if exc is None:
            return False
        if not isinstance(exc, TableFailed):
            raise exc
        if table.id in self._failed:
            return False
        self._failed[table.id] = exc
        res = self.results[table.id]
        res.status, res.error, res.error_kind = "failed", str(exc.error), type(exc.error)
        assert self.journal is not None
        self.journal.error(table.id, str(exc.error))
        self.reporter.warn(f"{table.id}: {exc.error}")
        if isinstance(exc.error, SourceError) and exc.error.transient:  # the server is gone: stop its other tables too
            self._fail_source(table.source, exc.error)
        return False

    def _journal_outcome(self, table: TablePlan, chunk: Chunk, out: ChunkOutcome) -> TableFailed | None:
        """A remote task's pages, journaled here (the only checkpoint writer) after their commits."""
        assert self.journal is not None
        for after, rows, nbytes, done in out.pages:
            self.journal.page(table.id, chunk.id, after, rows, nbytes, done)
            self.count(table, rows, nbytes)
            self.reporter.advance(table, rows, nbytes)
        self.timed(out.read_seconds, out.write_seconds)
        for message in out.warnings:
            self.reporter.warn(f"[{out.worker}] {message}")
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
                self.reporter.warn(f"source {src.name}: copy finished but its end position could not be read "
                                   f"({exc}); rerun `migrator copy` to record it")
                continue
            write_position(self.workdir, src.name, start, end)


def run_copy(plan: Plan, workdir: WorkDir, opts: CopyOptions | None = None, reporter: Reporter | None = None,
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


# ------------------------------------------------------------------ remote tasks (Dask workers)


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


class _WarningList(NullReporter):
    def __init__(self, out: ChunkOutcome):
        self.out = out

    def warn(self, message: str) -> None:
        self.out.warnings.append(message)


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
        self.conns = Connections({task.table.source: task.source}, task.target)
        self.reporter = _WarningList(out)
        self.journal = _PageList(out)
        self.readers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read")
        self.throttle = _throttle_for(task.opts)

    def stopping(self, table: TablePlan) -> bool:
        return False

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
        ChunkCopier(ctx, task.table, task.chunk, task.after).run()  # type: ignore[arg-type]
    except TableFailed as exc:
        out.error, out.error_kind = str(exc.error), type(exc.error).__name__
    finally:
        ctx.close()
    out.throttled = ctx.throttle.events[seen:]
    return out
