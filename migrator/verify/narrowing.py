"""After checksums: differing chunks re-checked (sync may have caught up), then narrowed to rows;
rows of a merged table that belong to no shard of the plan."""

from __future__ import annotations

import time
from typing import Any

import pymysql

from ..db import query, quote_ident
from ..engine.pool import Pool
from ..plan.model import Plan
from .bisect import Shard, narrow, narrow_union, union_checksum
from .checksum import chunk_checksum, decode_bound, key_select_sql, key_values
from .fixsql import shard_value
from .merge import MergeGroup
from .tablerun import TableRun


def source_conn(pools: Pool, src_conns: dict[str, Any], instance: str):
    """One connection per source for the sequential steps (re-check, narrowing, fix rows)."""
    if instance not in src_conns:
        src_conns[instance] = pools.dedicated(instance)
    return src_conns[instance]


def recheck_and_narrow(run: TableRun, pools: Pool, src_conns: dict[str, Any], tgt, max_rows: int) -> None:
    assert run.sside is not None and run.tside is not None
    src = source_conn(pools, src_conns, run.sside.instance)
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


def unknown_shards(runs: list[TableRun], conn, max_rows: int, plan: Plan) -> None:
    """Rows of a merged target table whose source column names no shard of the plan: extra rows.

    The known shards come from the whole plan, not only the tables picked by --tables: a verify of
    one shard must not call (and --apply-fix delete) the rows of the others "of no shard"."""
    planned: dict[tuple[str, str], set[Any]] = {}
    for tp in plan.active_tables():
        if shard_value(tp) is not None:
            planned.setdefault((tp.target_database, tp.target_table), set()).add(shard_value(tp))
    merged: dict[tuple[str, str, str], list[TableRun]] = {}
    for run in runs:
        if run.tside is not None and run.tside.filter_column:
            merged.setdefault((run.tside.database, run.tside.table, run.tside.filter_column), []).append(run)
    for group in merged.values():
        first = group[0]
        first.shard_values = sorted({r.tside.filter_value for r in group if r.tside is not None}
                                    | planned.get((first.tp.target_database, first.tp.target_table), set()))
        first.unknown = unknown_rows(conn, first, max_rows)
        if first.unknown:
            assert first.tside is not None
            first.result.status = "different"
            first.result.notes.append(f"{len(first.unknown)} row(s) of {first.tside.name} belong to no source shard "
                                      f"of the plan ({first.tside.filter_column} not in {first.shard_values})")


def unknown_rows(conn, run: TableRun, limit: int) -> list[tuple[Any, tuple]]:
    assert run.tside is not None
    col = quote_ident(run.tside.filter_column)
    marks = ", ".join(["%s"] * len(run.shard_values))
    keys = key_select_sql(run.tside)
    picked = f"{col}, {keys}" if keys else col  # a keyless table: the source column only
    rows = query(conn, f"SELECT {picked} FROM {run.tside.name} WHERE {col} NOT IN "
                       f"({marks}) OR {col} IS NULL LIMIT %s", [*run.shard_values, limit])
    return [(r[0], tuple(key_values(run.tside, r[1:]))) for r in rows]


def merge_incomplete(group: MergeGroup) -> None:
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


def merge_shards(group: MergeGroup, pools: Pool, src_conns: dict[str, Any]) -> list[Shard]:
    return [Shard(source_conn(pools, src_conns, r.sside.instance), r.sside) for r in group.runs
            if r.sside is not None]


def recheck_and_narrow_merge(group: MergeGroup, pools: Pool, src_conns: dict[str, Any], tgt,
                              max_rows: int) -> None:
    """Re-check each differing range over every member (not only those whose keys reached it when
    the checksums started), then narrow it to rows, each named with the member holding it."""
    if not group.differing:
        return
    started = time.monotonic()
    shards = merge_shards(group, pools, src_conns)
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
