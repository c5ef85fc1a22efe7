"""Statements that would repair the target: REPLACE of the source row (missing/changed), DELETE by key (extra)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pymysql.converters import escape_string

from ..db import qualified, query, quote_ident
from ..keys import binary_literal, encode_key_value, equals_sql
from ..plan.model import Column, TablePlan
from .checksum import TableSide, key_where


def literal(value: Any) -> str:
    """A SQL literal both MariaDB/MySQL and OceanBase read back as the same value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        # positional: str() prints 0.0000001234... as 1.234E-7, an approximate (double) literal in SQL
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: the exact double
    if isinstance(value, (bytes, bytearray, memoryview)):
        return binary_literal(bytes(value))
    if isinstance(value, (datetime, date, time, timedelta)):
        return "'" + str(encode_key_value(value)) + "'"
    return "'" + escape_string(str(value)) + "'"


def _select_expr(column: str, data_type: str) -> str:
    # FLOAT travels as text with 6 digits; widened to DOUBLE it is the exact stored value.
    c = quote_ident(column)
    return f"CAST({c} AS DOUBLE)" if data_type.lower() == "float" else c


def source_row(conn, cols: list[Column], sside: TableSide, key: tuple) -> tuple | None:
    """The source row of the key, its columns `cols` (the table's shape now)."""
    where, params = key_where(sside, key)
    exprs = ", ".join(_select_expr(c.name, c.data_type) for c in cols)
    rows = query(conn, f"SELECT {exprs} FROM {sside.name} WHERE {where}", params)
    return rows[0] if rows else None


def shard_value(tp: TablePlan) -> str | None:
    """Value of the target-only source column on a merged table (None if not a shard merge)."""
    if tp.source_column and tp.source_column not in {c.name for c in tp.columns}:
        return f"{tp.source}/{tp.database}"
    return None


def replace_statement(tp: TablePlan, cols: list[Column], row: tuple) -> str:
    """REPLACE of the source row (source_row's columns cols) into the target table."""
    names = [c.name for c in cols]
    values = [literal(v) for v in row]
    shard = shard_value(tp)
    if shard is not None:
        names.append(tp.source_column or "")
        values.append(literal(shard))
    cols = ", ".join(quote_ident(n) for n in names)
    return f"REPLACE INTO {qualified(tp.target_database, tp.target_table)} ({cols}) VALUES ({', '.join(values)});"


def delete_statement(tside: TableSide, key: tuple) -> str:
    where = equals_sql(tside.key, key, literal)
    if tside.filter_sql:  # the shard's rows of a merged table
        where = f"{equals_sql([tside.filter_column], tside.filter_params[:1], literal)} AND {where}"
    return f"DELETE FROM {tside.name} WHERE {where};"
