"""Test helpers for the copy stage: plans built from a live test table, exact row comparison,
and running `migrator copy` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from migrator.db import connect, query, quote_ident
from migrator.endpoint import Endpoint
from migrator.keys import encode_key_value
from migrator.plan.model import Chunk, Column, Plan, SourcePlan, TablePlan, TargetPlan, save_plan

REPO = Path(__file__).resolve().parent.parent


def read_columns(conn, db: str, table: str) -> list[Column]:
    rows = query(conn, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
                       "COLLATION_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                       "TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (db, table))
    return [Column(name=r[0], data_type=r[1], column_type=r[2], nullable=r[3] == "YES", charset=r[4],
                   collation=r[5], extra=r[6] or "",
                   generated=any(w in (r[6] or "").upper() for w in ("VIRTUAL", "STORED", "PERSISTENT")))
            for r in rows]


def read_key(conn, db: str, table: str) -> tuple[list[str], str]:
    rows = query(conn, "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
                       "AND TABLE_NAME=%s AND NON_UNIQUE=0 ORDER BY INDEX_NAME='PRIMARY' DESC, INDEX_NAME, "
                       "SEQ_IN_INDEX", (db, table))
    if not rows:
        return [], "none"
    first = rows[0][0]
    return [r[1] for r in rows if r[0] == first], ("primary" if first == "PRIMARY" else "unique")


def table_plan(conn, source: str, db: str, table: str, target_db: str, *, target_table: str | None = None,
               target_ddl: str | None = None, boundaries: list[list[Any]] | None = None,
               source_column: str | None = None, mode: str = "copy+sync") -> TablePlan:
    """A TablePlan read from information_schema; `boundaries` are chunk upper bounds (last is open)."""
    columns = read_columns(conn, db, table)
    key, kind = read_key(conn, db, table)
    ddl = target_ddl if target_ddl is not None else query(
        conn, f"SHOW CREATE TABLE {quote_ident(db)}.{quote_ident(table)}")[0][1]
    chunks: list[Chunk] = []
    if boundaries:
        lower = None
        for i, b in enumerate(boundaries + [None]):
            upper = [encode_key_value(v) for v in b] if b is not None else None
            chunks.append(Chunk(id=i, lower=lower, upper=upper))
            lower = upper
    est = query(conn, f"SELECT COUNT(*) FROM {quote_ident(db)}.{quote_ident(table)}")[0][0]
    size = query(conn, "SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
                 (db, table))[0][0]
    return TablePlan(source=source, database=db, table=table, target_database=target_db,
                     target_table=target_table or table, columns=columns, key=key, key_kind=kind, mode=mode,
                     chunks=chunks, source_ddl=ddl, target_ddl=ddl, estimated_rows=est, estimated_bytes=int(size or 0),
                     source_column=source_column)


def make_plan(sources: list[Endpoint], target: Endpoint, tables: list[TablePlan]) -> Plan:
    return Plan(
        name="test",
        target=TargetPlan(url=target.safe_url(), engine="oceanbase"),
        sources=[SourcePlan(name=s.label, url=s.safe_url(), host=s.host, port=s.port) for s in sources],
        tables=tables,
    )


def write_plan(plan: Plan, path: Path) -> Path:
    save_plan(plan, path)
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`migrator ARGS` in a subprocess (real process: can be SIGKILLed)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "migrator.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def exact_select(columns: list[Column], db: str, table: str, key: list[str]) -> str:
    """Every value as text both engines print identically (HEX for binary, doubles widened)."""
    exprs = []
    for c in columns:
        q = quote_ident(c.name)
        dt = c.data_type.lower()
        if dt in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"):
            exprs.append(f"HEX({q})")
        elif dt in ("float", "double"):
            exprs.append(f"CAST({q} AS DOUBLE)")
        elif c.charset:
            exprs.append(f"HEX(CONVERT({q} USING utf8mb4))")
        else:
            exprs.append(f"CAST({q} AS CHAR)")
    order = ",".join(quote_ident(k) for k in key) if key else ",".join(str(i + 1) for i in range(len(exprs)))
    return f"SELECT {','.join(exprs)} FROM {quote_ident(db)}.{quote_ident(table)} ORDER BY {order}"


def rows_of(ep: Endpoint, role: str, columns: list[Column], db: str, table: str, key: list[str]) -> list[tuple]:
    conn = connect(ep, role)
    try:
        return query(conn, exact_select(columns, db, table, key))
    finally:
        conn.close()


def assert_same_rows(source: Endpoint, target: Endpoint, tp: TablePlan) -> int:
    """Row-by-row equality of source and target; returns the row count."""
    cols = tp.data_columns()
    src = rows_of(source, "source", cols, tp.database, tp.table, tp.key)
    tgt = rows_of(target, "target", cols, tp.target_database, tp.target_table, tp.key)
    assert len(tgt) == len(src), f"{tp.id}: {len(src)} source rows, {len(tgt)} target rows"
    for i, (a, b) in enumerate(zip(src, tgt)):
        assert a == b, f"{tp.id}: row {i} differs:\n source {a!r}\n target {b!r}"
    return len(src)


def execute(ep: Endpoint, role: str, *statements: str, args: list | None = None) -> None:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()
