"""verify_plan: chunk checksums on both sides in parallel, re-check, narrow to rows, report, fix SQL.

Each chunk of the plan is checksummed once on its source and once on the target (the target rows
of a merged table filtered to that shard), by one scheduler for the whole fleet: at most
`parallel` chunks at once, `per_source` of one source, `target_connections` on the target; a
source's connections open when its chunks start and close when its last chunk is done. Chunks
found identical are journaled (WorkDir.verify_journal) so an interrupted run of the same plan
resumes; a completed run is closed by a "done" record and the next run starts over. Differing
chunks are re-checked after `recheck_after()` (sync catching up), then bisected to rows.

The steps, in order: prepare.py (sides, merges), checksums.py (scheduled by migrator.engine),
narrowing.py (re-check, rows), findings.py (report rows, fix SQL, --apply-fix).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql

from ..endpoint import Endpoint
from ..engine.locks import hold
from ..engine.pool import TARGET, Pool
from ..errors import ConfigError, MigratorError, StateError
from ..executor import Executor, make_executor
from ..formatting import utc_now
from ..plan.model import Plan, TablePlan
from ..progress import Progress, as_sink, throttled_to
from ..state import atomic_write_json
from ..throttle import Throttle, ThrottleOptions
from ..workdir import WorkDir
from .checksums import checksum_chunks
from .contracts import VerifyOptions
from .findings import apply_fix_sql, collect, collect_merges, confirm_fixed, confirm_fixed_merges, write_fix_sql
from .journal import VerifyJournal
from .narrowing import merge_incomplete, recheck_and_narrow, recheck_and_narrow_merge, unknown_shards
from .prepare import plan_merges, prepare
from .report import VerifyReport

__all__ = ["VerifyJournal", "VerifyOptions", "select_tables", "verify_plan"]


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


def verify_plan(
    plan: Plan,
    workdir: WorkDir | str | Path,
    options: VerifyOptions | None = None,
    *,
    endpoints: dict[str, Endpoint] | None = None,
    recheck_after: Callable[[], None] | None = None,
    progress: Progress | None = None,
    connection_stats: dict[str, Any] | None = None,
    replicas: dict[str, list[Endpoint]] | None = None,
    **option_fields: Any,
) -> VerifyReport:
    """Compare every chunk of the plan's tables on source and target; see the module docstring.

    options: VerifyOptions (contracts.py); its fields may be given as keywords instead
    (`verify_plan(plan, wd, restart=True)`), validated into the same model.
    endpoints: instance name (source name, or "target") -> Endpoint, overriding the plan's URLs
    (which hold no password). max_rows: differing rows listed per table. progress: a sink
    (migrator.progress) given VerifyProgress (chunks done, chunks total, rows compared) from this
    thread as chunk results arrive, and Throttled(stage "verify", reason | None) when checksums wait
    for a busy source and when that ends (without a sink, throttling is logged).
    parallel: chunks checksummed at once over all instances; per_source: at once on one source.
    target_connections: most checksum queries on the target at once (default: parallel).
    executor: "dask://host:port" runs the chunk checksums on Dask workers (see migrator.executor).
    options.max_replica_lag, replicas: a source's checksums wait while one of its replicas (source name ->
    Endpoints) lags more than this many seconds (migrator.throttle; 0: off; local checksums only).
    connection_stats: if given, filled with the local run's connection figures ("peak" per
    instance, "peak_sources" open at once, "open_after_checksums").
    """
    if options is not None and option_fields:
        raise TypeError(f"verify_plan: options given twice ({', '.join(option_fields)} beside a VerifyOptions)")
    opts = options or VerifyOptions(**option_fields)
    sink = as_sink(progress)
    tables, parallel, per_source, max_rows = opts.tables, opts.parallel, opts.per_source, opts.max_rows
    fix_sql, apply_fix, report_path, restart = opts.fix_sql, opts.apply_fix, opts.report_path, opts.restart
    target_connections, max_source_threads_running = opts.target_connections, opts.max_source_threads_running
    wd = workdir if isinstance(workdir, WorkDir) else WorkDir(workdir)
    if apply_fix and not fix_sql:
        raise ConfigError("--apply-fix needs --fix-sql FILE (the statements are written there first)")
    lock_fd = _lock_verify(wd)
    report = VerifyReport(plan_fingerprint=plan.fingerprint(), started_at=utc_now())
    sources, target = _endpoints(plan, endpoints)
    throttle = Throttle(ThrottleOptions(max_threads_running=max_source_threads_running, workdir=wd.root,
                                        max_replica_lag=opts.max_replica_lag, replicas=replicas),
                        notify=None if progress is None else throttled_to(sink, "verify"))
    parallel, per_source = max(1, parallel), max(1, per_source)
    target_connections = min(target_connections, parallel) if target_connections else parallel
    pools = Pool(sources, target, target_limit=target_connections, throttle=throttle, fail_fast=True)
    journal: VerifyJournal | None = None
    runner: Executor | None = None
    try:
        runner = make_executor(opts.executor, parallel, "verify", [*sources.values(), target])
        journal = VerifyJournal(wd, report.plan_fingerprint, restart)
        tgt = pools.dedicated(TARGET)
        runs, groups = prepare(plan, select_tables(plan, tables), tgt, pools)
        plan_merges(groups, pools)
        states_from = _positions_before(runs, pools, wd)  # chunk states for cutover (verify/follow.py)
        resumed = set(journal.done)
        # on Dask workers each running chunk holds a target connection: target_connections bound them all
        checksum_chunks(runs, pools, runner, journal, report, sink, per_source=per_source,
                        parallel=target_connections if runner.remote else parallel,
                        max_threads_running=max_source_threads_running)
        if connection_stats is not None and not runner.remote:
            connection_stats.update(peak={("target" if k == TARGET else k): n for k, n in pools.peak.items()},
                                    peak_sources=pools.peak_sources, open_after_checksums=pools.open_count())
        for group in groups:
            merge_incomplete(group)
        _record_states(plan, wd, runs, groups, pools, states_from, resumed)
        differing = [r for r in runs if r.differing]
        if (differing or any(g.differing for g in groups)) and recheck_after is not None:
            recheck_after()
        src_conns: dict[str, Any] = {}
        for run in differing:
            started = time.monotonic()
            recheck_and_narrow(run, pools, src_conns, tgt, max_rows)
            run.result.seconds = round(run.result.seconds + time.monotonic() - started, 3)
        for group in groups:
            recheck_and_narrow_merge(group, pools, src_conns, tgt, max_rows)
        unknown_shards(runs, tgt, max_rows, plan)
        deletes, replaces = collect(runs, report, pools, src_conns, tgt)
        merge_deletes, merge_replaces = collect_merges(groups, report, pools, src_conns, tgt)
        statements = deletes + merge_deletes + replaces + merge_replaces  # every DELETE first (see _collect)
        if fix_sql:
            write_fix_sql(Path(fix_sql), statements, report)
            if apply_fix and statements:
                apply_fix_sql(tgt, statements, report)
                confirm_fixed(runs, report, pools, src_conns, tgt)
                confirm_fixed_merges(groups, report, pools, src_conns, tgt)
        if not report.errors:
            journal.finish()  # complete: the next verify starts over
    finally:
        if journal is not None:
            journal.close()  # keeps what was verified: an interrupted or failed run resumes
        pools.close_all()
        throttle.close()  # its replica connections
        if runner is not None:
            runner.close()
        os.close(lock_fd)
    report.finished_at = utc_now()
    report.identical = not report.errors and all(t.status == "identical" for t in report.tables)
    atomic_write_json(wd.verify_report, report.model_dump(mode="json"))
    if report_path:
        atomic_write_json(report_path, report.model_dump(mode="json"))
    return report


def _positions_before(runs: list, pools: Pool, wd: WorkDir) -> dict[str, list[int] | None] | None:
    """Where each source and sync stand before the checksums (None: not recorded, e.g. unreachable)."""
    from .follow import positions_now

    try:
        return positions_now(pools, wd, sorted({r.tp.source for r in runs if r.sside is not None}))
    except (MigratorError, pymysql.err.MySQLError):
        return None


def _record_states(plan: Plan, wd: WorkDir, runs: list, groups: list, pools: Pool,
                   valid: dict[str, list[int] | None] | None, resumed: set) -> None:
    """Keep this pass's chunk results with the positions they are valid at: a cutover after it
    re-verifies only the chunks sync changed since (best effort: unrecorded chunks are re-verified)."""
    from .chunkstates import record_verify_run
    from .follow import head_key

    if valid is None:
        return
    try:
        read = {src: list(pools.run(src, head_key, what="checksum", throttled=False)) for src in valid}
        record_verify_run(wd, plan.fingerprint(), runs, groups, valid, read, resumed)
    except (MigratorError, pymysql.err.MySQLError):
        return
    finally:
        for src in valid:
            pools.release(src)


def _endpoints(plan: Plan, given: dict[str, Endpoint] | None) -> tuple[dict[str, Endpoint], Endpoint]:
    """Each source's endpoint and the target's: the plan's, or those given (with passwords)."""
    given = given or {}
    return ({s.name: given.get(s.name) or s.endpoint() for s in plan.sources},
            given.get("target") or plan.target.endpoint())


def _lock_verify(workdir: WorkDir) -> int:
    """verify runs beside sync (which holds the work directory lock): it takes its own lock."""
    return hold(workdir.verify_lock, busy=lambda _holder: StateError(
        f"another `migrator verify` is running on work directory {str(workdir.root)!r}"))
