"""SQL the copy stage sends: the source renders each row as a ready SQL literal tuple.

Rendering on the source (QUOTE, HEX, numeric text) means Python never decodes or re-encodes a
value: a row arrives as bytes like `(1,'a\\'b',x'00FF',NULL)` and is joined into a multi-row
statement as is. Exactness per type:
- integers, DECIMAL, BIT (as its integer): decimal text, exact.
- DOUBLE: MariaDB/MySQL print the shortest text that round-trips. FLOAT prints only 6 digits,
  so it is widened to DOUBLE first (every float is a double exactly; the target rounds back).
- binary strings, BLOBs, geometry: x'HEX' (NUL bytes and invalid UTF-8 survive).
- every other type (text, ENUM/SET, JSON, temporal): QUOTE() of its text, converted to utf8mb4
  when the column has another charset (latin1 text arrives intact).
A small chunk is read whole: GROUP_CONCAT of the rendered rows joined by NUL, one result row.
"""

from __future__ import annotations

from typing import Any

from ..db import quote_ident
from ..keys import PaginationKey, order_sql
from ..plan.model import Column, TablePlan

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
SPATIAL_TYPES = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                 "multipolygon", "geometrycollection", "geomcollection"}


def render_column(col: Column) -> str:
    """SQL expression (source side) giving the column's value as a target SQL literal, never NULL."""
    q = quote_ident(col.name)
    dt = col.data_type.lower()
    if dt in INTEGER_TYPES or dt in ("double", "real"):
        return f"IFNULL({q},'NULL')" if col.nullable else q  # NOT NULL: one function call less per row
    if dt == "float":
        return f"IFNULL(CAST({q} AS DOUBLE),'NULL')"
    if dt == "bit":
        return f"IFNULL({q}+0,'NULL')"
    if dt in BINARY_TYPES or (col.charset or "").lower() == "binary":
        return f"IFNULL(CONCAT('x''',HEX({q}),''''),'NULL')"
    if dt in SPATIAL_TYPES:
        return f"IFNULL(CONCAT('ST_GeomFromWKB(x''',HEX(ST_AsBinary({q})),''',',ST_SRID({q}),')'),'NULL')"
    if col.charset and col.charset.lower() not in ("utf8mb4",):
        return f"QUOTE(CONVERT({q} USING utf8mb4))"
    return f"QUOTE({q})"


def sql_string_literal(text: str) -> str:
    """A constant string as a SQL literal (for the shard-merge source column)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def target_columns(table: TablePlan) -> list[str]:
    cols = [c.name for c in table.data_columns()]
    if table.source_column and table.source_column not in cols:
        cols.append(table.source_column)
    return cols


def row_expression(table: TablePlan) -> str:
    """One binary value per source row: the row's literal tuple for the target INSERT."""
    parts = [render_column(c) for c in table.data_columns()]
    if table.source_column and table.source_column not in {c.name for c in table.data_columns()}:
        parts.append(f"QUOTE({sql_string_literal(f'{table.source}/{table.database}')})")
    inner = ",',',".join(parts)
    return f"CAST(CONCAT('(',{inner},')') AS BINARY)"


def pagination_key(table: TablePlan) -> PaginationKey:
    """The table's key, read as page bounds (migrator.keys.BOUND_EXPRESSIONS)."""
    return PaginationKey.of(table.key, {c.name: c.data_type for c in table.columns})


def key_select(table: TablePlan) -> str:
    return pagination_key(table).select_sql()


def range_from(table: TablePlan, lower: list[Any] | None, upper: list[Any] | None) -> tuple[str, list[Any]]:
    """`FROM db.t [WHERE lower < key <= upper]` and its arguments (None: unbounded)."""
    where, args = pagination_key(table).range_sql(lower, upper)
    sql = f" FROM {quote_ident(table.database)}.{quote_ident(table.table)}"
    return (sql + " WHERE " + " AND ".join(where) if where else sql), args


def key_order(table: TablePlan) -> str:
    return " ORDER BY " + order_sql(table.key)


def page_select(table: TablePlan, lower: list[Any] | None, upper: list[Any] | None, limit: int) -> tuple[str, list[Any]]:
    """Next page of a chunk: rows with lower < key <= upper in key order, rendered, plus the key."""
    rng, args = range_from(table, lower, upper)
    return f"SELECT {row_expression(table)},{key_select(table)}{rng}{key_order(table)} LIMIT {int(limit)}", args


def page_bound_select(table: TablePlan, lower: list[Any] | None, upper: list[Any] | None,
                      limit: int) -> tuple[str, list[Any]]:
    """The key of the `limit`-th row after lower (within upper), as a page bound: a key-only scan."""
    rng, args = range_from(table, lower, upper)
    return f"SELECT {key_select(table)}{rng}{key_order(table)} LIMIT 1 OFFSET {max(0, int(limit) - 1)}", args


def whole_chunk_select(table: TablePlan, lower: list[Any] | None, upper: list[Any] | None) -> tuple[str, list[Any]]:
    """A whole chunk as one value: rendered rows joined by NUL (which no rendering contains:
    QUOTE escapes it, HEX and numbers have none), plus the row count and the length limit to
    check it is complete."""
    rng, args = range_from(table, lower, upper)
    # @@group_concat_max_len: a result that long was cut (a cut in the last row keeps the count).
    return f"SELECT COUNT(*), GROUP_CONCAT({row_expression(table)} SEPARATOR 0x00), @@group_concat_max_len{rng}", args


def blob_statements(prefix: bytes, blob: bytes, max_bytes: int) -> list[bytes]:
    """INSERT statements of at most ~max_bytes from a whole-chunk read (rows joined by NUL, which
    no rendering contains): cut at NULs, NULs become the commas between row tuples. A single row
    longer than max_bytes gets a statement of its own."""
    out: list[bytes] = []
    start, n, room = 0, len(blob), max(1, max_bytes - len(prefix))
    while start < n:
        end = start + room
        if end >= n:
            end = n
        else:
            cut = blob.rfind(b"\0", start, end + 1)
            if cut <= start:
                cut = blob.find(b"\0", end)
                cut = n if cut < 0 else cut
            end = cut
        out.append(prefix + blob[start:end].replace(b"\0", b","))
        start = end + 1
    return out


def full_select(table: TablePlan) -> str:
    """Keyless (copy-only) table: every row, unordered, streamed."""
    src = f"{quote_ident(table.database)}.{quote_ident(table.table)}"
    return f"SELECT {row_expression(table)} FROM {src}"


def insert_prefix(table: TablePlan, verb: str = "REPLACE") -> bytes:
    cols = ",".join(quote_ident(c) for c in target_columns(table))
    dst = f"{quote_ident(table.target_database)}.{quote_ident(table.target_table)}"
    return f"{verb} INTO {dst} ({cols}) VALUES ".encode()
