"""Copying one plan chunk: keyset pages with read-ahead, or the whole chunk in one aggregated
read; each page written in one target transaction and journaled after its commit. A row the
target rejects is narrowed down to its key.

The copier runs beside its host: the CopyRunner in this process, or a remote task's context on
a Dask worker (copy/remote.py). Both give it what CopierHost lists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pymysql
import pymysql.cursors

from ..db import REFUSED_ERRORS, connect, describe_error, error_code, is_transient, quote_ident
from ..endpoint import Endpoint
from ..engine.pool import Pool, rollback
from ..engine.retry import is_transient_or_typed, with_retry
from ..errors import SourceError, StateError, TargetError
from ..keys import PaginationKey
from ..plan.model import Chunk, TablePlan
from ..throttle import Throttle
from . import sqlgen
from .contracts import CopyOptions, TableFailed
from .faults import fault_point

log = logging.getLogger(__name__)

# Measured on seekdb (4 writers, 200k rows of ~165 B): 1-2 MB statements ingest fastest; 4 MB
# statements took twice as long, 250 KB ones 1.5x. REPLACE and INSERT ran at the same speed.
MAX_STATEMENT_BYTES = 1024 * 1024
# A chunk estimated below this is read in one GROUP_CONCAT: one result row instead of one per
# row, which cut the copy process's CPU per row by 7x (pymysql parses rows in Python).
WHOLE_CHUNK_BYTES = 24 * 1024 * 1024


class PageJournal(Protocol):
    def page(self, table_id: str, chunk_id: int, after: list[Any] | None, rows: int, nbytes: int,
             done: bool) -> None: ...


class CopierHost(Protocol):
    """What a ChunkCopier uses of the run it belongs to."""

    @property
    def opts(self) -> CopyOptions: ...
    @property
    def conns(self) -> Pool: ...
    @property
    def throttle(self) -> Throttle: ...
    @property
    def journal(self) -> PageJournal | None: ...
    @property
    def readers(self) -> ThreadPoolExecutor | None: ...

    def page_rows(self, table: TablePlan) -> int: ...
    def shrink(self, table: TablePlan, limit: int) -> None: ...
    def adapt(self, table: TablePlan, limit: int, rows: int, nbytes: int, seconds: float) -> None: ...
    def timed(self, read: float, write: float) -> None: ...
    def count(self, table: TablePlan, rows: int, nbytes: int) -> None: ...
    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None: ...  # to the progress sink
    def warn(self, message: str) -> None: ...
    def stopping(self, table: TablePlan) -> bool: ...
    def shares_target(self, table: TablePlan) -> bool: ...


def open_session(ep: Endpoint, role: str) -> pymysql.connections.Connection:
    """A copy session; connect's typed error says whether retrying can help (`transient`)."""
    conn = connect(ep, role, autocommit=role == "source", read_timeout=3600)
    if role == "source":
        try:
            with conn.cursor() as cur:  # whole-chunk reads: as long as a packet may be
                cur.execute("SET SESSION group_concat_max_len = @@max_allowed_packet")
        except BaseException:
            conn.close()  # not pooled: the caller's retry opens another
            raise
    return conn


def retry_copy_step(fn: Callable[[], Any], what: str, opts: CopyOptions, warn: Callable[[str], None]) -> Any:
    """fn, retried with back-off on a transient error or a lost server (its connection dropped)."""
    return with_retry(fn, what=what, attempts=opts.retries, base_delay=opts.retry_delay,
                      retryable=is_transient_or_typed, warn=warn)


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


class ChunkCopier:
    """Copies one plan chunk page by page, from its last journaled key to its upper bound."""

    def __init__(self, host: CopierHost, table: TablePlan, chunk: Chunk, after: list[Any] | None):
        self.host = host
        self.table = table
        self.chunk = chunk
        self.lower = PaginationKey.decode(after if after is not None else chunk.lower)
        self.upper = PaginationKey.decode(chunk.upper)
        self.prefix = sqlgen.insert_prefix(table, host.opts.verb)
        self.resumed = after is not None

    def run(self) -> None:
        if not self.table.key:
            self._run_keyless()
            return
        if self._whole_chunk_fits() and self._copy_whole_chunk():
            return
        # Read-ahead: the next page is read (source + parsing) while this one is written, so the
        # target always has a writer per running chunk.
        pending: Future | None = self._prefetch(self.lower, self.host.page_rows(self.table))
        while pending is not None:
            page: Page = pending.result()
            pending = None
            if not page.count and page.done:
                self._journal(None, 0, 0, done=True)
                return
            if self.host.stopping(self.table):
                return
            if not page.done:
                pending = self._prefetch(page.last, self.host.page_rows(self.table))
            t1 = time.monotonic()
            try:
                nbytes = self._write_page(page)
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            write_seconds = time.monotonic() - t1
            self.host.timed(page.read_seconds, write_seconds)
            fault_point("after_commit")
            after = self.chunk.upper if page.done and page.rows is None else PaginationKey.encode(page.last)
            self._journal(after, page.count, nbytes, done=page.done)
            fault_point("after_journal")
            self.host.advance(self.table, page.count, nbytes)
            self.host.adapt(self.table, page.limit, page.count if not page.done else 0, nbytes,
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
        if not self.host.opts.whole_chunks or self.resumed or not c.estimated_rows or not t.estimated_rows:
            return False
        return c.estimated_rows * max(t.estimated_bytes / t.estimated_rows, 50) <= WHOLE_CHUNK_BYTES

    def _copy_whole_chunk(self) -> bool:
        """The chunk in one aggregated read and one target transaction; False: use pages instead
        (result cut by group_concat_max_len, a NULL rendering, or a row the target rejects, which
        the page path narrows down to its key)."""
        sql, args = sqlgen.whole_chunk_select(self.table, self.lower, self.upper)
        src = self.table.source

        def read() -> tuple[int, bytes | None, int]:
            with self.host.conns.source(src) as conn:
                self.host.throttle.source_wait(src, conn)
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
        self.host.timed(t1 - t0, time.monotonic() - t1)
        fault_point("after_commit")
        self._journal(self.chunk.upper, count, nbytes, done=True)
        fault_point("after_journal")
        self.host.advance(self.table, count, nbytes)
        return True

    def _prefetch(self, lower: list[Any] | None, limit: int) -> Future:
        def read() -> Page:
            t0 = time.monotonic()
            page = self._read_aggregated_page(lower, limit) if self.host.opts.aggregated_pages else None
            if page is None:
                rows = self._read_page(lower, limit)
                page = Page(lower, limit, len(rows), list(rows[-1][1:]) if rows else None, len(rows) < limit, rows=rows)
            page.read_seconds = time.monotonic() - t0
            return page

        assert self.host.readers is not None
        return self.host.readers.submit(read)

    def _read_aggregated_page(self, lower: list[Any] | None, limit: int) -> Page | None:
        """The next `limit` rows as one aggregated value: first the page's last key (a key-only
        scan), then the rows up to it in one GROUP_CONCAT, cut into statements without per-row
        objects. None: the result was cut (group_concat_max_len), read rows instead."""
        bound_sql, bound_args = sqlgen.page_bound_select(self.table, lower, self.upper, limit)
        src = self.table.source

        def read() -> tuple[list[Any] | None, int, bytes | None, int]:
            with self.host.conns.source(src) as conn:
                self.host.throttle.source_wait(src, conn)
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
            self.host.shrink(self.table, limit)
            return None
        statements = sqlgen.blob_statements(self.prefix, blob, MAX_STATEMENT_BYTES) if blob else []
        # fewer than `limit` rows were left: this page ends the chunk
        return Page(lower, limit, count, last if last is not None else self.upper, last is None, statements=statements)

    def _journal(self, after: list[Any] | None, rows: int, nbytes: int, done: bool) -> None:
        assert self.host.journal is not None
        self.host.journal.page(self.table.id, self.chunk.id, after, rows, nbytes, done)
        self.host.count(self.table, rows, nbytes)

    def _read_page(self, lower: list[Any] | None, limit: int, upper: list[Any] | None = None) -> list[tuple]:
        sql, args = sqlgen.page_select(self.table, lower, upper if upper is not None else self.upper, limit)
        src = self.table.source

        def read() -> list[tuple]:
            with self.host.conns.source(src) as conn:
                self.host.throttle.source_wait(src, conn)
                with conn.cursor() as cur:
                    cur.execute(sql, args)
                    rows = cur.fetchall()
            fault_point("page_read")
            return rows

        rows = self._with_source_retry(read)
        self._check_rendered(rows)
        return list(rows)

    def _retry(self, fn: Callable[[], Any], what: str) -> Any:
        return retry_copy_step(fn, what, self.host.opts, self.host.warn)

    def _with_source_retry(self, fn: Callable[[], Any]) -> Any:
        src = self.table.source
        ep = self.host.conns.endpoint(src)
        try:
            return self._retry(fn, f"read {self.table.id}")
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
        src, ep, tgt_ep = self.table.source, self.host.conns.endpoint(self.table.source), self.host.conns.target_ep
        if not self.table.source_column and self.host.shares_target(self.table):
            raise TableFailed(StateError(
                f"{self.table.id} has no key and shares target table {self.table.target_name} with other "
                "sources without a source column: a rerun could not tell their rows apart. Add a key, "
                "or plan with --with-source-column"))

        def copy_all() -> tuple[int, int]:
            src_conn = connect(ep, "source", cursorclass=pymysql.cursors.SSCursor, read_timeout=3600)
            rows = nbytes = 0
            try:
                self.host.throttle.source_wait(src, src_conn)
                with self.host.conns.target() as tgt:
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
                        rollback(tgt)
                        raise
            finally:
                src_conn.close()
            return rows, nbytes

        try:
            rows, nbytes = self._retry(copy_all, f"copy {self.table.id}")
        except pymysql.err.MySQLError as exc:
            role = "source" if error_code(exc) in (2002, 2003, 2006, 2013) else "target"
            cls = SourceError if role == "source" else TargetError
            where = describe_error(ep if role == "source" else tgt_ep, role, exc)
            raise TableFailed(cls(f"{where} (copying keyless table {self.table.id} -> {self.table.target_name})")) from None
        except (SourceError, TargetError) as exc:
            raise TableFailed(exc) from None
        fault_point("after_commit")
        self._journal(None, rows, nbytes, done=True)
        self.host.advance(self.table, rows, nbytes)

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
            self.host.throttle.target_wait()
            with self.host.conns.target() as conn:
                try:
                    with conn.cursor() as cur:
                        if clear:
                            cur.execute(self._clear_sql())
                        for stmt in statements:
                            cur.execute(stmt)
                    fault_point("before_commit")
                    t0 = time.monotonic()
                    conn.commit()
                    self.host.throttle.commit_took(time.monotonic() - t0)
                except pymysql.err.MySQLError:
                    rollback(conn)
                    raise

        ep = self.host.conns.target_ep
        try:
            self._retry(write, f"write {self.table.target_name}")
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
            with self.host.conns.target() as conn:
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
                rollback(conn)
                lo = mid
            except pymysql.err.MySQLError as e:
                rollback(conn)
                hi, err = mid, e
        try:
            with conn.cursor() as cur:
                cur.execute(self.prefix + rows[lo][0])
        except pymysql.err.MySQLError as e:
            err = e
        rollback(conn)
        return lo, hi, err

    def _key_text(self, values: Any) -> str:
        return "(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.table.key, values)) + ")"


class _RejectedBatch(Exception):
    """The target refused a batch read without keys: redo it in pages to name the row."""


def _split(rows: list[tuple], limit: int) -> list[list[tuple]]:
    out: list[list[tuple]] = []
    cur: list[tuple] = []
    size = 0
    for r in rows:
        if cur and size + len(r[0]) > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(r)
        size += len(r[0]) + 1
    if cur:
        out.append(cur)
    return out
