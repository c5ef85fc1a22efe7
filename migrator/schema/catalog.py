"""A live table as information_schema describes it now: columns, indexes, foreign keys.

Every stage reads the catalog through these: copy records and re-checks a table's shape on
resume, sync reads the columns row images carry (and re-reads them after DDL), verify reads the
compared columns, `schema --apply` compares an existing target table with the plan's, plan and
sync read the foreign keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pymysql

from ..db import query
from .model import Column

GENERATED_WORDS = ("GENERATED", "VIRTUAL", "STORED", "PERSISTENT")  # in EXTRA of a generated column


def read_columns(conn: pymysql.connections.Connection, database: str, table: str) -> list[Column]:
    """The table's columns in ordinal order, as row images carry them ([]: no such table)."""
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
               generated=any(w in str(r[7] or "").upper() for w in GENERATED_WORDS))
        for r in rows
    ]


@dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    columns: tuple[str | None, ...]  # in key order; None: a functional key part (MySQL 8)


def read_indexes(conn: pymysql.connections.Connection, database: str, table: str) -> list[Index]:
    """The table's indexes, ordered by name as the server sorts them."""
    found: dict[str, tuple[bool, list[str | None]]] = {}
    for name, non_unique, col in query(
            conn, "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS "
                  "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY INDEX_NAME, SEQ_IN_INDEX", (database, table)):
        found.setdefault(str(name), (int(non_unique) == 0, []))[1].append(None if col is None else str(col))
    return [Index(name, unique, tuple(cols)) for name, (unique, cols) in found.items()]


@dataclass
class LiveShape:
    columns: list[Column]
    indexes: list[Index]

    def unique_indexes(self) -> list[Index]:
        return [i for i in self.indexes if i.unique]


def read_shape(conn: pymysql.connections.Connection, database: str, table: str) -> LiveShape | None:
    """Columns and indexes of the table; None when it does not exist."""
    columns = read_columns(conn, database, table)
    if not columns:
        return None
    return LiveShape(columns, read_indexes(conn, database, table))


def table_charset(conn: pymysql.connections.Connection, database: str, table: str) -> str | None:
    """The table's default character set (what a column added without one gets)."""
    rows = query(conn, "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t JOIN information_schema.COLLATIONS c "
                       "ON c.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_SCHEMA=%s AND t.TABLE_NAME=%s", (database, table))
    return rows[0][0] if rows else None


# ---------------------------------------------------------------- foreign keys

ACTIONS = ("CASCADE", "SET NULL")  # what a child does on a parent's delete/update that the binlog does not show

TableName = tuple[str, str]  # (database, table)


@dataclass(frozen=True)
class ForeignKey:
    """One FOREIGN KEY of a table, as information_schema describes it."""

    name: str
    database: str
    table: str
    columns: tuple[str, ...]
    ref_database: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "RESTRICT"
    on_update: str = "RESTRICT"

    @property
    def child(self) -> TableName:
        return (self.database, self.table)

    @property
    def parent(self) -> TableName:
        return (self.ref_database, self.ref_table)

    @property
    def cascades(self) -> bool:
        return self.on_delete in ACTIONS or self.on_update in ACTIONS

    def describe(self) -> str:
        return (f"{self.database}.{self.table}({', '.join(self.columns)}) -> {self.ref_database}.{self.ref_table}"
                f"({', '.join(self.ref_columns)}) [{self.name}: ON DELETE {self.on_delete} ON UPDATE {self.on_update}]")


def read_foreign_keys(conn: pymysql.connections.Connection, schemas: Iterable[str]) -> list[ForeignKey]:
    """Every foreign key of a table in `schemas` or referencing one (one query), columns in key order."""
    schemas = sorted(set(schemas))
    if not schemas:
        return []
    marks = ",".join(["%s"] * len(schemas))
    rows = query(
        conn,
        "SELECT rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, "
        "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, rc.DELETE_RULE, rc.UPDATE_RULE "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS rc JOIN information_schema.KEY_COLUMN_USAGE k "
        "ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME "
        "AND k.TABLE_NAME = rc.TABLE_NAME AND k.REFERENCED_TABLE_NAME IS NOT NULL "
        f"WHERE rc.CONSTRAINT_SCHEMA IN ({marks}) OR rc.UNIQUE_CONSTRAINT_SCHEMA IN ({marks}) "
        "ORDER BY rc.CONSTRAINT_SCHEMA, rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        schemas + schemas,
    )
    grouped: dict[tuple[str, str, str], list[tuple]] = {}
    for r in rows:
        grouped.setdefault((str(r[0]), str(r[1]), str(r[2])), []).append(r)
    return [ForeignKey(name=name, database=db, table=table, columns=tuple(str(r[3]) for r in rs),
                       ref_database=str(rs[0][4]), ref_table=str(rs[0][5]), ref_columns=tuple(str(r[6]) for r in rs),
                       on_delete=str(rs[0][7]).upper(), on_update=str(rs[0][8]).upper())
            for (db, table, name), rs in grouped.items()]
