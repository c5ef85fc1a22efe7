"""Checksum SQL over one key range of one side (source shard or target table), run inside the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pymysql

from ..db import qualified, query, quote_ident
from ..plan.model import decode_key_value
from .canonical import SideColumn, checksum_select, client_hash, column_form, normalize_json, row_hash_sql, row_text_sql

Bound = list[Any] | None  # decoded key values, None = unbounded


@dataclass
class TableSide:
    """What to read on one side: table, compared columns with this side's type kinds, row filter."""

    role: str  # "source" | "target"
    instance: str  # source name or "target": picks the connection pool
    database: str
    table: str
    columns: list[SideColumn]  # compared inside the database, in plan order
    key: list[str]
    client_columns: list[str] = field(default_factory=list)  # JSON compared in Python
    filter_column: str = ""  # merged target table: the column naming the source shard ...
    filter_value: Any = None  # ... and this shard's value in it

    @property
    def filter_sql(self) -> str:
        return f"{quote_ident(self.filter_column)} = %s" if self.filter_column else ""

    @property
    def filter_params(self) -> list[Any]:
        return [self.filter_value] if self.filter_column else []

    @property
    def name(self) -> str:
        return qualified(self.database, self.table)

    def key_kinds(self) -> list[SideColumn]:
        kinds = {c.name: c.kind for c in self.columns}
        return [SideColumn(k, kinds.get(k, "text")) for k in self.key]


def decode_bound(bound: list[Any] | None) -> Bound:
    return None if bound is None else [decode_key_value(v) for v in bound]


def _greater(cols: list[str], vals: list[Any]) -> tuple[str, list[Any]]:
    """(c1, c2, ..) > (v1, v2, ..) spelled out so every engine can use the key index."""
    c = quote_ident(cols[0])
    if len(cols) == 1:
        return f"{c} > %s", [vals[0]]
    rest, params = _greater(cols[1:], vals[1:])
    return f"({c} > %s OR ({c} = %s AND {rest}))", [vals[0], vals[0], *params]


def _less_equal(cols: list[str], vals: list[Any]) -> tuple[str, list[Any]]:
    c = quote_ident(cols[0])
    if len(cols) == 1:
        return f"{c} <= %s", [vals[0]]
    rest, params = _less_equal(cols[1:], vals[1:])
    return f"({c} < %s OR ({c} = %s AND {rest}))", [vals[0], vals[0], *params]


def range_where(side: TableSide, lower: Bound, upper: Bound) -> tuple[str, list[Any]]:
    """WHERE text and parameters for lower < key <= upper plus the side's row filter."""
    parts: list[str] = []
    params: list[Any] = []
    if side.filter_sql:
        parts.append(side.filter_sql)
        params += side.filter_params
    if lower is not None:
        sql, p = _greater(side.key, lower)
        parts.append(sql)
        params += p
    if upper is not None:
        sql, p = _less_equal(side.key, upper)
        parts.append(sql)
        params += p
    return (" AND ".join(parts) or "1=1"), params


def checksum_sql(side: TableSide, lower: Bound, upper: Bound) -> tuple[str, list[Any]]:
    """The in-database checksum query of a range (also what tests EXPLAIN)."""
    where, params = range_where(side, lower, upper)
    return f"SELECT {checksum_select(side.columns)} FROM {side.name} WHERE {where}", params


def chunk_checksum(conn: pymysql.connections.Connection, side: TableSide, lower: Bound, upper: Bound) -> tuple[int, int]:
    """(row count, sum of 64-bit row hashes) of the range, computed by the database."""
    sql, params = checksum_sql(side, lower, upper)
    count, total = query(conn, sql, params)[0]
    total = int(total)
    if side.client_columns:
        total += sum(_client_hashes(conn, side, *range_where(side, lower, upper)).values())
    return int(count), total


def _key_text_sql(side: TableSide) -> str:
    return row_text_sql(side.key_kinds())


def _client_hashes(conn, side: TableSide, where: str, params: list[Any]) -> dict[str, int]:
    """Python-side hashes of the JSON columns no database form renders alike, keyed by key text."""
    cols = ", ".join(quote_ident(c) for c in side.client_columns)
    rows = query(conn, f"SELECT {_key_text_sql(side)}, {cols} FROM {side.name} WHERE {where}", params)
    out: dict[str, int] = {}
    for key_text, *vals in rows:
        out[key_text] = out.get(key_text, 0) + client_hash(key_text, [normalize_json(v) for v in vals])
    return out


def row_hashes(conn, side: TableSide, lower: Bound, upper: Bound) -> dict[tuple, int]:
    """Every row of the range: key tuple -> row hash (including client-compared columns)."""
    where, params = range_where(side, lower, upper)
    keys = ", ".join(quote_ident(k) for k in side.key)
    sql = f"SELECT {keys}, {_key_text_sql(side)}, {row_hash_sql(side.columns)} FROM {side.name} WHERE {where}"
    rows = query(conn, sql, params)
    client = _client_hashes(conn, side, where, params) if side.client_columns else {}
    n = len(side.key)
    out: dict[tuple, int] = {}
    for row in rows:
        key = tuple(row[:n])
        out[key] = out.get(key, 0) + int(row[n + 1]) + client.get(row[n], 0)
    return out


def split_key(conn, side: TableSide, lower: Bound, upper: Bound, offset: int) -> list[Any] | None:
    """The key of the range's row at `offset` in key order (a bisection point), or None."""
    where, params = range_where(side, lower, upper)
    keys = ", ".join(quote_ident(k) for k in side.key)
    rows = query(conn, f"SELECT {keys} FROM {side.name} WHERE {where} ORDER BY {keys} LIMIT 1 OFFSET %s",
                 [*params, offset])
    return list(rows[0]) if rows else None


def key_where(side: TableSide, key: tuple) -> tuple[str, list[Any]]:
    parts = [f"{quote_ident(k)} = %s" for k in side.key]
    params = list(key)
    if side.filter_sql:
        parts.insert(0, side.filter_sql)
        params = [*side.filter_params, *params]
    return " AND ".join(parts), params


def row_forms(conn, side: TableSide, key: tuple) -> dict[str, str | None] | None:
    """The canonical text of each compared column of one row (None if the row is absent)."""
    forms = [column_form(c.name, c.kind) for c in side.columns]
    forms += [quote_ident(c) for c in side.client_columns]
    where, params = key_where(side, key)
    rows = query(conn, f"SELECT {', '.join(forms)} FROM {side.name} WHERE {where}", params)
    if not rows:
        return None
    names = [c.name for c in side.columns] + side.client_columns
    out: dict[str, str | None] = {}
    for name, value in zip(names, rows[0]):
        if name in side.client_columns:
            out[name] = normalize_json(value)
        else:
            out[name] = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value
    return out
