"""Catalog reading: everything plan needs from one source instance, over one connection.

Reads are batched: one information_schema query per catalog table over all included schemas at
once (not per table); only SHOW CREATE TABLE and the chunk-boundary probes are per table.
Filters are shell patterns over `db.table` (fnmatch, case-sensitive like MySQL on Linux).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import pymysql

from ..db import error_code, qualified, query
from ..endpoint import Endpoint
from ..schema.catalog import ForeignKey, read_foreign_keys
from .model import Column

SYSTEM_SCHEMAS = {"mysql", "information_schema", "performance_schema", "sys"}
SERVER_VARIABLES = (
    "version", "version_comment", "server_id", "log_bin", "binlog_format", "binlog_row_image",
    "expire_logs_days", "binlog_expire_logs_seconds", "gtid_mode", "gtid_strict_mode",
    "gtid_binlog_pos", "read_only", "binlog_row_value_options", "binlog_transaction_compression",
)
# Tables plan carries over; views, sequences and the rest are objects reported on their own.
TABLE_TYPES = ("BASE TABLE", "SYSTEM VERSIONED")


@dataclass
class IndexInfo:
    name: str
    unique: bool
    columns: list[str]
    index_type: str = "BTREE"  # BTREE | HASH | FULLTEXT | SPATIAL
    prefixed: bool = False  # some key part is a prefix (SUB_PART): not usable for keyset order
    nullable: bool = False  # some key column allows NULL

    @property
    def primary(self) -> bool:
        return self.name == "PRIMARY"


@dataclass
class TableInfo:
    database: str
    name: str
    table_type: str = "BASE TABLE"
    engine: str | None = None
    rows: int = 0
    bytes: int = 0
    collation: str | None = None
    columns: list[Column] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)
    ddl: str = ""
    ddl_error: str | None = None
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"


@dataclass
class ObjectInfo:
    """Something that is not a table: trigger, procedure, function, event, view, sequence."""

    kind: str
    database: str
    name: str
    table: str | None = None  # a trigger's table
    detail: str = ""


@dataclass
class InstanceFacts:
    variables: dict[str, str] = field(default_factory=dict)
    flavor: str = "mariadb"
    current_user: str = ""
    grants: list[str] = field(default_factory=list)
    grants_error: str | None = None
    master_status: tuple[str, int] | None = None
    master_status_error: str | None = None  # e.g. missing privilege

    def var(self, name: str, default: str = "") -> str:
        return self.variables.get(name, default)

    @property
    def version(self) -> str:
        return self.var("version")

    @property
    def server_id(self) -> int | None:
        value = self.var("server_id")
        return int(value) if value.isdigit() else None

    @property
    def gtid_enabled(self) -> bool:
        if self.flavor == "mariadb":
            return True  # MariaDB always writes GTIDs with a binlog
        return self.var("gtid_mode").upper() == "ON"


@dataclass
class SourceCatalog:
    endpoint: Endpoint
    facts: InstanceFacts
    tables: list[TableInfo] = field(default_factory=list)
    objects: list[ObjectInfo] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- filters


def split_pattern(pattern: str) -> tuple[str, str]:
    """'db_pattern.table_pattern' -> (db, table); a pattern without a dot means every table."""
    db, dot, table = pattern.partition(".")
    return db, (table if dot else "*")


def matches(pattern: str, database: str, table: str) -> bool:
    db_pat, table_pat = split_pattern(pattern)
    return fnmatchcase(database, db_pat) and fnmatchcase(table, table_pat)


def table_selected(database: str, table: str, includes: Iterable[str], excludes: Iterable[str]) -> bool:
    includes = list(includes)
    if includes and not any(matches(p, database, table) for p in includes):
        return False
    return not any(matches(p, database, table) for p in excludes)


def schema_selected(database: str, includes: Iterable[str], excludes: Iterable[str]) -> bool:
    """Could any table of this schema be selected? (an exclude of `db.*` drops the schema)."""
    if database in SYSTEM_SCHEMAS:
        return False
    includes = list(includes)
    if includes and not any(fnmatchcase(database, split_pattern(p)[0]) for p in includes):
        return False
    for pattern in excludes:
        db_pat, table_pat = split_pattern(pattern)
        if table_pat == "*" and fnmatchcase(database, db_pat):
            return False
    return True


# ---------------------------------------------------------------- reading


def _in_list(values: list[str]) -> str:
    return ", ".join(["%s"] * len(values))


def read_facts(conn: pymysql.connections.Connection) -> InstanceFacts:
    facts = InstanceFacts()
    names = _in_list(list(SERVER_VARIABLES))
    rows = query(conn, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})", SERVER_VARIABLES)
    facts.variables = {str(k): "" if v is None else str(v) for k, v in rows}
    facts.flavor = "mariadb" if "mariadb" in (facts.version + facts.var("version_comment")).lower() else "mysql"
    facts.current_user = str(query(conn, "SELECT CURRENT_USER()")[0][0])
    try:
        facts.grants = [str(r[0]) for r in query(conn, "SHOW GRANTS")]
    except pymysql.err.MySQLError as exc:
        facts.grants_error = str(exc.args[-1])
    try:
        rows = query(conn, "SHOW MASTER STATUS")
        facts.master_status = (str(rows[0][0]), int(rows[0][1])) if rows else None
    except pymysql.err.MySQLError as exc:
        facts.master_status_error = f"error {error_code(exc)}: {exc.args[-1]}"
    return facts


def read_schemas(conn: pymysql.connections.Connection, includes: list[str], excludes: list[str]) -> list[str]:
    rows = query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
    return [str(r[0]) for r in rows if schema_selected(str(r[0]), includes, excludes)]


def read_tables(conn: pymysql.connections.Connection, schemas: list[str], includes: list[str],
                excludes: list[str]) -> tuple[list[TableInfo], list[ObjectInfo]]:
    """Tables (with columns and indexes) and the views/sequences found among them."""
    if not schemas:
        return [], []
    params = tuple(schemas)
    ins = _in_list(schemas)
    tables: dict[tuple[str, str], TableInfo] = {}
    objects: list[ObjectInfo] = []
    for db, name, ttype, engine, rows, data, index, coll in query(
        conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, TABLE_COLLATION "
        f"FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({ins}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
        params,
    ):
        if not table_selected(db, name, includes, excludes):
            continue
        if ttype in TABLE_TYPES:
            tables[(db, name)] = TableInfo(db, name, ttype, engine, int(rows or 0), int(data or 0) + int(index or 0),
                                           coll)
        elif ttype == "VIEW":
            objects.append(ObjectInfo("view", db, name))
        elif ttype == "SEQUENCE":
            objects.append(ObjectInfo("sequence", db, name))
        elif ttype != "TEMPORARY":
            objects.append(ObjectInfo(ttype.lower(), db, name))
    for db, name, col, dtype, ctype, nullable, charset, coll, default, extra in query(
        conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
        "COLLATION_NAME, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA IN ({ins}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        params,
    ):
        t = tables.get((db, name))
        if t is None:
            continue
        extra = str(extra or "")
        t.columns.append(Column(
            name=col, data_type=str(dtype).lower(), column_type=str(ctype), nullable=nullable == "YES",
            charset=charset, collation=coll, default=None if default is None else str(default), extra=extra,
            generated="GENERATED" in extra.upper() or extra.upper() in ("VIRTUAL", "PERSISTENT", "STORED"),
        ))
    by_index: dict[tuple[str, str, str], IndexInfo] = {}
    for db, name, index, non_unique, col, sub_part, nullable, itype in query(
        conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, NULLABLE, INDEX_TYPE "
        f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({ins}) "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        params,
    ):
        t = tables.get((db, name))
        if t is None:
            continue
        idx = by_index.get((db, name, index))
        if idx is None:
            idx = IndexInfo(index, int(non_unique) == 0, [], str(itype or "BTREE").upper())
            by_index[(db, name, index)] = idx
            t.indexes.append(idx)
        if col is None:  # functional key part (MySQL 8): cannot drive a keyset
            idx.prefixed = True
        else:
            idx.columns.append(str(col))
        idx.prefixed |= sub_part is not None
        idx.nullable |= nullable == "YES"
    for fk in read_foreign_keys(conn, schemas):  # also those referencing the schemas from others: not kept
        if fk.child in tables:
            tables[fk.child].foreign_keys.append(fk)
    for t in tables.values():
        t.ddl, t.ddl_error = show_create_table(conn, t.database, t.name)
    return list(tables.values()), objects


def show_create_table(conn: pymysql.connections.Connection, db: str, table: str) -> tuple[str, str | None]:
    try:
        return str(query(conn, f"SHOW CREATE TABLE {qualified(db, table)}")[0][1]), None
    except pymysql.err.MySQLError as exc:  # e.g. a table dropped while we read the catalog
        return "", f"error {error_code(exc)}: {exc.args[-1]}"


def read_objects(conn: pymysql.connections.Connection, schemas: list[str], includes: list[str],
                 excludes: list[str]) -> list[ObjectInfo]:
    """Triggers (of included tables), routines and events of the included schemas."""
    if not schemas:
        return []
    params = tuple(schemas)
    ins = _in_list(schemas)
    out: list[ObjectInfo] = []
    for db, name, table, timing, event in query(
        conn,
        "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION "
        f"FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN ({ins}) ORDER BY 1, 2",
        params,
    ):
        if table_selected(db, table, includes, excludes):
            out.append(ObjectInfo("trigger", db, name, table, f"{timing} {event}"))
    for db, name, rtype in query(
        conn,
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
        f"WHERE ROUTINE_SCHEMA IN ({ins}) ORDER BY 1, 2",
        params,
    ):
        out.append(ObjectInfo(str(rtype).lower(), db, name))
    for db, name in query(
        conn, f"SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN ({ins}) "
        "ORDER BY 1, 2", params,
    ):
        out.append(ObjectInfo("event", db, name))
    return out


def read_catalog(conn: pymysql.connections.Connection, ep: Endpoint, includes: list[str],
                 excludes: list[str]) -> SourceCatalog:
    facts = read_facts(conn)
    schemas = read_schemas(conn, includes, excludes)
    tables, objects = read_tables(conn, schemas, includes, excludes)
    objects += read_objects(conn, schemas, includes, excludes)
    return SourceCatalog(endpoint=ep, facts=facts, tables=tables, objects=objects, schemas=schemas)
