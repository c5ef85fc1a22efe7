"""`migrator schema PLAN [--apply]`: the target DDL of a plan, and creating it idempotently.

Each target table is created once, even when many source tables merge into it, parents before
children (schema.fk: a cycle's constraints are added after its tables exist). A table that
already exists is compared with what the plan would create (the plan's DDL is run in a scratch
database on the target itself, so both sides are normalised by the same server); a different
shape is reported, never dropped or altered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import pymysql

from ..db import error_code, query, quote_ident, session
from ..endpoint import Endpoint
from ..plan.model import Plan
from .catalog import LiveShape, read_shape
from .fk import TableToCreate, creation_steps

Status = Literal["created", "exists", "different", "blocked", "failed"]


@dataclass
class TargetTable:
    database: str
    table: str
    ddl: str
    sources: list[str]  # TablePlan ids merged into it
    blocking: list[str] = field(default_factory=list)  # reasons it cannot be created

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass
class TableOutcome:
    table: TargetTable
    status: Status
    detail: list[str] = field(default_factory=list)


@dataclass
class ApplyReport:
    databases_created: list[str] = field(default_factory=list)
    outcomes: list[TableOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status in ("created", "exists") for o in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def target_tables(plan: Plan) -> list[TargetTable]:
    """One entry per target table of the plan's active tables, in plan order."""
    out: dict[str, TargetTable] = {}
    for tp in plan.active_tables():
        tt = out.get(tp.target_name)
        if tt is None:
            tt = out[tp.target_name] = TargetTable(tp.target_database, tp.target_table, tp.target_ddl, [])
        tt.sources.append(tp.id)
        tt.blocking += [f"{tp.id}: {c.reason}" for c in tp.changes if c.severity == "blocking"]
        if not tp.target_ddl:
            tt.blocking.append(f"{tp.id}: no target DDL")
    return list(out.values())


def _to_create(tables: list[TargetTable]) -> list[TableToCreate]:
    return [TableToCreate(tt.database, tt.table, tt.ddl) for tt in tables if not tt.blocking]


def schema_script(plan: Plan) -> str:
    """The DDL `--apply` would run, as one script a DBA can read or run by hand: tables in
    foreign-key dependency order, constraints of a cycle added at the end."""
    tables = target_tables(plan)
    by_name = {tt.name: tt for tt in tables}
    parts: list[str] = ["SET foreign_key_checks = 0;"]
    current_db = None
    for db in dict.fromkeys(tt.database for tt in tables):
        parts.append(f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)};")
    for tt in tables:
        if tt.blocking:
            parts.append(f"-- {tt.name}: NOT CREATED (blocking): " + "; ".join(tt.blocking))
    for step in creation_steps(_to_create(tables)):
        if step.database != current_db:
            parts.append(f"\nUSE {quote_ident(step.database)};")
            current_db = step.database
        tt = by_name[step.name]
        if step.kind == "create":
            header = f"-- {tt.name} <- {', '.join(tt.sources[:4])}" + (
                f" and {len(tt.sources) - 4} more" if len(tt.sources) > 4 else "")
        else:
            header = f"-- {step.note}"
        if step.kind == "create" and step.note:
            header += f"\n-- {step.note}"
        parts.append(header + "\n" + step.sql.rstrip().rstrip(";") + ";")
    return "\n".join(parts) + "\n"


def apply_schema(plan: Plan, target: Endpoint) -> ApplyReport:
    """Create the plan's databases and tables on the target, parents before children; idempotent."""
    report = ApplyReport()
    tables = target_tables(plan)
    outcomes: dict[str, TableOutcome] = {}
    scratch = f"__migrator_check_{uuid.uuid4().hex[:8]}"
    with session(target, "target") as conn:  # target sessions run with foreign_key_checks=0
        existing_dbs = {r[0] for r in query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
        for db in dict.fromkeys(tt.database for tt in tables):
            if db not in existing_dbs:
                query(conn, f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)}")
                report.databases_created.append(db)
        scratch_made = False
        missing: list[TargetTable] = []
        try:
            for tt in tables:
                if tt.blocking:
                    outcomes[tt.name] = TableOutcome(tt, "blocked", tt.blocking)
                elif not table_exists(conn, tt.database, tt.table):
                    missing.append(tt)
                else:
                    if not scratch_made:
                        query(conn, f"CREATE DATABASE {quote_ident(scratch)}")
                        scratch_made = True
                    outcomes[tt.name] = compare_existing(conn, tt, scratch)
        finally:
            if scratch_made:
                query(conn, f"DROP DATABASE IF EXISTS {quote_ident(scratch)}")
        outcomes.update(create_tables(conn, missing))
    report.outcomes = [outcomes[tt.name] for tt in tables]
    return report


def create_tables(conn: pymysql.connections.Connection, tables: list[TargetTable]) -> dict[str, TableOutcome]:
    """Create missing tables in foreign-key order (see schema.fk); one outcome per table."""
    by_name = {tt.name: tt for tt in tables}
    outcomes: dict[str, TableOutcome] = {}
    for step in creation_steps(_to_create(tables)):
        tt = by_name[step.name]
        if step.kind == "create":
            outcomes[tt.name] = create_table(conn, tt, step.sql)
            if step.note and outcomes[tt.name].status == "created":
                outcomes[tt.name].detail.append(step.note)
            continue
        if outcomes[tt.name].status != "created":
            continue
        try:
            _run_in(conn, step.database, step.sql)
        except pymysql.err.MySQLError as exc:
            outcomes[tt.name] = TableOutcome(tt, "failed", [
                f"created, but adding a foreign key failed ({step.note}): error {error_code(exc)}: {exc.args[-1]}: "
                f"add it by hand: {step.sql}"])
    return outcomes


def table_exists(conn: pymysql.connections.Connection, db: str, table: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                      (db, table)))


def _run_in(conn: pymysql.connections.Connection, db: str, ddl: str) -> None:
    query(conn, f"USE {quote_ident(db)}")
    query(conn, ddl)


def create_table(conn: pymysql.connections.Connection, tt: TargetTable, ddl: str | None = None) -> TableOutcome:
    try:
        _run_in(conn, tt.database, ddl if ddl is not None else tt.ddl)
    except pymysql.err.MySQLError as exc:
        if error_code(exc) == 1050:  # created concurrently: compare on the next run
            return TableOutcome(tt, "exists", ["created by someone else meanwhile"])
        return TableOutcome(tt, "failed", [f"the target rejected the DDL: error {error_code(exc)}: {exc.args[-1]}"])
    return TableOutcome(tt, "created")


def compare_existing(conn: pymysql.connections.Connection, tt: TargetTable, scratch: str) -> TableOutcome:
    try:
        _run_in(conn, scratch, tt.ddl)
    except pymysql.err.MySQLError as exc:
        return TableOutcome(tt, "failed", [f"exists; the plan's DDL is rejected by the target "
                                           f"(error {error_code(exc)}: {exc.args[-1]}), so it cannot be compared"])
    try:
        diffs = shape_differences(comparable_shape(conn, tt.database, tt.table),
                                  comparable_shape(conn, scratch, tt.table))
    finally:
        query(conn, f"DROP TABLE IF EXISTS {quote_ident(scratch)}.{quote_ident(tt.table)}")
    return TableOutcome(tt, "different" if diffs else "exists", diffs)


@dataclass
class Shape:
    """A table's shape as compared here: columns by name, indexes by name."""

    columns: dict[str, tuple]  # name -> (position, type, nullable, collation, default)
    indexes: dict[str, tuple]  # name -> (unique, columns)


def comparable_shape(conn: pymysql.connections.Connection, db: str, table: str) -> Shape:
    shape = read_shape(conn, db, table) or LiveShape([], [])
    return Shape({c.name: (pos, c.column_type.lower(), c.nullable, c.collation, c.default)
                  for pos, c in enumerate(shape.columns, start=1)},
                 {i.name: (i.unique, i.columns) for i in shape.indexes})


def _col_text(c: tuple) -> str:
    return f"{c[1]}{'' if c[2] else ' NOT NULL'}" + (f" COLLATE {c[3]}" if c[3] else "") + (
        f" DEFAULT {c[4]}" if c[4] is not None else "")


def shape_differences(existing: Shape, planned: Shape) -> list[str]:
    """Human-readable differences, existing table vs the plan's DDL."""
    out: list[str] = []
    for name, want in planned.columns.items():
        have = existing.columns.get(name)
        if have is None:
            out.append(f"column {name} is missing (plan: {_col_text(want)})")
        elif have[1:] != want[1:]:
            out.append(f"column {name} is {_col_text(have)}; plan: {_col_text(want)}")
        elif have[0] != want[0]:
            out.append(f"column {name} is at position {have[0]}; plan: {want[0]}")
    out += [f"column {n} is not in the plan" for n in existing.columns if n not in planned.columns]
    for name, want in planned.indexes.items():
        have = existing.indexes.get(name)
        kind = "unique key" if want[0] else "index"
        if have is None:
            out.append(f"{kind} {name} ({', '.join(want[1])}) is missing")
        elif have != want:
            out.append(f"{kind} {name} is ({', '.join(have[1])}){' unique' if have[0] else ''}; "
                       f"plan: ({', '.join(want[1])}){' unique' if want[0] else ''}")
    out += [f"index {n} is not in the plan" for n in existing.indexes if n not in planned.indexes]
    return out
