"""A table's columns, charset and unique keys as sync reads them from information_schema."""

from __future__ import annotations

import pymysql

from ..db import query
from ..plan.model import Column


def read_shape(conn: pymysql.connections.Connection, database: str, table: str) -> list[Column]:
    """The table's columns in ordinal order, as row images carry them."""
    rows = query(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME, "
        "COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
        "ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    return [
        Column(name=r[0], data_type=str(r[1]).lower(), column_type=str(r[2]), nullable=r[3] == "YES",
               charset=r[4], collation=r[5], default=None if r[6] is None else str(r[6]), extra=str(r[7] or ""),
               generated=any(w in str(r[7] or "").upper() for w in ("GENERATED", "VIRTUAL", "STORED", "PERSISTENT")))
        for r in rows
    ]


def table_charset(conn: pymysql.connections.Connection, database: str, table: str) -> str | None:
    """The table's default character set (what a column added without one gets)."""
    rows = query(conn, "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t JOIN information_schema.COLLATIONS c "
                       "ON c.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_SCHEMA=%s AND t.TABLE_NAME=%s", (database, table))
    return rows[0][0] if rows else None


def unique_keys(conn: pymysql.connections.Connection, database: str, table: str) -> int:
    """How many unique indexes (primary key included) the table has."""
    return int(query(conn, "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
                           "AND TABLE_NAME=%s AND NON_UNIQUE=0", (database, table))[0][0])
