"""Routes: where each source table lands, and what a shard merge (many tables -> one) needs.

`--route 'wallet_*.*=wallet.*'`: the left side is a shell pattern over db.table, the right side
the target db.table, where `*` keeps the source's name. The first matching route wins; tables
no route matches keep their names.

A merge is safe only when the merged tables have the same shape and no primary/unique key value
appears in two of them. Overlapping key ranges (min/max per shard) are only a suspicion;
a probe reads real keys of one shard in the overlap and looks them up in the other. The fix is a
source-identity column (`--with-source-column __source`) added to the primary and unique keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..errors import ConfigError
from .introspect import matches
from .model import Change, Finding, Route, TablePlan

SOURCE_COLUMN_MIN_LENGTH = 64
PROBE_SAMPLE = 1000
MAX_PROBED_PAIRS = 20


def parse_route(text: str, source_column: str | None = None) -> Route:
    left, eq, right = text.partition("=")
    target_db, dot, target_table = right.strip().partition(".")
    if not eq or not left.strip() or not dot or not target_db or not target_table:
        raise ConfigError(f"bad --route {text!r}: write SRC_DB.SRC_TABLE=DST_DB.DST_TABLE (shell patterns on the left, "
                          "`*` on the right keeps the source name), e.g. 'wallet_*.*=wallet.*'")
    if any(ch in target_db + target_table for ch in "?[]") or "*" in target_db.strip("*") or "*" in target_table.strip(
            "*"):
        raise ConfigError(f"bad --route {text!r}: the target side takes a name or `*`, not a pattern")
    return Route(source_pattern=left.strip(), target_database=target_db, target_table=target_table,
                 source_column=source_column)


def route_target(routes: Sequence[Route], database: str, table: str) -> tuple[str, str, Route | None]:
    for route in routes:
        if matches(route.source_pattern, database, table):
            tdb = database if route.target_database == "*" else route.target_database
            tt = table if route.target_table == "*" else route.target_table
            return tdb, tt, route
    return database, table, None


def source_identity(tp: TablePlan) -> str:
    """The value copy and sync write into the source column: `instance/db`."""
    return f"{tp.source}/{tp.database}"


def merge_groups(tables: Sequence[TablePlan]) -> dict[str, list[TablePlan]]:
    """Target table -> its source tables, for targets fed by more than one active table."""
    groups: dict[str, list[TablePlan]] = {}
    for tp in tables:
        if tp.mode != "skip":
            groups.setdefault(tp.target_name, []).append(tp)
    return {name: members for name, members in groups.items() if len(members) > 1}


# ---------------------------------------------------------------- shapes


def shape_signature(tp: TablePlan) -> tuple:
    cols = tuple((c.name, c.column_type.lower(), c.nullable, c.collation, c.generated) for c in tp.columns)
    return cols, tuple(tp.key)


def describe_shape_difference(a: TablePlan, b: TablePlan) -> str:
    ca = {c.name: c for c in a.columns}
    cb = {c.name: c for c in b.columns}
    only_a = [n for n in ca if n not in cb]
    only_b = [n for n in cb if n not in ca]
    if only_a or only_b:
        return (f"columns only in {a.id}: {', '.join(only_a) or '-'}; only in {b.id}: {', '.join(only_b) or '-'}")
    for name, col in ca.items():
        other = cb[name]
        if (col.column_type.lower(), col.nullable, col.collation) != (other.column_type.lower(), other.nullable,
                                                                        other.collation):
            return (f"column {name}: {col.column_type}{'' if col.nullable else ' NOT NULL'} {col.collation or ''} in "
                    f"{a.id} vs {other.column_type}{'' if other.nullable else ' NOT NULL'} {other.collation or ''} "
                    f"in {b.id}").replace("  ", " ")
    if [c.name for c in a.columns] != [c.name for c in b.columns]:
        return f"column order differs between {a.id} and {b.id}"
    return f"key ({', '.join(a.key)}) in {a.id} vs ({', '.join(b.key)}) in {b.id}"


def shape_findings(target: str, members: list[TablePlan]) -> list[Finding]:
    first = members[0]
    sig = shape_signature(first)
    out = []
    for other in members[1:]:
        if shape_signature(other) != sig:
            out.append(Finding(
                check="route.shape-mismatch", severity="blocking", instance=other.source, database=other.database,
                table=other.table,
                message=f"merged into {target} but its shape differs from {first.id}: "
                        f"{describe_shape_difference(first, other)}",
                fix="make the shards' tables identical on the sources, or route them to different target tables"))
    return out


# ---------------------------------------------------------------- key collisions


@dataclass
class KeyRange:
    """min/max of one unique key of one member table."""

    table_id: str
    key_name: str
    columns: list[str]
    low: tuple
    high: tuple


# probe(member_a, member_b, columns, low, high) -> (colliding key count, an example key or None)
Probe = Callable[[TablePlan, TablePlan, list[str], tuple, tuple], tuple[int, Any]]


def _comparable(a: tuple, b: tuple) -> bool:
    try:
        _ = a <= b
    except TypeError:
        return False
    return True


def overlapping_pairs(ranges: list[KeyRange]) -> list[tuple[KeyRange, KeyRange]]:
    """Pairs of members whose [min, max] intervals of the key intersect (sweep by min)."""
    ranges = [r for r in ranges if _comparable(r.low, r.high)]
    try:
        ranges.sort(key=lambda r: r.low)
    except TypeError:
        return []
    pairs = []
    active: list[KeyRange] = []
    for r in ranges:
        active = [a for a in active if a.high >= r.low]
        pairs += [(a, r) for a in active]
        active.append(r)
    return pairs


def collision_findings(target: str, members: list[TablePlan], ranges: dict[str, list[KeyRange]],
                       probe: Probe) -> list[Finding]:
    """Per unique key of the merged table: confirmed collisions (blocking), overlapping ranges
    without a confirmed collision (warning). With a source column neither can happen."""
    if members[0].source_column:
        return [Finding(check="route.source-column", severity="info", database=members[0].target_database,
                        table=members[0].target_table,
                        message=f"{len(members)} tables merged into {target}; column {members[0].source_column} "
                                "(source identity instance/db) is added to its primary and unique keys, so equal "
                                "keys from different shards stay distinct")]
    by_id = {m.id: m for m in members}
    out: list[Finding] = []
    key_names = sorted({r.key_name for rs in ranges.values() for r in rs})
    for key_name in key_names:
        key_ranges = [r for m in members for r in ranges.get(m.id, []) if r.key_name == key_name]
        pairs = overlapping_pairs(key_ranges)
        if not pairs:
            continue
        confirmed = None
        for a, b in pairs[:MAX_PROBED_PAIRS]:
            low, high = max(a.low, b.low), min(a.high, b.high)
            hits, example = probe(by_id[a.table_id], by_id[b.table_id], a.columns, low, high)
            if hits:
                confirmed = (a, b, hits, example)
                break
        cols = ", ".join(key_ranges[0].columns)
        fix = ("re-plan with --with-source-column __source (adds the source identity to the target's keys), or "
               "make the shards' keys disjoint on the sources")
        if confirmed:
            a, b, hits, example = confirmed
            out.append(Finding(
                check="route.key-collision", severity="blocking", database=members[0].target_database,
                table=members[0].target_table,
                message=f"merging into {target}: {key_name} ({cols}) values collide between {a.table_id} and "
                        f"{b.table_id} ({hits} of the sampled keys, e.g. {example!r}); "
                        f"{len(pairs)} shard pair(s) have overlapping ranges",
                fix=fix))
        else:
            out.append(Finding(
                check="route.key-overlap", severity="warning", database=members[0].target_database,
                table=members[0].target_table,
                message=f"merging into {target}: {key_name} ({cols}) ranges overlap in {len(pairs)} shard pair(s) "
                        "but the probe found no equal values yet; new rows may still collide",
                fix=fix))
    return out


# ---------------------------------------------------------------- source column in the target DDL


def source_column_length(members: Sequence[TablePlan]) -> int:
    longest = max(len(source_identity(m).encode()) for m in members)
    return max(SOURCE_COLUMN_MIN_LENGTH, longest)


def add_source_column(ddl: str, column: str, length: int) -> tuple[str, Change]:
    """Add `column VARCHAR(length) NOT NULL` to a CREATE TABLE and append it to the primary key
    and every unique key (appended last, so an AUTO_INCREMENT column still leads its key), plus
    an index (column, key...) so a per-shard range (column = X AND key range) is an index range."""
    try:
        tree = sqlglot.parse_one(ddl, read="mysql")
    except ParseError as exc:
        return ddl, _blocked(column, f"the target DDL does not parse ({str(exc).splitlines()[0]})")
    schema = tree.this if isinstance(tree, exp.Create) else None
    if not isinstance(schema, exp.Schema):
        return ddl, _blocked(column, "the target DDL is not a plain CREATE TABLE")
    defs = schema.expressions
    if any(isinstance(e, exp.ColumnDef) and e.name == column for e in defs):
        return ddl, _blocked(column, f"the table already has a column named {column}")
    if any(isinstance(e, exp.ColumnDef) and any(isinstance(c.kind, (exp.PrimaryKeyColumnConstraint,
                                                                     exp.UniqueColumnConstraint))
                                                for c in e.constraints) for e in defs):
        return ddl, _blocked(column, "a key is declared inline on a column")
    new_col = sqlglot.parse_one(f"CREATE TABLE x (`{column.replace('`', '``')}` VARCHAR({length}) NOT NULL)",
                                read="mysql").this.expressions[0]
    last_col = max(i for i, e in enumerate(defs) if isinstance(e, exp.ColumnDef))
    defs.insert(last_col + 1, new_col)
    shard_key = _shard_key_columns(defs)
    keys = []
    for e in defs:
        if isinstance(e, exp.PrimaryKey):
            e.append("expressions", exp.to_identifier(column, quoted=True))
            keys.append("PRIMARY KEY")
        elif isinstance(e, exp.UniqueColumnConstraint) and isinstance(e.this, exp.Schema):
            e.this.append("expressions", exp.column(exp.to_identifier(column, quoted=True)))
            keys.append(f"UNIQUE {e.this.this.name if e.this.this else ''}".strip())
    index = _index_name(defs, column)
    defs.append(exp.IndexColumnConstraint(
        this=exp.to_identifier(index, quoted=True),
        expressions=[exp.column(exp.to_identifier(c, quoted=True)) for c in [column, *shard_key]]))
    schema.set("expressions", defs)
    out = tree.sql(dialect="mysql", pretty=True)
    return out, Change(rule="route.source-column", severity="rewrite",
                       reason=f"shard merge: column {column} holds the source identity (instance/db) and joins "
                              f"{', '.join(keys) or 'no key'}, so equal keys from different shards do not collide; "
                              f"index {index} ({', '.join([column, *shard_key])}) lets one shard's key range be "
                              "read without scanning the other shards' rows (verify, sync)",
                       after=f"{column} VARCHAR({length}) NOT NULL")


def _shard_key_columns(defs: list[exp.Expression]) -> list[str]:
    """The key one shard's rows are ranged by: the primary key, else the first unique key (before
    the source column joins them)."""
    for e in defs:
        if isinstance(e, exp.PrimaryKey):
            return [c.name for c in e.expressions]
    for e in defs:
        if isinstance(e, exp.UniqueColumnConstraint) and isinstance(e.this, exp.Schema):
            return [c.name for c in e.this.expressions]
    return []


def _index_name(defs: list[exp.Expression], column: str) -> str:
    """`<column>_key`, made unique among the table's index names."""
    taken = set()
    for e in defs:
        if isinstance(e, exp.IndexColumnConstraint) and e.this is not None:
            taken.add(e.this.name.lower())
        elif isinstance(e, exp.UniqueColumnConstraint) and isinstance(e.this, exp.Schema) and e.this.this:
            taken.add(e.this.this.name.lower())
    name, n = f"{column}_key", 1
    while name.lower() in taken:
        n += 1
        name = f"{column}_key{n}"
    return name


def align_auto_increment(members: Sequence[TablePlan]) -> None:
    """A merged table starts its AUTO_INCREMENT above every shard's counter, not the first
    shard's (the target table is created from one member's DDL)."""
    trees, values = [], []
    for tp in members:
        try:
            tree = sqlglot.parse_one(tp.target_ddl, read="mysql")
        except ParseError:
            return
        prop = tree.find(exp.AutoIncrementProperty)
        if prop is None:
            return
        trees.append((tp, tree, prop))
        values.append(int(prop.this.name))
    highest = max(values, default=0)
    if not trees or all(v == highest for v in values):
        return
    for (tp, tree, prop), value in zip(trees, values):
        prop.set("this", exp.Literal.number(highest))
        tp.target_ddl = tree.sql(dialect="mysql", pretty=True)
        tp.changes.append(Change(rule="route.auto-increment", severity="rewrite",
                                 reason=f"shard merge: AUTO_INCREMENT starts at {highest}, the highest counter of "
                                        f"the {len(members)} merged tables", before=str(value), after=str(highest)))


def _blocked(column: str, why: str) -> Change:
    return Change(rule="route.source-column", severity="blocking",
                  reason=f"cannot add the source column {column}: {why}; edit the target DDL by hand")
