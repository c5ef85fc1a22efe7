"""Helpers for the plan/schema tests: databases made on real servers, and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterable

from click.testing import CliRunner, Result

from migrator.cli import main
from migrator.db import query, quote_ident, session
from migrator.endpoint import Endpoint


def make_db(ep: Endpoint, db: str, statements: Iterable[str], role: str = "source") -> None:
    """Create database `db` on `ep` and run the statements in it."""
    with session(ep, role) as conn:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        query(conn, f"CREATE DATABASE {quote_ident(db)} DEFAULT CHARACTER SET utf8mb4")
        query(conn, f"USE {quote_ident(db)}")
        for stmt in statements:
            query(conn, stmt)


def drop_dbs(ep: Endpoint, names: Iterable[str], role: str = "source") -> None:
    with session(ep, role) as conn:
        for name in names:
            query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def insert_ids(ep: Endpoint, db: str, table: str, ids: Iterable[int]) -> None:
    with session(ep, "source", database=db) as conn:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {quote_ident(table)} (id, v) VALUES (%s, %s)", [(i, f"v{i}") for i in ids])


def url(ep: Endpoint) -> str:
    """A URL the CLI accepts for an endpoint (with its password, when it has one)."""
    auth = ep.user + (f":{ep.password.get_secret_value()}" if ep.password else "")
    name = f"?name={ep.name}" if ep.name else ""
    return f"{ep.engine}://{auth}@{ep.host}:{ep.port}{name}"


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def checks(findings, severity: str | None = None) -> set[str]:
    return {f.check for f in findings if severity is None or f.severity == severity}
