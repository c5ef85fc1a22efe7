"""Differences into the report, the fix SQL that would repair them, and after --apply-fix the
re-check that marks repaired tables identical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymysql

from ..db import TARGET_SQL_MODE
from ..engine.pool import Pool
from ..errors import TargetError
from ..keys import encode_key_value
from ..state import atomic_write_text
from .bisect import RangeDiff, explain_changed, narrow_union, pair_representation, union_checksum
from .checksum import TableSide, chunk_checksum, decode_bound, key_label
from .fixsql import delete_statement, replace_statement, source_row
from .keytwins import COLLISION, collation_twin, collision_note, twin_detail
from .merge import MergeGroup
from .narrowing import merge_shards, source_conn, unknown_rows
from .report import RowDiff, VerifyReport
from .tablerun import TableRun


def collect(runs: list[TableRun], report: VerifyReport, pools: Pool, src_conns: dict[str, Any],
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
        src = source_conn(pools, src_conns, run.sside.instance) if d.total() else None
        extra = set(d.extra)
        for key in d.missing:
            twin = None if key in paired else collation_twin(tgt, run.tside, key, extra)
            if twin is not None:
                add_row(report, run, key, "missing", ["source"], suspected=COLLISION, detail=twin_detail(twin))
                run.collisions.append((key, twin))
                continue
            add_row(report, run, key, "missing", ["source"], suspected=paired.get(key))
            row = source_row(src, run.columns, run.sside, key)
            if row is not None:
                statements.append(replace_statement(run.tp, run.columns, row))
        for key in d.extra:
            add_row(report, run, key, "extra", ["target"], suspected=paired.get(key))
            deletes.append(delete_statement(run.tside, key))
        for key in d.changed:
            why = explain_changed(src, tgt, run.sside, run.tside, key)
            add_row(report, run, key, "changed", ["source", "target"], columns=why.columns,
                 suspected=why.suspected, detail=why.detail)
            row = source_row(src, run.columns, run.sside, key)
            if row is not None:
                statements.append(replace_statement(run.tp, run.columns, row))
        for shard, key in run.unknown:
            add_row(report, run, key, "extra", ["target"], detail=f"{run.tside.filter_column} = {shard!r}: no such shard in the plan")
            tside = TableSide("target", "target", run.tside.database, run.tside.table, [], run.tside.key,
                              filter_column=run.tside.filter_column, filter_value=shard, key_types=run.tside.key_types)
            deletes.append(delete_statement(tside, key))
        if d.truncated:
            report.rows_truncated += 1
            run.result.notes.append(f"more than {d.total()} differing rows: listing stopped (raise --max-rows)")
        if note := collision_note(run):
            run.result.notes.append(note)
        if run.result.status == "different" and not run.tp.key:
            run.result.differences = max(1, run.result.differences)
    return deletes, statements


def add_row(report: VerifyReport, run: TableRun, key: tuple, kind: str, present_on: list[str], **extra: Any) -> None:
    label = key_label(run.sside, key) if run.sside is not None else key  # ENUM/SET index -> its text
    report.rows.append(RowDiff(table=run.tp.id, target=run.tp.target_name, key=[encode_key_value(v) for v in label],
                               kind=kind, present_on=present_on, **extra))  # type: ignore[arg-type]
    run.result.differences += 1
    run.result.status = "different"


def write_fix_sql(path: Path, statements: list[str], report: VerifyReport) -> None:
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


def apply_fix_sql(tgt, statements: list[str], report: VerifyReport) -> None:
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


def confirm_fixed(runs: list[TableRun], report: VerifyReport, pools: Pool, src_conns: dict[str, Any],
                   tgt) -> None:
    """After the fix: re-check each differing chunk; tables whose chunks now match are identical."""
    for run in runs:
        if run.result.status != "different" or run.sside is None or run.tside is None or run.group is not None:
            continue
        src = source_conn(pools, src_conns, run.sside.instance)
        still = 0
        for chunk, _cs, _ct in run.differing:
            lo, hi = decode_bound(chunk.lower), decode_bound(chunk.upper)
            if chunk_checksum(src, run.sside, lo, hi) != chunk_checksum(tgt, run.tside, lo, hi):
                still += 1
        if still == 0 and not (run.unknown and unknown_rows(tgt, run, 1)) and not run.shape_diffs:
            run.result.status = "identical"
            run.result.notes.append(f"{run.result.differences} differing row(s) repaired by the fix SQL")
            for row in report.rows:
                if row.table == run.tp.id:
                    row.fixed = True


def collect_merges(groups: list[MergeGroup], report: VerifyReport, pools: Pool, src_conns: dict[str, Any],
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
        extra = set(d.extra)
        for kind, keys in (("missing", d.missing), ("changed", d.changed)):
            for key in keys:
                run = group.runs[d.owner[key]]
                if not run.reported or run.sside is None:
                    group.hidden += 1
                    continue
                src = source_conn(pools, src_conns, run.sside.instance)
                twin = None if kind != "missing" or key in paired else collation_twin(tgt, tside, key, extra)
                if twin is not None:
                    holder = group.runs[d.owner[twin]].tp.id if twin in d.owner else None
                    add_row(report, run, key, "missing", ["source"], suspected=COLLISION,
                            detail=twin_detail(twin, holder))
                    run.collisions.append((key, twin))
                    continue
                if kind == "missing":
                    add_row(report, run, key, "missing", ["source"], suspected=paired.get(key),
                         detail=f"held by {run.tp.id}, not by {group.target}")
                else:
                    why = explain_changed(src, tgt, run.sside, tside, key)
                    add_row(report, run, key, "changed", ["source", "target"], columns=why.columns,
                         suspected=why.suspected, detail=f"held by {run.tp.id}; {why.detail}" if why.detail
                         else f"held by {run.tp.id}")
                row = source_row(src, run.columns, run.sside, key)
                if row is not None:
                    replaces.append(replace_statement(run.tp, run.columns, row))
        for key in d.extra:
            add_row(report, group.report_run, key, "extra", ["target"], suspected=paired.get(key),
                 detail=f"on the target only: none of the {len(group.runs)} source tables merged into "
                        f"{group.target} holds this key")
            deletes.append(delete_statement(tside, key))
        for key, holders in d.collisions.items():
            names = ", ".join(group.runs[i].tp.id for i in holders)
            for i in holders:
                if group.runs[i].reported:
                    add_row(report, group.runs[i], key, "changed", ["source", "target"],
                         detail=f"key held by {len(holders)} sources merged into {group.target} ({names}): the "
                                "target holds one row per key; re-plan with --with-source-column (no fix SQL)")
        for run in group.runs:
            if note := collision_note(run):
                run.result.notes.append(note)
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


def confirm_fixed_merges(groups: list[MergeGroup], report: VerifyReport, pools: Pool,
                          src_conns: dict[str, Any], tgt) -> None:
    """After the fix: the differing ranges narrowed again; a member none of whose rows still differ is identical."""
    for group in groups:
        runs = [r for r in group.reported() if r.result.status == "different"]
        tside = group.runs[0].tside
        if not runs or tside is None:
            continue
        shards = merge_shards(group, pools, src_conns)
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

