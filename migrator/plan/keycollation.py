"""Unique keys whose text columns change collation in the DDL rewrite (latin1 -> utf8mb4,
latin1_swedish_ci / utf8mb4_unicode_ci / ... -> utf8mb4_general_ci).

Values distinct under the source collation can be equal under the target's ('A'/'Ä', 's'/'ß'
in latin1_swedish_ci vs utf8mb4_general_ci): the target's PRIMARY/UNIQUE key then refuses one
of them and copy's and sync's REPLACE silently overwrites one row with the other. Plan probes
the source for such values, one GROUP BY per affected key evaluated in the target collation
(a full scan of the table), and blocks when it finds any. `--key-collation bin` maps those key
columns to the charset's _bin collation instead, under which distinct source values stay distinct.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..db import describe_error, quote_ident, qualified, query
from ..endpoint import Endpoint
from ..schema.rewrite import map_charset
from ..schema.targets import TargetCaps
from .introspect import IndexInfo, TableInfo
from .model import Column, Finding, TablePlan

MAX_EXAMPLES = 3
EXAMPLE_CHARS = 40
_UTF8_FAMILY = ("utf8", "utf8mb3", "utf8mb4")
KEY_COLLATIONS = ("rewrite", "bin")


@dataclass
class ChangedColumn:
    name: str
    source: str  # source collation
    target: str  # collation the rewrite gives it on the target


@dataclass
class ChangedKey:
    index: IndexInfo
    changed: list[ChangedColumn]

    def describe(self) -> str:
        name = "PRIMARY KEY" if self.index.primary else f"UNIQUE KEY {quote_ident(self.index.name)}"
        return f"{name} ({', '.join(quote_ident(c) for c in self.index.columns)})"

    def collations(self) -> str:
        return ", ".join(f"{quote_ident(c.name)} {c.source} -> {c.target}" for c in self.changed)


def target_collation(col: Column, caps: TargetCaps) -> str | None:
    """The collation the DDL rewrite gives a text column on the target (None: not a text column)."""
    if not col.collation:
        return None
    m = map_charset(col.charset, col.collation, caps)
    return m.collation or (caps.charsets.get(m.charset) if m.charset else None)


def same_rules(source: str, target: str) -> bool:
    """utf8mb3_general_ci -> utf8mb4_general_ci compares alike (every utf8mb3 value fits)."""
    if source == target:
        return True
    s_cs, _, s_rest = source.partition("_")
    t_cs, _, t_rest = target.partition("_")
    return s_cs in _UTF8_FAMILY and t_cs in _UTF8_FAMILY and s_rest == t_rest


def changed_keys(info: TableInfo, caps: TargetCaps) -> list[ChangedKey]:
    """PRIMARY and UNIQUE keys (composite too) holding a text column whose collation rules change."""
    cols = {c.name.lower(): c for c in info.columns}
    out = []
    for idx in info.indexes:
        if not idx.unique or idx.index_type in ("FULLTEXT", "SPATIAL"):
            continue
        changed = []
        for name in idx.columns:
            col = cols.get(name.lower())
            tgt = target_collation(col, caps) if col else None
            if col is not None and col.collation and tgt and not same_rules(col.collation.lower(), tgt):
                changed.append(ChangedColumn(col.name, col.collation.lower(), tgt))
        if changed:
            out.append(ChangedKey(idx, changed))
    return out


def forced_collations(keys: list[ChangedKey], caps: TargetCaps) -> dict[str, str]:
    """--key-collation bin: the changed key columns -> their target charset's _bin collation."""
    out = {}
    for key in keys:
        for c in key.changed:
            binary = f"{caps.charset_of(c.target)}_bin"
            if binary in caps.collations:
                out[c.name.lower()] = binary
    return out


def forced_collations_with_references(infos: list[TableInfo], caps: TargetCaps) -> dict[tuple[str, str], dict[str, str]]:
    """--key-collation bin for a source's tables: (database, table) -> forced column collations,
    the changed key columns and every foreign-key column referencing a forced column (the target,
    like InnoDB, refuses a foreign key between text columns of different collations: seekdb
    answers 1215). Repeated until nothing changes, so a key that is itself a foreign key (an
    identifying relation) passes it down a chain."""
    forced = {(i.database, i.name): forced_collations(changed_keys(i, caps), caps) for i in infos}
    changed = True
    while changed:
        changed = False
        for info in infos:
            mine = forced[(info.database, info.name)]
            for fk in info.foreign_keys:
                theirs = forced.get(fk.parent, {})
                for cc, pc in zip(fk.columns, fk.ref_columns):
                    want = theirs.get(pc.lower())
                    if want and mine.get(cc.lower()) != want:
                        mine[cc.lower()] = want
                        changed = True
    return forced


# ---------------------------------------------------------------- the probe


def _group_expr(col: str, changed: dict[str, ChangedColumn]) -> str:
    c = changed.get(col.lower())
    if c is None:
        return quote_ident(col)
    charset = c.target.split("_", 1)[0]
    return f"CONVERT({quote_ident(col)} USING {charset}) COLLATE {c.target}"


def probe_sql(info: TableInfo, key: ChangedKey) -> tuple[str, str]:
    """(count query, examples query). The count query returns (rows, distinct values under the
    target collations): COUNT(DISTINCT) is a full scan but ~11x faster than a GROUP BY ... HAVING
    on MariaDB (3.6 s vs 39 s for 1M rows); the GROUP BY runs only when something collides.
    NULLs are left out (a UNIQUE key holds any number of them on both sides)."""
    changed = {c.name.lower(): c for c in key.changed}
    cols = key.index.columns
    group = ", ".join(_group_expr(c, changed) for c in cols)
    not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols)
    base = f"FROM {qualified(info.database, info.name)} WHERE {not_null} GROUP BY {group} HAVING COUNT(*) > 1"
    count = (f"SELECT COUNT(*), COUNT(DISTINCT {group}) FROM {qualified(info.database, info.name)} "
             f"WHERE {not_null}")
    shown = [c for c in cols if c.lower() in changed]
    lows = ", ".join(f"MIN({quote_ident(c)})" for c in shown)
    highs = ", ".join(f"MAX({quote_ident(c)})" for c in shown)
    examples = f"SELECT {lows}, {highs} {base} LIMIT {MAX_EXAMPLES}"
    return count, examples


def show_value(value: object) -> str:
    """A key value for a message: repr-escaped (control characters, quotes), truncated."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = repr(value)
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 3] + "..."


def _pair(row: tuple, n: int) -> str:
    lows, highs = row[:n], row[n:]
    if n == 1:
        return f"{show_value(lows[0])} / {show_value(highs[0])}"
    return f"({', '.join(map(show_value, lows))}) / ({', '.join(map(show_value, highs))})"


def key_collation_findings(conn: pymysql.connections.Connection, ep: Endpoint, instance: str, info: TableInfo,
                           caps: TargetCaps, key_collation: str = "rewrite") -> list[Finding]:
    """Per changed unique key: blocking when the source holds values the target key would merge,
    a warning when it holds none (lookups may still compare differently), info when forced to _bin."""
    out = []
    keys = changed_keys(info, caps)
    forced = forced_collations(keys, caps) if key_collation == "bin" else {}
    for key in keys:
        where = dict(instance=instance, database=info.database, table=info.name)
        if key.changed and all(c.name.lower() in forced for c in key.changed):
            out.append(Finding(check="key.collation-forced", severity="info", **where,
                               message=f"{key.describe()}: {', '.join(quote_ident(c.name) for c in key.changed)} "
                                       f"mapped to {forced[key.changed[0].name.lower()]} on the target "
                                       "(--key-collation bin): distinct source values stay distinct; lookups on "
                                       "the target are case- and accent-sensitive"))
            continue
        count_sql, examples_sql = probe_sql(info, key)
        fix = ("re-plan with --key-collation bin (maps the key's text columns to utf8mb4_bin: case- and "
               "accent-sensitive on the target), or make the values distinct on the source")
        try:
            rows, distinct = query(conn, count_sql)[0]
        except pymysql.err.MySQLError as exc:
            out.append(Finding(check="key.collation-unprobed", severity="warning", **where,
                               message=f"{key.describe()} changes collation ({key.collations()}) and the source "
                                       f"could not be probed for values equal under it: "
                                       f"{describe_error(ep, 'source', exc)}",
                               fix=fix + "; or check by hand that no two key values are equal under the target "
                                   "collation"))
            continue
        merged = int(rows) - int(distinct)
        if merged > 0:
            examples = query(conn, examples_sql)
            n = len(examples[0]) // 2 if examples else 1
            shown = "; ".join(_pair(tuple(r), n) for r in examples)
            out.append(Finding(check="key.collation-collision", severity="blocking", **where,
                               message=f"{key.describe()}: {merged} row(s) hold values distinct on the source but "
                                       f"equal to another row's under the target collation "
                                       f"({key.collations()}), e.g. {shown}: the target key keeps one row of each "
                                       "such group and copy/sync would silently overwrite the others",
                               fix=fix))
        else:
            out.append(Finding(check="key.collation-changed", severity="warning", **where,
                               message=f"{key.describe()} changes collation ({key.collations()}); the source holds no "
                                       "values equal under the new one (probed with a full scan), but new ones may "
                                       "collide and lookups compare differently",
                               fix="fine if the application never writes such values; or re-plan with "
                                   "--key-collation bin"))
    return out


# ---------------------------------------------------------------- after the plan


def planned_key_collations(tp: TablePlan) -> dict[str, str]:
    """Text columns the plan's target DDL gives a _bin collation their source column lacks
    (`--key-collation bin`, or a reviewed plan edited by hand): lower-case name -> collation.
    DDL replayed by sync keeps them (an ALTER ... MODIFY of the key column must not fall back to
    the rewrite's _ci collation)."""
    if not tp.target_ddl:
        return {}
    try:
        tree = sqlglot.parse_one(tp.target_ddl, read="mysql")
    except SqlglotError:
        return {}
    source = {c.name.lower(): (c.collation or "").lower() for c in tp.columns}
    out: dict[str, str] = {}
    for col in tree.find_all(exp.ColumnDef):
        for constraint in col.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.CollateColumnConstraint):
                collation = kind.this.name.lower()
                name = col.name.lower()
                if collation.endswith("_bin") and name in source and not source[name].endswith("_bin"):
                    out[name] = collation
    return out


def merge_collation_findings(target: str, members: list[TablePlan], infos: dict[str, TableInfo],
                             caps: TargetCaps) -> list[Finding]:
    """A merge without a source column whose unique text key changes collation: the cross-shard
    probe compares keys under the sources' collation, so 'A' on one shard and 'Ä' on another
    (one key in utf8mb4_general_ci) are not seen; the target would keep one of them. A warning
    per merged table, unless every such column is forced to _bin (`--key-collation bin`)."""
    if not members or members[0].source_column:
        return []
    keys: dict[str, ChangedKey] = {}
    for tp in members:
        info = infos.get(tp.id)
        forced = planned_key_collations(tp)
        for key in changed_keys(info, caps) if info is not None else []:
            if not all(c.name.lower() in forced for c in key.changed):
                keys.setdefault(key.describe(), key)
    return [Finding(check="route.key-collation", severity="warning", database=members[0].target_database,
                    table=members[0].target_table,
                    message=f"merging {len(members)} tables into {target} without a source column: {name} changes "
                            f"collation ({key.collations()}); keys of different shards that are equal only under "
                            "the target collation (e.g. 'A' on one shard, 'Ä' on another) are not probed across "
                            "shards, and the target would keep one row of such a pair (verify names it)",
                    fix="re-plan with --key-collation bin (distinct source values stay distinct), or with "
                        "--with-source-column")
            for name, key in keys.items()]
