"""Foreign keys in target DDL: read them (sqlglot), and create tables in dependency order.

One creation path for `schema --apply` and for copy's missing target tables:
`creation_steps(tables, existing)` orders the tables to create so that a parent comes before its
children; a cycle (a -> b -> a) is broken by creating one of its tables without the constraints
that point at tables not created yet, and adding those at the end with
`ALTER TABLE ... ADD CONSTRAINT`. A self-reference stays inline (seekdb 1.4 accepts it).

Measured on seekdb 1.4.0: with foreign_key_checks=1 a FOREIGN KEY to a missing table is error
1146; with foreign_key_checks=0 it is accepted (and enforced once the parent exists); a FOREIGN
KEY whose parent lies in another database is refused either way (error 1235); ALTER TABLE ADD
CONSTRAINT FOREIGN KEY over rows without a parent succeeds with the checks off and is refused
with them on (error 5785). Ordering does not rely on the checks being off, so a target that
validates references at CREATE time (MySQL with the checks on) gets the same statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..db import qualified, quote_ident


@dataclass
class FkConstraint:
    name: str | None
    columns: list[str]
    ref_database: str | None  # None: the child's own database
    ref_table: str
    ref_columns: list[str]
    on_delete: str = "RESTRICT"
    on_update: str = "RESTRICT"
    node: exp.Expression | None = field(default=None, repr=False)  # the table element in the parsed DDL

    def sql(self) -> str:
        assert self.node is not None
        return self.node.sql(dialect="mysql")


def parse_create(ddl: str) -> exp.Create | None:
    """A CREATE TABLE parsed by sqlglot, or None when sqlglot only keeps it as text."""
    try:
        tree = sqlglot.parse_one(ddl, read="mysql")
    except ParseError:
        return None
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
        return None
    return tree


def _name(node: exp.Expression) -> str:
    return node.name if isinstance(node, (exp.Identifier, exp.Column)) else node.sql(dialect="mysql").strip("`")


def _actions(ref: exp.Reference) -> tuple[str, str]:
    on_delete = on_update = "RESTRICT"  # InnoDB's default when no action is given
    for opt in ref.args.get("options") or []:
        text = " ".join(str(opt).upper().split())
        if text.startswith("ON DELETE "):
            on_delete = text[len("ON DELETE "):]
        elif text.startswith("ON UPDATE "):
            on_update = text[len("ON UPDATE "):]
    return on_delete, on_update


def foreign_keys(tree: exp.Create) -> list[FkConstraint]:
    """The FOREIGN KEY table elements of a parsed CREATE TABLE, in DDL order."""
    out: list[FkConstraint] = []
    for element in tree.this.expressions:
        fk = element.find(exp.ForeignKey) if isinstance(element, (exp.Constraint, exp.ForeignKey)) else None
        if fk is None:
            continue
        ref = fk.args.get("reference")
        schema = ref.this if isinstance(ref, exp.Reference) else None
        table = schema.this if isinstance(schema, exp.Schema) else schema
        if not isinstance(table, exp.Table):
            continue
        on_delete, on_update = _actions(ref)
        name = element.this.name if isinstance(element, exp.Constraint) and element.this else None
        out.append(FkConstraint(
            name=name, columns=[_name(c) for c in fk.expressions], ref_database=table.db or None,
            ref_table=table.name, ref_columns=[_name(c) for c in (schema.expressions if isinstance(schema, exp.Schema)
                                                                 else [])],
            on_delete=on_delete, on_update=on_update, node=element))
    return out


def foreign_keys_of(ddl: str) -> list[FkConstraint]:
    tree = parse_create(ddl)
    return foreign_keys(tree) if tree is not None else []


def set_reference(fk: FkConstraint, database: str | None, table: str) -> None:
    """Point the constraint (in its parsed tree) at another table: routes rename targets."""
    assert fk.node is not None
    ref_table = fk.node.find(exp.ForeignKey).args["reference"].this.this
    ref_table.set("this", exp.to_identifier(table, quoted=True))
    ref_table.set("db", exp.to_identifier(database, quoted=True) if database else None)
    fk.ref_database, fk.ref_table = database, table


# ---------------------------------------------------------------- creation order


@dataclass
class TableToCreate:
    database: str
    table: str
    ddl: str

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass
class CreateStep:
    database: str
    table: str  # the table the statement creates or alters
    sql: str  # run with `USE database` first
    kind: str  # "create" | "add-constraint"
    note: str = ""  # why a constraint was deferred

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"


def _parent_name(t: TableToCreate, fk: FkConstraint) -> str:
    return f"{fk.ref_database or t.database}.{fk.ref_table}"


def _on_a_cycle(remaining: list[TableToCreate], deps: dict[str, set[str]], done: set[str]) -> TableToCreate:
    """Every remaining table waits for another: walk the waits from the first one until a table
    repeats; that table lies on a cycle, and creating it first (without the constraints to tables
    not created yet) breaks the cycle. Tables that merely depend on a cycle wait their turn."""
    by_name = {t.name: t for t in remaining}
    t, seen = remaining[0], set()
    while t.name not in seen:
        seen.add(t.name)
        t = next(r for r in remaining if r.name in deps[t.name] - done)
    return by_name[t.name]


def creation_steps(tables: list[TableToCreate]) -> list[CreateStep]:
    """CREATE statements for `tables` with every parent before its children (input order where the
    graph leaves a choice); in a cycle, the constraints that point at a table not created yet are
    left out of the CREATE and added by ALTER TABLE ... ADD CONSTRAINT steps at the end.
    Constraints to tables outside `tables` (existing, or not migrated) stay inline."""
    parsed = {t.name: parse_create(t.ddl) for t in tables}
    fks = {t.name: foreign_keys(parsed[t.name]) if parsed[t.name] is not None else [] for t in tables}
    names = {t.name for t in tables}
    deps = {t.name: {_parent_name(t, fk) for fk in fks[t.name]} & names - {t.name} for t in tables}
    remaining = list(tables)
    done: set[str] = set()
    order: list[TableToCreate] = []
    while remaining:
        t = next((t for t in remaining if deps[t.name] <= done), None) or _on_a_cycle(remaining, deps, done)
        remaining.remove(t)
        order.append(t)
        done.add(t.name)
    steps: list[CreateStep] = []
    deferred: list[CreateStep] = []
    created: set[str] = set()
    for t in order:
        later = [fk for fk in fks[t.name]
                 if _parent_name(t, fk) in names and _parent_name(t, fk) not in created and _parent_name(t, fk) != t.name]
        created.add(t.name)
        tree = parsed[t.name]
        if not later or tree is None:
            steps.append(CreateStep(t.database, t.table, t.ddl, "create"))
            continue
        tree = tree.copy()
        keep = []
        later_sql = {fk.sql() for fk in later}
        for element in tree.this.expressions:
            if element.sql(dialect="mysql") in later_sql:
                continue
            keep.append(element)
        tree.this.set("expressions", keep)
        steps.append(CreateStep(t.database, t.table, tree.sql(dialect="mysql", pretty=True), "create",
                                note=f"{len(later)} foreign key(s) added after the tables they reference exist"))
        for fk in later:
            deferred.append(CreateStep(
                t.database, t.table, f"ALTER TABLE {qualified(t.database, t.table)} ADD {fk.sql()}", "add-constraint",
                note=f"cycle: {t.name} -> {_parent_name(t, fk)}"))
    return steps + deferred


def use_statement(database: str) -> str:
    return f"USE {quote_ident(database)}"
