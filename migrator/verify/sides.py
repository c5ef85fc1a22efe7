"""A table's two sides: which columns are compared, how each is rendered and how key bounds are
bound on the source and on the target (their types may differ)."""

from __future__ import annotations

from ..db import qualified, query
from ..errors import TargetError
from ..plan.model import Column, TablePlan
from .canonical import SideColumn, type_kind
from .checksum import KeyType, TableSide, key_type
from .fixsql import shard_value


def target_columns(conn, database: str, table: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
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


def key_types_of(tp: TablePlan, target_types: dict[str, str], target_column_types: dict[str, str],
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
    s_keys, t_keys = key_types_of(tp, target_types, target_column_types or {}, notes)
    sside = TableSide("source", tp.source, tp.database, tp.table, s_cols, key, client, key_types=s_keys)
    shard = shard_value(tp)
    tside = TableSide("target", "target", tp.target_database, tp.target_table, t_cols, key, client,
                      filter_column=(tp.source_column or "") if shard else "", filter_value=shard, key_types=t_keys)
    if not key:
        notes.append("no primary or unique key: compared as a whole table; differing rows cannot be named")
    return sside, tside, notes
