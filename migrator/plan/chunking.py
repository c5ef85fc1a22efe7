"""Chunk keys and chunk boundaries, computed on the source.

A chunk is a half-open key range `lower < key <= upper` (None = unbounded), so the first chunk
has no lower bound and the last no upper bound: rows inserted after planning are still covered.
Boundaries come from one of two methods, neither an OFFSET scan of the whole table:
- arithmetic: a dense single integer key is split by value (two index probes, no scan);
- keyset walk: from the last boundary, skip chunk_rows entries of the key's index
  (`WHERE key > last ORDER BY key LIMIT 1 OFFSET n-1`), the comparison spelled as
  migrator.keys.compare_sql spells it for every stage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pymysql

from ..db import qualified, query
from ..keys import PaginationKey, column_list, order_sql, range_sql
from .introspect import IndexInfo, TableInfo
from .model import Chunk

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
DEFAULT_CHUNK_ROWS = 50_000
# Arithmetic split only when ids are at least this dense (rows / value span), so chunks stay even.
DENSITY_FOR_ARITHMETIC = 0.5


# Key types whose comparison order differs from ORDER BY (ENUM/SET sort by index but compare as
# text) or that do not round-trip exactly as a bound (floats, BIT): a keyset over them could skip
# rows, so such tables are one chunk.
UNCHUNKABLE_TYPES = {"enum", "set", "float", "double", "real", "bit", "json", "geometry"}


def unchunkable_columns(table: TableInfo, key: Sequence[str]) -> list[str]:
    types = {c.name: c.data_type for c in table.columns}
    return [c for c in key if types.get(c) in UNCHUNKABLE_TYPES]


def choose_key(table: TableInfo) -> tuple[list[str], str]:
    """The chunk/sync key: the primary key, else the narrowest non-null unique key (integers
    first). Returns (columns, "primary"|"unique"|"none")."""
    for idx in table.indexes:
        if idx.primary:
            return list(idx.columns), "primary"
    types = {c.name: c.data_type for c in table.columns}
    candidates = [i for i in table.indexes if usable_unique(i)]
    if not candidates:
        return [], "none"
    best = min(candidates, key=lambda i: (len(i.columns), not all(types.get(c) in INTEGER_TYPES for c in i.columns),
                                          i.name))
    return list(best.columns), "unique"


def usable_unique(idx: IndexInfo) -> bool:
    """A unique key that identifies every row: no NULLable column, no prefix, an ordered index."""
    return idx.unique and not idx.nullable and not idx.prefixed and idx.index_type in ("BTREE", "HASH") and bool(
        idx.columns)


def unique_keys(table: TableInfo) -> list[IndexInfo]:
    """Keys whose values must not repeat in a merged target table (primary + non-null unique)."""
    return [i for i in table.indexes if i.primary or usable_unique(i)]


# ---------------------------------------------------------------- boundaries


def key_bounds(conn: pymysql.connections.Connection, db: str, table: str,
               cols: Sequence[str]) -> tuple[tuple, tuple] | None:
    """(smallest key, largest key) by index order, or None for an empty table."""
    cl = column_list(cols)
    low = query(conn, f"SELECT {cl} FROM {qualified(db, table)} ORDER BY {order_sql(cols)} LIMIT 1")
    if not low:
        return None
    high = query(conn, f"SELECT {cl} FROM {qualified(db, table)} ORDER BY {order_sql(cols, descending=True)} LIMIT 1")
    return tuple(low[0]), tuple(high[0])


def compute_chunks(conn: pymysql.connections.Connection, table: TableInfo, key: Sequence[str],
                   chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[list[Chunk], int, str]:
    """Chunks covering the whole key space; returns (chunks, estimated rows, method)."""
    if not key or unchunkable_columns(table, key):
        return [Chunk(id=0, estimated_rows=table.rows)], table.rows, "whole-table"
    types = {c.name: c.data_type for c in table.columns}
    if len(key) == 1 and types.get(key[0]) in INTEGER_TYPES and table.rows >= 4 * chunk_rows:
        bounds = key_bounds(conn, table.database, table.name, key)
        if bounds is not None:
            lo, hi = int(bounds[0][0]), int(bounds[1][0])
            if table.rows >= DENSITY_FOR_ARITHMETIC * (hi - lo + 1):
                return arithmetic_chunks(lo, hi, table.rows, chunk_rows), table.rows, "arithmetic"
    uppers, tail = walk_boundaries(conn, table.database, table.name, key, chunk_rows)
    return chunks_from_uppers(uppers, chunk_rows, tail), len(uppers) * chunk_rows + tail, "keyset-walk"


def arithmetic_chunks(lo: int, hi: int, rows: int, chunk_rows: int) -> list[Chunk]:
    n = max(1, math.ceil(rows / chunk_rows))
    step = max(1, math.ceil((hi - lo + 1) / n))
    uppers = [[lo - 1 + step * k] for k in range(1, n) if lo - 1 + step * k < hi]
    per = rows // (len(uppers) + 1)
    return chunks_from_uppers(uppers, per, per)


def walk_boundaries(conn: pymysql.connections.Connection, db: str, table: str, key: Sequence[str],
                    chunk_rows: int) -> tuple[list[list[Any]], int]:
    """Upper bounds every chunk_rows keys, and the number of rows after the last bound."""
    cl, order = column_list(key), order_sql(key)
    name = qualified(db, table)
    uppers: list[list[Any]] = []
    last: list[Any] | None = None
    while True:
        where, params = _after(key, last)
        rows = query(conn, f"SELECT {cl} FROM {name}{where} ORDER BY {order} LIMIT 1 OFFSET {chunk_rows - 1}", params)
        if not rows:
            break
        last = list(rows[0])
        uppers.append(last)
    where, params = _after(key, last)
    tail = int(query(conn, f"SELECT COUNT(*) FROM (SELECT 1 FROM {name}{where} LIMIT {chunk_rows}) AS t",
                     params)[0][0])
    return uppers, tail


def _after(key: Sequence[str], last: list[Any] | None) -> tuple[str, list[Any]]:
    """` WHERE key > last` (nothing before the first bound) and its parameters."""
    parts, params = range_sql(key, last, None)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


def chunks_from_uppers(uppers: list[list[Any]], rows_per_chunk: int, tail_rows: int) -> list[Chunk]:
    encoded = [PaginationKey.encode(u) for u in uppers]
    chunks: list[Chunk] = []
    lower = None
    for i, upper in enumerate(encoded):
        chunks.append(Chunk(id=i, lower=lower, upper=upper, estimated_rows=rows_per_chunk))
        lower = upper
    chunks.append(Chunk(id=len(encoded), lower=lower, upper=None, estimated_rows=tail_rows))
    return chunks
