"""Before checksums: each picked table's sides from the live source and target shapes, and the
shared key ranges of merges without a source column."""

from __future__ import annotations

from ..engine.pool import Pool
from ..errors import MigratorError, SourceError
from ..plan.model import Chunk, Column, Plan, TablePlan
from ..schema.catalog import read_columns
from .checksum import key_hull
from .merge import MergeGroup, meets, merged_without_source_column, ordered_here, shared_ranges
from .report import TableResult
from .sides import build_sides, compared_columns, key_collation_note, target_columns
from .tablerun import TableRun, plan_chunks


def prepare(plan: Plan, tables: list[TablePlan], conn, pools: Pool) -> tuple[list[TableRun], list[MergeGroup]]:
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
    types, column_types, _ = target_columns(conn, first.target_database, first.target_table)
    for run in group.runs:
        run.columns = [c for c in run.columns if c.name.lower() in common]
        run.sside, run.tside, _ = build_sides(run.tp, types, column_types, run.columns)


def _source_shapes(tables: list[TablePlan], pools: Pool) -> dict[str, list[Column] | MigratorError]:
    """Each table's columns on its source now (one connection per instance, closed after)."""
    shapes: dict[str, list[Column] | MigratorError] = {}
    by_instance: dict[str, list[TablePlan]] = {}
    for tp in tables:
        by_instance.setdefault(tp.source, []).append(tp)
    for instance, tps in by_instance.items():
        try:
            read = pools.run(instance, lambda c, tps=tps: [read_columns(c, tp.database, tp.table) for tp in tps],
                             what="checksum", throttled=False)
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
                  shapes: dict[str, list[Column] | MigratorError]) -> list[TableRun]:
    runs: list[TableRun] = []
    types_cache: dict[tuple[str, str], tuple[dict[str, str], dict[str, str], dict[str, str]]] = {}
    shape_cache: dict[tuple[str, str], list[Column]] = {}
    for tp in tables:
        result = TableResult(table=tp.id, source_table=tp.source_name, target_table=tp.target_name)
        tkey = (tp.target_database, tp.target_table)
        if tkey not in types_cache:
            types_cache[tkey] = target_columns(conn, *tkey)
            shape_cache[tkey] = read_columns(conn, *tkey)
        try:
            types, column_types, collations = types_cache[tkey]
            shape = shapes[tp.id]
            if isinstance(shape, MigratorError):
                raise shape
            columns, only = compared_columns(tp, shape, shape_cache[tkey]) if types else (tp.data_columns(), [])
            sside, tside, notes = build_sides(tp, types, column_types, columns)
        except MigratorError as exc:
            result.status, result.error = "error", str(exc)
            runs.append(TableRun(tp, None, None, result, reported=tp.id in picked))
            continue
        one_range = key_collation_note(tp, sside, collations)
        if one_range and len(plan_chunks(tp)) > 1:
            notes.append(one_range)
        result.notes, result.client_columns = notes + only, list(sside.client_columns)
        run = TableRun(tp, sside, tside, result, one_range=bool(one_range), reported=tp.id in picked)
        run.columns, run.shape_diffs = columns, only
        if only:
            result.status, result.differences = "different", len(only)
        runs.append(run)
    return runs


def plan_merges(groups: list[MergeGroup], pools: Pool) -> None:
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
            hulls[run.tp.id] = (pools.run(side.instance, lambda c, s=side: key_hull(c, s), what="checksum",
                                          throttled=False)
                                if ordered else ([], []))
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
