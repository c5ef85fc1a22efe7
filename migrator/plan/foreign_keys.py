"""The foreign-key graph of a plan, its findings, and references kept valid across routes.

Read from information_schema (schema.catalog.read_foreign_keys), stored in Plan.foreign_keys so sync
can reproduce cascades the source does not write to its binlog. A route renames or merges tables:
each REFERENCES clause of a target DDL is pointed at the parent's target name; where a reference
cannot be kept (the parent's key gained a source column this table lacks; a parent in another
target database on OceanBase, which refuses cross-database foreign keys: error 1235), the
constraint is left out of the target DDL with a warning saying why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlglot import exp

from ..schema.fk import foreign_keys, parse_create, set_reference
from .introspect import TableInfo
from .model import Change, Finding, ForeignKey, TablePlan

_ACTIONS = {"CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT"}


def _action(value: str) -> str:
    value = " ".join(value.upper().split())
    return value if value in _ACTIONS else "RESTRICT"


def foreign_key_graph(tables: Sequence[TablePlan], infos: dict[str, TableInfo]) -> list[ForeignKey]:
    """Every foreign key of the plan's tables (skipped ones included, so the graph is whole)."""
    active = {t.id for t in tables if t.mode != "skip"}
    out: list[ForeignKey] = []
    for tp in tables:
        info = infos.get(tp.id)
        for fk in info.foreign_keys if info else []:
            parent = f"{tp.source}/{fk.ref_database}.{fk.ref_table}"
            out.append(ForeignKey(
                name=fk.name, table=tp.id, columns=list(fk.columns), parent=parent,
                parent_columns=list(fk.ref_columns), on_delete=_action(fk.on_delete),  # type: ignore[arg-type]
                on_update=_action(fk.on_update), parent_in_plan=parent in active))  # type: ignore[arg-type]
    return out


def foreign_key_findings(tables: Sequence[TablePlan], fks: Sequence[ForeignKey]) -> list[Finding]:
    """A child migrated without its parent: named with both tables."""
    by_id = {t.id: t for t in tables}
    out: list[Finding] = []
    for fk in fks:
        child = by_id.get(fk.table)
        if child is None or child.mode == "skip" or fk.parent_in_plan:
            continue
        parent = fk.parent.split("/", 1)[-1]
        out.append(Finding(
            check="fk.parent-not-migrated", severity="warning", instance=child.source, database=child.database,
            table=child.table,
            message=f"foreign key {fk.name} of {child.source_name} references {parent}, which is not migrated "
                    "(filtered out or --skip): the constraint is created on the target without its parent table, "
                    "so the target will refuse new child rows until that table exists",
            fix=f"include {parent} in the plan, create it on the target yourself, or drop {fk.name} there"))
    return out


def retarget_references(tables: Sequence[TablePlan], fks: Sequence[ForeignKey], engine: str) -> None:
    """Point each target DDL's REFERENCES at the parent's target table (routes rename and merge);
    extend a reference with the shard source column when both tables carry it; leave out, with a
    warning change, a reference the target cannot hold."""
    by_id = {t.id: t for t in tables}
    per_table: dict[str, list[ForeignKey]] = defaultdict(list)
    for fk in fks:
        per_table[fk.table].append(fk)
    for tp in tables:
        if tp.mode == "skip" or not per_table.get(tp.id) or not tp.target_ddl:
            continue
        tree = parse_create(tp.target_ddl)
        if tree is None:
            moved = [fk for fk in per_table[tp.id] if (p := by_id.get(fk.parent)) is not None and p.mode != "skip"
                     and (p.target_name != f"{tp.target_database}.{fk.parent.rsplit('.', 1)[1]}" or p.source_column)]
            if moved:
                tp.changes.append(Change(
                    rule="fk.route-unparsed", severity="warning",
                    reason=f"the target DDL could not be parsed, so foreign key(s) {', '.join(f.name for f in moved)} "
                           "still name the source's parent table: edit their REFERENCES in the plan by hand"))
            continue
        changed = False
        for con in foreign_keys(tree):
            parent_db = con.ref_database or tp.database
            parent = by_id.get(f"{tp.source}/{parent_db}.{con.ref_table}")
            if parent is None or parent.mode == "skip":
                continue
            label = con.name or f"({', '.join(con.columns)})"
            reason = _unkeepable(tp, parent, engine)
            if reason:
                tree.this.set("expressions", [e for e in tree.this.expressions if e is not con.node])
                tp.changes.append(Change(rule="fk.dropped", severity="warning", before=con.sql(),
                                         reason=f"foreign key {label} -> {parent.target_name} left out: {reason}"))
                changed = True
                continue
            notes = []
            if parent.source_column and parent.source_column not in con.ref_columns:
                _append_column(con, parent.source_column)
                notes.append(f"joined by {parent.source_column} on both sides (one shard's child rows reference "
                             "that shard's parent)")
            want_db = None if parent.target_database == tp.target_database else parent.target_database
            have_db = con.ref_database if con.ref_database != tp.target_database else None
            if (want_db, parent.target_table) != (have_db, con.ref_table):
                set_reference(con, want_db, parent.target_table)
                notes.append(f"references {parent.target_name} (routed)")
            if notes:
                tp.changes.append(Change(rule="fk.route", severity="rewrite", after=con.sql(),
                                         reason=f"foreign key {label}: " + "; ".join(notes)))
                changed = True
        if changed:
            tp.target_ddl = tree.sql(dialect="mysql", pretty=True)


def _unkeepable(child: TablePlan, parent: TablePlan, engine: str) -> str | None:
    if parent.target_database != child.target_database and engine == "oceanbase":
        return (f"the parent lands in database {parent.target_database} and this table in {child.target_database}; "
                "OceanBase refuses foreign keys across databases (error 1235): route both to one database")
    if parent.source_column and parent.source_column != child.source_column:
        return (f"the parent is a shard merge whose keys now include {parent.source_column}, which this table "
                "does not have, so no unique key of the parent matches the reference: merge this table with the "
                "same --with-source-column, or add the constraint by hand")
    return None


def _append_column(con, column: str) -> None:
    fk = con.node.find(exp.ForeignKey)
    fk.append("expressions", exp.to_identifier(column, quoted=True))
    fk.args["reference"].this.append("expressions", exp.to_identifier(column, quoted=True))
    con.columns.append(column)
    con.ref_columns.append(column)
