"""Test helpers for verify: the same table and rows on a source and on the target, and a plan over them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrator.db import connect, query, quote_ident
from migrator.endpoint import Endpoint
from migrator.keys import encode_key_value
from migrator.plan.model import Chunk, Column, Plan, SourcePlan, TablePlan, TargetPlan, save_plan


def run_sql(conn, *statements: str, args: Any = None) -> None:
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql, args)


def create_both(src, tgt, db: str, ddl: str, inserts: list[str], *, target_db: str | None = None,
                target_ddl: str | None = None) -> None:
    """CREATE DATABASE db + table + rows on the source, and the same on the target (or target_db)."""
    for conn, name, table_ddl in ((src, db, ddl), (tgt, target_db or db, target_ddl or ddl)):
        run_sql(conn, f"CREATE DATABASE IF NOT EXISTS {quote_ident(name)}", f"USE {quote_ident(name)}", table_ddl,
                *inserts)


def drop(ep: Endpoint, role: str, *names: str) -> None:
    conn = connect(ep, role)
    try:
        for name in names:
            run_sql(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


def read_columns(conn, db: str, table: str) -> list[Column]:
    rows = query(conn, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, EXTRA, CHARACTER_SET_NAME, "
                       "COLLATION_NAME FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (db, table))
    return [Column(name=r[0], data_type=r[1], column_type=r[2], nullable=r[3] == "YES", extra=r[4] or "",
                   generated=any(w in (r[4] or "").upper() for w in ("VIRTUAL", "STORED", "PERSISTENT")),
                   charset=r[5], collation=r[6])
            for r in rows]


def read_key(conn, db: str, table: str) -> list[str]:
    rows = query(conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND "
                       "TABLE_NAME=%s AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX", (db, table))
    return [r[0] for r in rows]


def table_plan(src, source: str, db: str, table: str, *, target_db: str | None = None,
               target_table: str | None = None, chunk_rows: int = 0, source_column: str | None = None) -> TablePlan:
    """A TablePlan from the live source table; chunks of `chunk_rows` rows by key (0 = one chunk)."""
    key = read_key(src, db, table)
    chunks = [Chunk(id=0)]
    if key and chunk_rows:
        keys = ", ".join(quote_ident(k) for k in key)
        all_keys = query(src, f"SELECT {keys} FROM {quote_ident(db)}.{quote_ident(table)} ORDER BY {keys}")
        uppers = [list(k) for k in all_keys[chunk_rows - 1::chunk_rows]]
        chunks, lower = [], None
        for i, b in enumerate(uppers + [None]):
            upper = [encode_key_value(v) for v in b] if b is not None else None
            chunks.append(Chunk(id=i, lower=lower, upper=upper))
            lower = upper
    return TablePlan(source=source, database=db, table=table, target_database=target_db or db,
                     target_table=target_table or table, columns=read_columns(src, db, table), key=key,
                     key_kind="primary" if key else "none", chunks=chunks, source_column=source_column)


def make_plan(sources: list[Endpoint], target: Endpoint, tables: list[TablePlan]) -> Plan:
    return Plan(name="verify-test", target=TargetPlan(url=target.safe_url(), engine="oceanbase"),
                sources=[SourcePlan(name=s.label, url=s.safe_url(), host=s.host, port=s.port) for s in sources],
                tables=tables)


def run_verify_cli(plan: Plan, tmp_path: Path, *args: str) -> tuple[int, str]:
    """`migrator verify PLAN --workdir tmp/work ARGS` in-process; (exit code, output)."""
    from migrator.cli import main

    plan_file = tmp_path / "plan.yaml"
    save_plan(plan, plan_file)
    result = CliRunner().invoke(main, ["verify", str(plan_file), "--workdir", str(tmp_path / "work"), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def diff_keys(report, kind: str | None = None) -> set[tuple]:
    return {tuple(r.key) for r in report.rows if kind is None or r.kind == kind}
