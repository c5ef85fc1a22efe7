"""verify_plan: chunk checksums on both sides in parallel, re-check, narrow to rows, report, fix SQL.

Each chunk of the plan is checksummed once on its source and once on the target (the target rows
of a merged table filtered to that shard), by one scheduler for the whole fleet: at most
`parallel` chunks at once, `per_source` of one source, `target_connections` on the target; a
source's connections open when its chunks start and close when its last chunk is done. Chunks found identical are journaled (WorkDir.verify_journal) so an interrupted run of
the same plan resumes; a completed run is closed by a "done" record and the next run starts over.
Differing chunks are re-checked after `recheck_after()` (sync catching up), then bisected to rows.
"""

from __future__ import annotations

import fcntl
import fnmatch
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pymysql

from ..db import TARGET_SQL_MODE, connect, describe_error, qualified, query, quote_ident, with_retry
from ..endpoint import Endpoint
from ..errors import ConfigError, MigratorError, SourceError, StateError, TargetError
from ..executor import Executor, make_executor
from ..formatting import utc_now
from ..plan.model import Chunk, Column, Plan, TablePlan, encode_key_value
from ..state import Journal, atomic_write_json, atomic_write_text
from ..sync.stream import read_shape
from ..throttle import Throttle, ThrottleOptions
from ..workdir import WorkDir
from .bisect import RangeDiff, Shard, explain_changed, narrow, narrow_union, pair_representation, union_checksum
from .canonical import SideColumn, type_kind
from .checksum import KeyType, TableSide, chunk_checksum, decode_bound, key_hull, key_label, key_select_sql, key_type, \
    key_values
from .fixsql import delete_statement, replace_statement, shard_value, source_row
from .merge import MergeGroup, meets, merged_without_source_column, ordered_here, shared_ranges
from .report import RowDiff, TableResult, VerifyReport

log = logging.getLogger(__name__)

JOURNAL_BATCH = 64


def select_tables(plan: Plan, patterns: str | None) -> list[TablePlan]:
    """Active tables matching any comma-separated shell pattern (over instance/db.table, db.table or target db.table)."""
    tables = plan.active_tables()
    if not patterns:
        return tables
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    picked = [t for t in tables if any(fnmatch.fnmatchcase(n, p) for p in pats
                                        for n in (t.id, t.source_name, t.target_name))]
    if not picked:
        raise ConfigError(f"--tables {patterns!r} matches no table of the plan")
    return picked


# ---------------------------------------------------------------- sides


def _target_columns(conn, database: str, table: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The target table's DATA_TYPE, COLUMN_TYPE and COLLATION_NAME ('' if none) by column name."""
    rows = query(conn, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (database, table))
    return ({str(r[0]): str(r[1]) for r in rows}, {str(r[0]): str(r[2]) for r in rows},
            {str(r[0]): str(r[3] or "") for r in rows})


def key_collation_note(tp: TablePlan, sside: TableSide, target_collations: dict[str, str]) -> str | None:
    """Why the plan's chunk bounds cannot divide the target's rows alike, or None.

    The bounds were read in the source's key order. A text key whose collation differs on the
    target (latin1_swedish_ci -> utf8mb4_general_ci: 'ä' after 'z', then after 'a') sorts them
    otherwise there: out-of-order bounds make target chunks overlap, and every such row would be a
    false difference. Such a table is compared as one range: bisection keeps each half inside its
    parent on both sides, and a row a half holds on one side only is looked up by its key on the other."""
    cols = {c.name: c for c in tp.columns}
    lower = {k.lower(): v for k, v in target_collations.items()}
    for i, k in enumerate(tp.key):
        col = cols.get(k)
        if col is None or not col.collation or sside.key_type(i).data_type in ("enum", "set"):
            continue  # not text, or compared by index number
        target = lower.get(k.lower(), "")
        if target.lower() != col.collation.lower():
            return (f"key column {k}: collation {col.collation} on the source, {target or 'none'} on the target "
                    "(another order): compared as one range, not by the plan's chunks")
    return None


def _key_types(tp: TablePlan, target_types: dict[str, str], target_column_types: dict[str, str],
               notes: list[str]) -> tuple[list[KeyType], list[KeyType]]:
    """How each key column is bound on the source and on the target. Bounds taken on one side are
    used on both, so they must mean the same on both: an ENUM whose members differ, or a key whose
    type changed kind, is bound as stored on both sides (text order), and said so."""
    cols = {c.name: c for c in tp.columns}
    lower = {k.lower(): k for k in target_types}
    s_types: list[KeyType] = []
    t_types: list[KeyType] = []
    for k in tp.key:
        col = cols.get(k)
        s = key_type(col.data_type, col.column_type) if col else KeyType()
        tk = lower.get(k.lower(), k)
        t = key_type(target_types.get(tk, ""), target_column_types.get(tk, ""))
        if s.bound_class != t.bound_class:
            if s.data_type or t.data_type:
                notes.append(f"key column {k}: source {col.column_type if col else '?'}, target "
                             f"{target_column_types.get(tk, '?')}: ranges bound by the stored value")
            s = t = KeyType()
        s_types.append(s)
        t_types.append(t)
    return s_types, t_types


def compared_columns(tp: TablePlan, source_shape: list[Column],
                     target_shape: list[Column]) -> tuple[list[Column], list[str]]:
    """The columns to compare: the source table's as they are now, not as planned (sync replays
    ADD/DROP COLUMN), that the target has too; and the columns on one side only, each a difference
    (generated columns are never data; a merge's source column is the target's own)."""
    on_target = {c.name.lower(): c for c in target_shape}
    on_source = {c.name.lower() for c in source_shape}
    own = (tp.source_column or "").lower()
    columns: list[Column] = []
    only: list[str] = []
    for col in source_shape:
        if col.generated:
            continue
        t = on_target.get(col.name.lower())
        if t is None or t.generated:
            only.append(f"column {col.name} is on the source table only (added after the plan, and not on "
                        f"{tp.target_name}?): its values are not on the target; add it there "
                        f"(ALTER TABLE {qualified(tp.target_database, tp.target_table)} ADD COLUMN ...), then verify "
                        "with --fix-sql")
            continue
        columns.append(col)
    for t in target_shape:
        if not t.generated and t.name.lower() not in on_source and t.name.lower() != own:
            only.append(f"column {t.name} is on the target table only (dropped on {tp.id}?): drop it on "
                        f"{tp.target_name} if the source's drop was meant")
    return columns, only


def build_sides(tp: TablePlan, target_types: dict[str, str],
                target_column_types: dict[str, str] | None = None,
                columns: list[Column] | None = None) -> tuple[TableSide, TableSide, list[str]]:
    """Source and target side of a table, each column rendered by its own side's type; notes for the report.
    columns: those to compare (default: the plan's)."""
    notes: list[str] = []
    if not target_types:
        raise TargetError(f"target table {tp.target_name} (for {tp.id}) does not exist: run `migrator schema PLAN --apply`")
    lower_types = {k.lower(): (k, v) for k, v in target_types.items()}
    s_cols: list[SideColumn] = []
    t_cols: list[SideColumn] = []
    client: list[str] = []
    for col in tp.data_columns() if columns is None else columns:
        found = lower_types.get(col.name.lower())
        if found is None:
            raise TargetError(f"target table {tp.target_name} has no column {col.name!r} (source {tp.id}): "
                              "the target schema differs from the plan; re-run `migrator schema PLAN --apply`")
        sk, tk = type_kind(col.data_type), type_kind(found[1])
        if sk != tk:
            if {sk, tk} == {"json", "text"}:
                client.append(col.name)
                notes.append(f"{col.name}: json text on one side, JSON type on the other: compared after "
                             "normalization in Python")
                continue
            if "text" in (sk, tk):
                sk = tk = "text"
            elif {sk, tk} != {"float", "double"}:
                notes.append(f"{col.name}: source type {col.data_type}, target type {found[1]}")
        s_cols.append(SideColumn(col.name, sk))
        t_cols.append(SideColumn(col.name, tk))
    key = list(tp.key)
    s_keys, t_keys = _key_types(tp, target_types, target_column_types or {}, notes)
    sside = TableSide("source", tp.source, tp.database, tp.table, s_cols, key, client, key_types=s_keys)
    shard = shard_value(tp)
    tside = TableSide("target", "target", tp.target_database, tp.target_table, t_cols, key, client,
                      filter_column=tp.source_column if shard else "", filter_value=shard, key_types=t_keys)
    if not key:
        notes.append("no primary or unique key: compared as a whole table; differing rows cannot be named")
    return sside, tside, notes


# ---------------------------------------------------------------- connections


class Connections:
    """The run's connections: opened when an instance's chunks start, reused by its next chunks,
    closed (release) when its last chunk is done, so a fleet holds connections only to the few
    sources being checksummed. At most target_connections are open to the target."""

    def __init__(self, endpoints: dict[str, tuple[Endpoint, str]], target_connections: int,
                 throttle: Throttle | None = None):
        self.endpoints = endpoints
        self.throttle = throttle
        self._idle: dict[str, list[Any]] = {}
        self._open: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # most connections open at once per instance
        self.peak_sources = 0  # most source instances with connections open at once
        self._lock = threading.Lock()
        self._target_slots = threading.BoundedSemaphore(max(1, target_connections))
        self._dead: dict[str, MigratorError] = {}
        self._dedicated: list[Any] = []

    def run(self, instance: str, fn: Callable[[Any], Any]) -> Any:
        """fn(connection) on a connection of the instance, retried on transient errors."""
        ep, role = self.endpoints[instance]

        def attempt() -> Any:
            conn = self._take(instance)
            ok = False
            try:
                if role == "source" and self.throttle is not None:
                    self.throttle.source_wait(instance, conn)
                out = fn(conn)
                ok = True
                return out
            finally:
                self._give(instance, conn, ok)  # a failed connection is closed: reconnect on retry

        if role == "target":
            self._target_slots.acquire()
        try:
            return with_retry(attempt, what=f"checksum on {role} {ep.label}", attempts=3)
        except pymysql.err.MySQLError as exc:
            raise (SourceError if role == "source" else TargetError)(describe_error(ep, role, exc)) from None
        finally:
            if role == "target":
                self._target_slots.release()

    def _take(self, instance: str) -> Any:
        with self._lock:
            idle = self._idle.get(instance)
            if idle:
                return idle.pop()
            if instance in self._dead:  # already failed to connect with retries: fail the rest fast
                raise self._dead[instance]
        ep, role = self.endpoints[instance]
        try:
            conn = connect(ep, role, attempts=3)
        except MigratorError as exc:
            with self._lock:
                self._dead[instance] = exc
            raise
        with self._lock:
            self._open[instance] = self._open.get(instance, 0) + 1
            self.peak[instance] = max(self.peak.get(instance, 0), self._open[instance])
            sources = sum(1 for name, n in self._open.items() if n and name != "target")
            self.peak_sources = max(self.peak_sources, sources)
        return conn

    def _give(self, instance: str, conn: Any, reuse: bool) -> None:
        with self._lock:
            if reuse:
                self._idle.setdefault(instance, []).append(conn)
                return
            self._open[instance] -= 1
        _close(conn)

    def release(self, instance: str) -> None:
        """Close the instance's connections: its last chunk is done."""
        with self._lock:
            idle = self._idle.pop(instance, [])
            self._open[instance] = self._open.get(instance, 0) - len(idle)
        for conn in idle:
            _close(conn)

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def dedicated(self, instance: str):
        """A connection of its own for the sequential steps (re-check, narrowing, fix)."""
        ep, role = self.endpoints[instance]
        conn = connect(ep, role, attempts=3)
        with self._lock:
            self._dedicated.append(conn)
        return conn

    def close(self) -> None:
        for instance in list(self._idle):
            self.release(instance)
        for conn in self._dedicated:
            _close(conn)
        self._dedicated = []


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection
        pass


# ---------------------------------------------------------------- journal


class VerifyJournal:
    """Chunks found identical by the current run of this plan; a finished run starts afresh."""

    def __init__(self, workdir: WorkDir, fingerprint: str, restart: bool):
        self.journal = Journal(workdir.verify_journal)
        self.fingerprint = fingerprint
        self.done: dict[tuple[str, int], tuple[int, int]] = {}
        self.resumed = False
        self._pending: list[dict[str, Any]] = []
        records = [] if restart else list(self.journal.replay())
        runs = [i for i, r in enumerate(records) if r.get("type") == "run"]
        last = runs[-1] if runs else None
        if (last is not None and records[last].get("fingerprint") == fingerprint
                and not any(r.get("type") == "done" for r in records[last:])):
            self.resumed = True
            for r in records[last:]:
                if r.get("type") == "chunk" and r.get("same"):
                    self.done[(r["table"], r["chunk"])] = (r["rows_source"], r["rows_target"])
        else:
            self.journal.rewrite([{"type": "run", "fingerprint": fingerprint, "started_at": utc_now()}])

    def record(self, table: str, chunk: int, same: bool, rows: tuple[int, int]) -> None:
        self._pending.append({"type": "chunk", "table": table, "chunk": chunk, "same": same,
                              "rows_source": rows[0], "rows_target": rows[1]})
        if len(self._pending) >= JOURNAL_BATCH:
            self.flush()

    def flush(self) -> None:
        self.journal.append_many(self._pending)
        self._pending = []

    def finish(self) -> None:
        self.flush()
        self.journal.append({"type": "done", "finished_at": utc_now()})

    def close(self) -> None:
        self.flush()
        self.journal.close()


def _lock_verify(workdir: WorkDir) -> int:
    """verify runs beside sync (which holds the work directory lock): it takes its own lock."""
    path = workdir.verify_journal.parent
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateError(f"another `migrator verify` is running on work directory {str(workdir.root)!r}") from None
    return fd


# ---------------------------------------------------------------- the run


class _TableRun:
    def __init__(self, tp: TablePlan, sside: TableSide | None, tside: TableSide | None, result: TableResult,
                 one_range: bool = False, reported: bool = True):
        self.tp, self.sside, self.tside, self.result = tp, sside, tside, result
        self.one_range = one_range  # the plan's chunks do not divide the target alike: one range
        self.reported = reported  # picked by --tables (a merge's other members are read, not reported)
        self.differing: list[tuple[Chunk, tuple[int, int], tuple[int, int]]] = []
        self.diff = RangeDiff()
        self.unknown: list[tuple[Any, tuple]] = []  # merged table: (shard value, key) of rows of no shard
        self.shard_values: list[Any] = []
        self.group: MergeGroup | None = None  # merged without a source column: compared as a union
        self.ranges: list[Chunk] = []  # the group's shared ranges this member is read over
        self.carries: set[int] = set()  # ... and those whose target checksum it also takes
        self.columns: list[Column] = tp.data_columns()  # compared and written by fix SQL: the live shape
        self.shape_diffs: list[str] = []  # columns on one side only


def _chunks(tp: TablePlan, one_range: bool = False) -> list[Chunk]:
    if not tp.key or not tp.chunks or one_range:
        return [Chunk(id=0)]
    return tp.chunks


def _run_chunks(run: _TableRun) -> list[Chunk]:
    return run.ranges if run.group is not None else _chunks(run.tp, run.one_range)


def _carries_target(run: _TableRun, chunk: Chunk) -> bool:
    return run.group is None or chunk.id in run.carries


def verify_plan(
    plan: Plan,
    workdir: WorkDir | str | Path,
    *,
    tables: str | None = None,
    endpoints: dict[str, Endpoint] | None = None,
    parallel: int = 4,
    per_source: int = 2,
    recheck_after: Callable[[], None] | None = None,
    fix_sql: str | Path | None = None,
    apply_fix: bool = False,
    report_path: str | Path | None = None,
    restart: bool = False,
    max_rows: int = 1000,
    progress: Callable[[int, int, int], None] | None = None,
    target_connections: int = 0,
    max_source_threads_running: int = 25,
    executor: str | None = None,
    on_throttle: Callable[[str | None], None] | None = None,
    connection_stats: dict[str, Any] | None = None,
) -> VerifyReport:
    """Compare every chunk of the plan's tables on source and target; see the module docstring.

    endpoints: instance name (source name, or "target") -> Endpoint, overriding the plan's URLs
    (which hold no password). max_rows: differing rows listed per table. progress(chunks done,
    chunks total, rows compared) is called from this thread as chunk results arrive.
    parallel: chunks checksummed at once over all instances; per_source: at once on one source.
    target_connections: most checksum queries on the target at once (default: parallel).
    executor: "dask://host:port" runs the chunk checksums on Dask workers (see migrator.executor).
    on_throttle(reason | None): told when checksums wait for a busy source, and when that ends.
    connection_stats: if given, filled with the local run's connection figures ("peak" per
    instance, "peak_sources" open at once, "open_after_checksums").
    """
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    if apply_fix and not fix_sql:
        raise ConfigError("--apply-fix needs --fix-sql FILE (the statements are written there first)")
    lock_fd = _lock_verify(wd)
    report = VerifyReport(plan_fingerprint=plan.fingerprint(), started_at=utc_now())
    eps = _endpoints(plan, endpoints)
    throttle = Throttle(ThrottleOptions(max_threads_running=max_source_threads_running), notify=on_throttle)
    parallel, per_source = max(1, parallel), max(1, per_source)
    target_connections = min(target_connections, parallel) if target_connections else parallel
    pools = Connections(eps, target_connections, throttle)
    journal: VerifyJournal | None = None
    remote = make_executor(executor, 1) if executor and executor != "local" else None
    try:
        journal = VerifyJournal(wd, report.plan_fingerprint, restart)
        tgt = pools.dedicated("target")
        runs, groups = _prepare(plan, select_tables(plan, tables), tgt, pools)
        _plan_merges(groups, pools)
        if remote is not None:
            _checksum_remote(runs, remote, eps, journal, report, progress, per_source, target_connections,
                             max_source_threads_running)
        else:
            _checksum_all(runs, pools, journal, report, progress, parallel, per_source)
            if connection_stats is not None:
                connection_stats.update(peak=dict(pools.peak), peak_sources=pools.peak_sources,
                                        open_after_checksums=pools.open_count())
        for group in groups:
            _merge_incomplete(group)
        differing = [r for r in runs if r.differing]
        if (differing or any(g.differing for g in groups)) and recheck_after is not None:
            recheck_after()
        src_conns: dict[str, Any] = {}
        for run in differing:
            started = time.monotonic()
            _recheck_and_narrow(run, pools, src_conns, tgt, max_rows)
            run.result.seconds = round(run.result.seconds + time.monotonic() - started, 3)
        for group in groups:
            _recheck_and_narrow_merge(group, pools, src_conns, tgt, max_rows)
        _unknown_shards(runs, tgt, max_rows, plan)
        deletes, replaces = _collect(runs, report, pools, src_conns, tgt)
        merge_deletes, merge_replaces = _collect_merges(groups, report, pools, src_conns, tgt)
        statements = deletes + merge_deletes + replaces + merge_replaces  # every DELETE first (see _collect)
        if fix_sql:
            _write_fix_sql(Path(fix_sql), statements, report)
            if apply_fix and statements:
                _apply_fix(tgt, statements, report)
                _confirm_fixed(runs, report, pools, src_conns, tgt)
                _confirm_fixed_merges(groups, report, pools, src_conns, tgt)
        if not report.errors:
            journal.finish()  # complete: the next verify starts over
    finally:
        if journal is not None:
            journal.close()  # keeps what was verified: an interrupted or failed run resumes
        pools.close()
        if remote is not None:
            remote.close()
        os.close(lock_fd)
    report.finished_at = utc_now()
    report.identical = not report.errors and all(t.status == "identical" for t in report.tables)
    atomic_write_json(wd.verify_report, report.model_dump(mode="json"))
    if report_path:
        atomic_write_json(report_path, report.model_dump(mode="json"))
    return report


def _endpoints(plan: Plan, given: dict[str, Endpoint] | None) -> dict[str, tuple[Endpoint, str]]:
    given = given or {}
    out = {s.name: (given.get(s.name) or s.endpoint(), "source") for s in plan.sources}
    out["target"] = (given.get("target") or plan.target.endpoint(), "target")
    return out


def _prepare(plan: Plan, tables: list[TablePlan], conn, pools: Connections) -> tuple[list[_TableRun], list[MergeGroup]]:
    """A run per picked table, plus the unpicked members of merges (without a source column) that
    a picked table is part of: the target holds their rows in the same key ranges."""
    merges = merged_without_source_column(plan.active_tables())
    picked = {tp.id for tp in tables}
    wanted = [tp for tp in plan.active_tables() if tp.id in picked
              or (tp.target_name in merges and any(m.id in picked for m in merges[tp.target_name]))]
    runs = _prepare_runs(wanted, conn, picked, _source_shapes(wanted, pools))
    groups: list[MergeGroup] = []
    for target, members in merges.items():
        ids = {m.id for m in members}
        group_runs = [r for r in runs if r.tp.id in ids]
        if not any(r.reported for r in group_runs):
            continue
        failed = [r for r in group_runs if r.sside is None]
        if failed:  # alone, each member's rows would be compared with every member's: not compared at all
            why = "; ".join(f"{r.tp.id}: {r.result.error}" for r in failed)
            for r in group_runs:
                if r.sside is not None:
                    r.result.status = "error"
                    r.result.error = f"merged table {target} not compared: a source table of the merge failed ({why})"
                    r.sside = r.tside = None
            continue
        group = MergeGroup(target=target, runs=group_runs, one_range=any(r.one_range for r in group_runs))
        for r in group_runs:
            r.group = group
        _common_columns(group, conn)
        groups.append(group)
    return runs, groups


def _common_columns(group: MergeGroup, conn) -> None:
    """A merge's members summed over one range must hash the same columns: those every member has
    (a member still without a column the others have says so as a shape difference)."""
    names = [[c.name.lower() for c in r.columns] for r in group.runs]
    if all(n == names[0] for n in names):
        return
    common = set.intersection(*(set(n) for n in names))
    first = group.runs[0].tp
    types, column_types, _ = _target_columns(conn, first.target_database, first.target_table)
    for run in group.runs:
        run.columns = [c for c in run.columns if c.name.lower() in common]
        run.sside, run.tside, _ = build_sides(run.tp, types, column_types, run.columns)


def _source_shapes(tables: list[TablePlan], pools: Connections) -> dict[str, list[Column] | MigratorError]:
    """Each table's columns on its source now (one connection per instance, closed after)."""
    shapes: dict[str, list[Column] | MigratorError] = {}
    by_instance: dict[str, list[TablePlan]] = {}
    for tp in tables:
        by_instance.setdefault(tp.source, []).append(tp)
    for instance, tps in by_instance.items():
        try:
            read = pools.run(instance, lambda c, tps=tps: [read_shape(c, tp.database, tp.table) for tp in tps])
        except MigratorError as exc:
            shapes.update((tp.id, exc) for tp in tps)
            continue
        finally:
            pools.release(instance)
        for tp, shape in zip(tps, read):
            shapes[tp.id] = shape if shape else SourceError(
                f"source {instance}: table {tp.source_name} not found: was it dropped or renamed after the plan? "
                "re-run `migrator plan`")
    return shapes


def _prepare_runs(tables: list[TablePlan], conn, picked: set[str],
                  shapes: dict[str, list[Column] | MigratorError]) -> list[_TableRun]:
    runs: list[_TableRun] = []
    types_cache: dict[tuple[str, str], tuple[dict[str, str], dict[str, str], dict[str, str]]] = {}
    shape_cache: dict[tuple[str, str], list[Column]] = {}
    for tp in tables:
        result = TableResult(table=tp.id, source_table=tp.source_name, target_table=tp.target_name)
        tkey = (tp.target_database, tp.target_table)
        if tkey not in types_cache:
            types_cache[tkey] = _target_columns(conn, *tkey)
            shape_cache[tkey] = read_shape(conn, *tkey)
        try:
            types, column_types, collations = types_cache[tkey]
            shape = shapes[tp.id]
            if isinstance(shape, MigratorError):
                raise shape
            columns, only = compared_columns(tp, shape, shape_cache[tkey]) if types else (tp.data_columns(), [])
            sside, tside, notes = build_sides(tp, types, column_types, columns)
        except MigratorError as exc:
            result.status, result.error = "error", str(exc)
            runs.append(_TableRun(tp, None, None, result, reported=tp.id in picked))
            continue
        one_range = key_collation_note(tp, sside, collations)
        if one_range and len(_chunks(tp)) > 1:
            notes.append(one_range)
        result.notes, result.client_columns = notes + only, list(sside.client_columns)
        run = _TableRun(tp, sside, tside, result, one_range=bool(one_range), reported=tp.id in picked)
        run.columns, run.shape_diffs = columns, only
        if only:
            result.status, result.differences = "different", len(only)
        runs.append(run)
    return runs


def _plan_merges(groups: list[MergeGroup], pools: Connections) -> None:
    """The shared ranges of each merge, which members read which range (by each member's lowest and
    highest key, read now), and which member takes each range's target checksum."""
    for group in groups:
        first = group.runs[0]
        assert first.sside is not None
        ordered = not group.one_range and all(ordered_here(r.tp, r.sside) for r in group.runs if r.sside)
        group.ranges = shared_ranges([r.tp for r in group.runs], first.sside) if ordered else [Chunk(id=0)]
        hulls = {}
        for run in group.runs:
            assert run.sside is not None
            side = run.sside
            hulls[run.tp.id] = pools.run(side.instance, lambda c, s=side: key_hull(c, s)) if ordered else ([], [])
            pools.release(side.instance)  # reopened when its chunks start: few sources open at once
        everyone = all(r.reported for r in group.runs)
        for chunk in group.ranges:
            readers = [r for r in group.runs if not ordered or meets(first.sside, hulls[r.tp.id], chunk)]
            if not everyone and not any(r.reported for r in readers):
                continue  # a range of members --tables did not pick only
            carrier = next((r for r in readers if r.reported), group.report_run)
            if carrier not in readers:
                readers.append(carrier)
            carrier.carries.add(chunk.id)
            for r in readers:
                r.ranges.append(chunk)
            group.expected[chunk.id] = len(readers)
        note = (f"merged into {group.target} with {len(group.runs) - 1} other source table(s), no source column: "
                f"compared as the union of its {len(group.runs)} sources over "
                + (f"{len(group.expected)} shared key range(s)" if ordered else
                   "the whole key range (text key: its order is the collation's)"))
        for run in group.runs:
            run.result.notes.append(note)


def _todo(runs: list[_TableRun], journal: VerifyJournal, report: VerifyReport) -> list[tuple[_TableRun, Chunk]]:
    """The chunks still to checksum, in plan order; chunks a resumed run already found identical are counted."""
    todo: list[tuple[_TableRun, Chunk]] = []
    for run in runs:
        if run.reported:
            report.tables.append(run.result)
        if run.sside is None:
            continue
        for chunk in _run_chunks(run):
            run.result.chunks += 1
            done = journal.done.get((run.group.journal_key if run.group else run.tp.id, chunk.id))
            if done is not None:
                run.result.chunks_resumed += 1
                if _carries_target(run, chunk):  # a merge's resumed range: counted on its carrier
                    run.result.rows_source += done[0]
                    run.result.rows_target += done[1]
                if run.group is not None:
                    run.group.expected.pop(chunk.id, None)
            else:
                todo.append((run, chunk))
    return todo


def _record(run: _TableRun, chunk: Chunk, cs: tuple, ct: tuple | None, journal: VerifyJournal,
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


def _checksum_pair(conns: Connections, run: _TableRun, chunk: Chunk) -> tuple[tuple, tuple | None]:
    """One chunk on its source, then on the target (each on a pooled connection of that instance)."""
    assert run.sside is not None and run.tside is not None
    lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
    sside, tside = run.sside, run.tside
    cs = conns.run(sside.instance, lambda c: chunk_checksum(c, sside, lo, hi))
    if not _carries_target(run, chunk):  # a merge member's share of a range another member carries
        return cs, None
    ct = conns.run("target", lambda c: chunk_checksum(c, tside, lo, hi))
    return cs, ct


def _checksum_all(runs: list[_TableRun], conns: Connections, journal: VerifyJournal, report: VerifyReport,
                  progress: Callable[[int, int, int], None] | None, parallel: int, per_source: int) -> None:
    """One scheduler for the whole fleet: at most `parallel` chunks at once, `per_source` of one
    source. Sources are taken in plan order, so only a few have connections open at a time, and a
    source's connections are closed as soon as its last chunk is done (memory stays flat with N)."""
    started = time.monotonic()
    todo = _todo(runs, journal, report)
    total = sum(r.result.chunks for r in runs)
    finished = total - len(todo)
    rows = sum(r.result.rows_source for r in runs)
    queues: dict[str, deque[tuple[_TableRun, Chunk]]] = {}
    for run, chunk in todo:
        queues.setdefault(run.tp.source, deque()).append((run, chunk))
    del todo
    left = {inst: len(q) for inst, q in queues.items()}
    busy: dict[str, int] = {}
    running: dict[Future, tuple[_TableRun, Chunk]] = {}
    pool = ThreadPoolExecutor(parallel, thread_name_prefix="verify")
    try:
        while queues or running:
            for inst in list(queues):  # fill free slots, earliest sources first
                queue = queues[inst]
                while queue and len(running) < parallel and busy.get(inst, 0) < per_source:
                    run, chunk = queue.popleft()
                    if run.result.status == "error":  # the table already failed: do not read more of it
                        finished += 1
                        _chunk_done(conns, left, inst)
                        continue
                    busy[inst] = busy.get(inst, 0) + 1
                    running[pool.submit(_checksum_pair, conns, run, chunk)] = (run, chunk)
                if not queue:
                    del queues[inst]
                if len(running) >= parallel:
                    break
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                run, chunk = running.pop(fut)
                inst = run.tp.source
                busy[inst] -= 1
                finished += 1
                try:
                    cs, ct = fut.result()
                except MigratorError as exc:
                    if run.result.status != "error":
                        run.result.status, run.result.error = "error", f"{run.tp.id} chunk {chunk.id}: {exc}"
                else:
                    if run.result.status != "error":
                        _record(run, chunk, cs, ct, journal, started)
                        rows += cs[0]
                _chunk_done(conns, left, inst)
                if progress:
                    progress(finished, total, rows)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        conns.release("target")  # the sequential steps after this use their own connection
    journal.flush()


def _chunk_done(conns: Connections, left: dict[str, int], instance: str) -> None:
    left[instance] -= 1
    if not left[instance]:
        conns.release(instance)


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


def _checksum_remote(runs: list[_TableRun], executor: Executor, eps: dict[str, tuple[Endpoint, str]],
                     journal: VerifyJournal, report: VerifyReport, progress: Callable[[int, int, int], None] | None,
                     per_source: int, target_limit: int, max_threads_running: int) -> None:
    """The chunk checksums on the executor's workers: at most per_source chunks of one source and
    target_limit chunks in all at once (each holds one connection to its source and the target).
    Results are journaled here, by the coordinator, as they arrive."""
    started = time.monotonic()
    todo = [(run, chunk, 1) for run, chunk in _todo(runs, journal, report)]
    total = sum(r.result.chunks for r in runs)
    finished = total - len(todo)
    rows = sum(r.result.rows_source for r in runs)
    running: dict[Any, tuple[_TableRun, Chunk, int]] = {}
    busy: dict[str, int] = {}
    while todo or running:
        i = 0
        while i < len(todo) and len(running) < target_limit:
            run, chunk, attempt = todo[i]
            inst = run.tp.source
            if busy.get(inst, 0) >= per_source:
                i += 1
                continue
            todo.pop(i)
            if run.result.status == "error":
                finished += 1
                continue
            busy[inst] = busy.get(inst, 0) + 1
            assert run.sside is not None and run.tside is not None
            fut = executor.submit(checksum_pair_task, eps[inst][0], eps["target"][0], run.sside,
                                  run.tside if _carries_target(run, chunk) else None,
                                  decode_bound(chunk.lower), decode_bound(chunk.upper), max_threads_running)
            running[fut] = (run, chunk, attempt)
        if not running:
            break
        for fut in executor.wait_first(running):
            run, chunk, attempt = running.pop(fut)
            busy[run.tp.source] -= 1
            exc = fut.exception()
            if exc is not None and executor.is_lost_worker(exc) and attempt <= 3:
                todo.insert(0, (run, chunk, attempt + 1))
                continue
            finished += 1
            if exc is not None:
                if not isinstance(exc, MigratorError):
                    raise exc
                run.result.status, run.result.error = "error", f"{run.tp.id} chunk {chunk.id}: {exc}"
            elif run.result.status != "error":
                cs, ct = fut.result()
                _record(run, chunk, cs, ct, journal, started)
                rows += cs[0]
            if progress:
                progress(finished, total, rows)
    journal.flush()


def _recheck_and_narrow(run: _TableRun, pools: Connections, src_conns: dict[str, Any], tgt, max_rows: int) -> None:
    assert run.sside is not None and run.tside is not None
    src = _source_conn(pools, src_conns, run.sside.instance)
    try:
        for chunk, _cs, _ct in run.differing:
            lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
            cs, ct = chunk_checksum(src, run.sside, lo, hi), chunk_checksum(tgt, run.tside, lo, hi)
            if cs == ct:
                run.result.notes.append(f"chunk {chunk.id} differed, then matched on re-check (sync caught up)")
                continue
            run.result.chunks_differing += 1
            run.result.status = "different"
            if not run.sside.key:
                run.result.notes.append(f"whole-table checksums differ: source {cs[0]} rows, target {ct[0]} rows")
                continue
            narrow(src, tgt, run.sside, run.tside, lo, hi, (cs[0], ct[0]), max_rows, run.diff)
    except pymysql.err.MySQLError as exc:
        run.result.status, run.result.error = "error", f"{run.tp.id}: narrowing to rows failed: {exc}"
        return
    if run.diff.moved:
        run.result.notes.append(f"{run.diff.moved} row(s) fall in another key range on the target than on the source "
                                "(the key's collation orders them differently there): found on both sides, identical")


def _unknown_shards(runs: list[_TableRun], conn, max_rows: int, plan: Plan) -> None:
    """Rows of a merged target table whose source column names no shard of the plan: extra rows.

    The known shards come from the whole plan, not only the tables picked by --tables: a verify of
    one shard must not call (and --apply-fix delete) the rows of the others "of no shard"."""
    planned: dict[tuple[str, str], set[Any]] = {}
    for tp in plan.active_tables():
        if shard_value(tp) is not None:
            planned.setdefault((tp.target_database, tp.target_table), set()).add(shard_value(tp))
    merged: dict[tuple[str, str, str], list[_TableRun]] = {}
    for run in runs:
        if run.tside is not None and run.tside.filter_column:
            merged.setdefault((run.tside.database, run.tside.table, run.tside.filter_column), []).append(run)
    for group in merged.values():
        first = group[0]
        first.shard_values = sorted({r.tside.filter_value for r in group if r.tside is not None}
                                    | planned.get((first.tp.target_database, first.tp.target_table), set()))
        first.unknown = _unknown_rows(conn, first, max_rows)
        if first.unknown:
            assert first.tside is not None
            first.result.status = "different"
            first.result.notes.append(f"{len(first.unknown)} row(s) of {first.tside.name} belong to no source shard "
                                      f"of the plan ({first.tside.filter_column} not in {first.shard_values})")


def _unknown_rows(conn, run: _TableRun, limit: int) -> list[tuple[Any, tuple]]:
    assert run.tside is not None
    col = quote_ident(run.tside.filter_column)
    marks = ", ".join(["%s"] * len(run.shard_values))
    keys = key_select_sql(run.tside)
    picked = f"{col}, {keys}" if keys else col  # a keyless table: the source column only
    rows = query(conn, f"SELECT {picked} FROM {run.tside.name} WHERE {col} NOT IN "
                       f"({marks}) OR {col} IS NULL LIMIT %s", [*run.shard_values, limit])
    return [(r[0], tuple(key_values(run.tside, r[1:]))) for r in rows]


def _collect(runs: list[_TableRun], report: VerifyReport, pools: Connections, src_conns: dict[str, Any],
             tgt) -> tuple[list[str], list[str]]:
    """Row differences into the report; the fix statements that would repair them: every DELETE
    first, then the REPLACEs. Under a _ci / PAD SPACE key an extra 'ABC' and a missing 'abc' are
    one row to the target: a DELETE of 'ABC' run after the REPLACE of 'abc' would delete the row
    just repaired."""
    statements: list[str] = []
    deletes: list[str] = []
    for run in runs:
        if run.result.error:
            report.errors.append(run.result.error)
        if run.sside is None or run.tside is None:
            continue
        d = run.diff
        paired = pair_representation(d.missing, d.extra) if len(d.missing) * len(d.extra) <= 1_000_000 else {}
        src = _source_conn(pools, src_conns, run.sside.instance) if d.total() else None
        for key in d.missing:
            _add(report, run, key, "missing", ["source"], suspected=paired.get(key))
            row = source_row(src, run.columns, run.sside, key)
            if row is not None:
                statements.append(replace_statement(run.tp, run.columns, row))
        for key in d.extra:
            _add(report, run, key, "extra", ["target"], suspected=paired.get(key))
            deletes.append(delete_statement(run.tside, key))
        for key in d.changed:
            why = explain_changed(src, tgt, run.sside, run.tside, key)
            _add(report, run, key, "changed", ["source", "target"], columns=why.columns,
                 suspected=why.suspected, detail=why.detail)
            row = source_row(src, run.columns, run.sside, key)
            if row is not None:
                statements.append(replace_statement(run.tp, run.columns, row))
        for shard, key in run.unknown:
            _add(report, run, key, "extra", ["target"], detail=f"{run.tside.filter_column} = {shard!r}: no such shard in the plan")
            tside = TableSide("target", "target", run.tside.database, run.tside.table, [], run.tside.key,
                              filter_column=run.tside.filter_column, filter_value=shard, key_types=run.tside.key_types)
            deletes.append(delete_statement(tside, key))
        if d.truncated:
            report.rows_truncated += 1
            run.result.notes.append(f"more than {d.total()} differing rows: listing stopped (raise --max-rows)")
        if run.result.status == "different" and not run.tp.key:
            run.result.differences = max(1, run.result.differences)
    return deletes, statements


def _add(report: VerifyReport, run: _TableRun, key: tuple, kind: str, present_on: list[str], **extra: Any) -> None:
    label = key_label(run.sside, key) if run.sside is not None else key  # ENUM/SET index -> its text
    report.rows.append(RowDiff(table=run.tp.id, target=run.tp.target_name, key=[encode_key_value(v) for v in label],
                               kind=kind, present_on=present_on, **extra))  # type: ignore[arg-type]
    run.result.differences += 1
    run.result.status = "different"


def _write_fix_sql(path: Path, statements: list[str], report: VerifyReport) -> None:
    header = (f"-- migrator verify: statements that would repair the target (plan {report.plan_fingerprint}).\n"
              "-- REPLACE writes the source row; DELETE removes a row the source does not have.\n"
              "-- Review before running; `migrator verify --apply-fix` runs them and re-checks.\n"
              # the session migrator read and wrote in: run by hand in a client's default session
              # (seekdb: time_zone +08:00) every TIMESTAMP literal would move, and an id 0 would be renumbered
              "SET NAMES utf8mb4;\n"
              "SET SESSION time_zone = '+00:00';\n"
              f"SET SESSION sql_mode = '{TARGET_SQL_MODE}';\n"
              # rows are repaired in key order, not the source's; with the checks on, a REPLACE of
              # a parent row would also delete (ON DELETE CASCADE) or null its children
              "SET SESSION foreign_key_checks = 0;\n")
    atomic_write_text(path, header + "".join(s + "\n" for s in statements))
    report.fix_sql = str(path)
    report.fix_statements = len(statements)


def _apply_fix(tgt, statements: list[str], report: VerifyReport) -> None:
    try:
        tgt.begin()
        with tgt.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
        tgt.commit()
    except pymysql.err.MySQLError as exc:
        tgt.rollback()
        raise TargetError(f"applying the fix SQL failed and was rolled back: {exc.args[-1] if exc.args else exc}") from None
    report.fixes_applied = True


def _source_conn(pools: Connections, src_conns: dict[str, Any], instance: str):
    """One connection per source for the sequential steps (re-check, narrowing, fix rows)."""
    if instance not in src_conns:
        src_conns[instance] = pools.dedicated(instance)
    return src_conns[instance]


def _confirm_fixed(runs: list[_TableRun], report: VerifyReport, pools: Connections, src_conns: dict[str, Any],
                   tgt) -> None:
    """After the fix: re-check each differing chunk; tables whose chunks now match are identical."""
    for run in runs:
        if run.result.status != "different" or run.sside is None or run.tside is None or run.group is not None:
            continue
        src = _source_conn(pools, src_conns, run.sside.instance)
        still = 0
        for chunk, _cs, _ct in run.differing:
            lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
            if chunk_checksum(src, run.sside, lo, hi) != chunk_checksum(tgt, run.tside, lo, hi):
                still += 1
        if still == 0 and not (run.unknown and _unknown_rows(tgt, run, 1)) and not run.shape_diffs:
            run.result.status = "identical"
            run.result.notes.append(f"{run.result.differences} differing row(s) repaired by the fix SQL")
            for row in report.rows:
                if row.table == run.tp.id:
                    row.fixed = True


# ---------------------------------------------------------------- merges without a source column


def _merge_incomplete(group: MergeGroup) -> None:
    """A range some member could not be read over has no verdict: the picked members say so."""
    pending = group.pending()
    if not pending:
        return
    failed = [f"{r.tp.id} ({r.result.error})" for r in group.runs if r.result.status == "error"]
    msg = (f"{group.target}: {len(pending)} shared key range(s) of the merged table not compared: "
           + ("reading " + "; ".join(failed) + " failed" if failed else "member checksums missing"))
    for run in group.reported():
        if run.result.status != "error":
            run.result.status, run.result.error = "error", msg


def _merge_shards(group: MergeGroup, pools: Connections, src_conns: dict[str, Any]) -> list[Shard]:
    return [Shard(_source_conn(pools, src_conns, r.sside.instance), r.sside) for r in group.runs
            if r.sside is not None]


def _recheck_and_narrow_merge(group: MergeGroup, pools: Connections, src_conns: dict[str, Any], tgt,
                              max_rows: int) -> None:
    """Re-check each differing range over every member (not only those whose keys reached it when
    the checksums started), then narrow it to rows, each named with the member holding it."""
    if not group.differing:
        return
    started = time.monotonic()
    shards = _merge_shards(group, pools, src_conns)
    tside = group.runs[0].tside
    assert tside is not None
    still = []
    d = group.diff
    try:
        for chunk, _us, _ut in group.differing:
            lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
            us, ut = union_checksum(shards, lo, hi), chunk_checksum(tgt, tside, lo, hi)
            if us == ut:
                group.report_run.result.notes.append(
                    f"shared range {chunk.id} of {group.target} differed, then matched on re-check (sync caught up)")
                continue
            still.append((chunk, us, ut))
            if not tside.key:
                run = group.report_run
                run.result.status, run.result.chunks_differing = "different", run.result.chunks_differing + 1
                run.result.differences = max(1, run.result.differences)
                run.result.notes.append(f"whole-table checksums of {group.target} differ: its sources hold {us[0]} "
                                        f"rows, the target {ut[0]} (no key: rows cannot be named)")
                continue
            before = (len(d.missing), len(d.extra), len(d.changed), set(d.collisions))
            narrow_union(shards, tgt, tside, lo, hi, (us[0], ut[0]), max_rows, d)
            owners = {d.owner[k] for k in d.missing[before[0]:] + d.changed[before[2]:]}
            owners |= {i for k, holders in d.collisions.items() if k not in before[3] for i in holders}
            hit = {id(group.runs[i]): group.runs[i] for i in owners}
            if d.extra[before[1]:] or not owners:  # rows of no member, or nothing named (rows moving meanwhile)
                hit[id(group.report_run)] = group.report_run
            for run in hit.values():
                if run.reported:
                    run.result.chunks_differing += 1
                    if not owners and not d.extra[before[1]:]:
                        run.result.status = "different"
    except pymysql.err.MySQLError as exc:
        run = group.report_run
        run.result.status, run.result.error = "error", f"{group.target}: narrowing to rows failed: {exc}"
    group.differing = still
    for run in group.reported():
        run.result.seconds = round(run.result.seconds + time.monotonic() - started, 3)


def _collect_merges(groups: list[MergeGroup], report: VerifyReport, pools: Connections, src_conns: dict[str, Any],
                    tgt) -> tuple[list[str], list[str]]:
    """A merge's differing rows into the report under the member holding each, with fix SQL:
    REPLACE from that member; DELETE only for a target row whose key no member holds."""
    deletes: list[str] = []
    replaces: list[str] = []
    for group in groups:
        d = group.diff
        tside = group.runs[0].tside
        if not d.total() or tside is None:
            continue
        paired = pair_representation(d.missing, d.extra) if len(d.missing) * len(d.extra) <= 1_000_000 else {}
        for kind, keys in (("missing", d.missing), ("changed", d.changed)):
            for key in keys:
                run = group.runs[d.owner[key]]
                if not run.reported or run.sside is None:
                    group.hidden += 1
                    continue
                src = _source_conn(pools, src_conns, run.sside.instance)
                if kind == "missing":
                    _add(report, run, key, "missing", ["source"], suspected=paired.get(key),
                         detail=f"held by {run.tp.id}, not by {group.target}")
                else:
                    why = explain_changed(src, tgt, run.sside, tside, key)
                    _add(report, run, key, "changed", ["source", "target"], columns=why.columns,
                         suspected=why.suspected, detail=f"held by {run.tp.id}; {why.detail}" if why.detail
                         else f"held by {run.tp.id}")
                row = source_row(src, run.columns, run.sside, key)
                if row is not None:
                    replaces.append(replace_statement(run.tp, run.columns, row))
        for key in d.extra:
            _add(report, group.report_run, key, "extra", ["target"], suspected=paired.get(key),
                 detail=f"on the target only: none of the {len(group.runs)} source tables merged into "
                        f"{group.target} holds this key")
            deletes.append(delete_statement(tside, key))
        for key, holders in d.collisions.items():
            names = ", ".join(group.runs[i].tp.id for i in holders)
            for i in holders:
                if group.runs[i].reported:
                    _add(report, group.runs[i], key, "changed", ["source", "target"],
                         detail=f"key held by {len(holders)} sources merged into {group.target} ({names}): the "
                                "target holds one row per key; re-plan with --with-source-column (no fix SQL)")
        notes = group.report_run.result.notes
        if group.hidden:
            notes.append(f"{group.hidden} differing row(s) of {group.target} are held by source tables --tables did "
                         "not pick: not reported (verify without --tables to see them)")
        if d.moved:
            notes.append(f"{d.moved} row(s) fall in another key range on the target than on their source "
                         "(the key's collation orders them differently there): found on both sides, identical")
        if d.truncated:
            report.rows_truncated += 1
            notes.append(f"more than {d.total()} differing rows: listing stopped (raise --max-rows)")
    return deletes, replaces


def _confirm_fixed_merges(groups: list[MergeGroup], report: VerifyReport, pools: Connections,
                          src_conns: dict[str, Any], tgt) -> None:
    """After the fix: the differing ranges narrowed again; a member none of whose rows still differ is identical."""
    for group in groups:
        runs = [r for r in group.reported() if r.result.status == "different"]
        tside = group.runs[0].tside
        if not runs or tside is None:
            continue
        shards = _merge_shards(group, pools, src_conns)
        after = RangeDiff()
        for chunk, _us, _ut in group.differing:
            lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
            us, ut = union_checksum(shards, lo, hi), chunk_checksum(tgt, tside, lo, hi)
            if us != ut:
                narrow_union(shards, tgt, tside, lo, hi, (us[0], ut[0]), 1_000_000, after)
        left = {id(group.runs[i]) for i in after.owner.values()}
        left |= {id(group.runs[i]) for holders in after.collisions.values() for i in holders}
        if after.extra:
            left.add(id(group.report_run))
        for run in runs:
            if id(run) in left or run.shape_diffs:
                continue
            run.result.status = "identical"
            run.result.notes.append(f"{run.result.differences} differing row(s) repaired by the fix SQL")
            for row in report.rows:
                if row.table == run.tp.id:
                    row.fixed = True
