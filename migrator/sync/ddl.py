"""DDL seen in the binlog: what it touches, whether sync may apply it, and the target statement.

Parsed with sqlglot (never regexes). Statements that keep the table's identity (ADD/DROP/MODIFY
COLUMN, ADD/DROP INDEX, CREATE/DROP INDEX) are rewritten to the target table and applied once
per target table even when every shard of a merged table sends them (`DdlRecord`). Statements
that change what the plan routes (RENAME, DROP TABLE, re-CREATE of a planned table, TRUNCATE of
a merged table) stop the source's stream: applying them blindly could lose rows.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError

from ..state import Journal

ApplyKind = str  # "apply" | "ignore" | "stop" | "dml"


@dataclass
class DdlStatement:
    sql: str
    kind: str  # alter | create_table | create_index | drop_index | drop_table | truncate | rename | dml | other
    tables: list[tuple[str, str]]  # (database, table) the statement names
    tree: exp.Expression | None


def classify(sql: str, default_db: str) -> DdlStatement:
    """What a Query event's statement is and which tables it names."""
    text = sql.strip().rstrip(";")
    try:
        tree = sqlglot.parse_one(text, read="mysql")
    except ParseError:
        return DdlStatement(sql, "other", [], None)
    if isinstance(tree, exp.Command):
        if str(tree.this).upper() == "RENAME":
            return DdlStatement(sql, "rename", _rename_names(tree.expression.name if tree.expression is not None else "", default_db), tree)
        return DdlStatement(sql, "other", [], tree)
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
        return DdlStatement(sql, "dml", _names(_target_tables(tree), default_db), tree)
    if isinstance(tree, exp.Alter):
        actions = tree.args.get("actions") or []
        kind = "rename" if any(isinstance(a, exp.AlterRename) for a in actions) else "alter"
        return DdlStatement(sql, kind, _names([tree.this], default_db), tree)
    if isinstance(tree, exp.TruncateTable):
        return DdlStatement(sql, "truncate", _names(list(tree.expressions), default_db), tree)
    if isinstance(tree, exp.Create):
        kind_word = str(tree.args.get("kind") or "").upper()
        if kind_word == "INDEX":
            table = tree.this.args.get("table")
            return DdlStatement(sql, "create_index", _names([table], default_db), tree)
        if kind_word == "TABLE":
            t = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            return DdlStatement(sql, "create_table", _names([t], default_db), tree)
        return DdlStatement(sql, "other", [], tree)
    if isinstance(tree, exp.Drop):
        kind_word = str(tree.args.get("kind") or "").upper()
        if kind_word == "TABLE":
            return DdlStatement(sql, "drop_table", _names(list(tree.args.get("tables") or []), default_db), tree)
        if kind_word == "INDEX":
            on = tree.args.get("cluster")
            return DdlStatement(sql, "drop_index", _names([on.this] if on is not None else [], default_db), tree)
        return DdlStatement(sql, "other", [], tree)
    return DdlStatement(sql, "other", [], tree)


def _rename_names(body: str, default_db: str) -> list[tuple[str, str]]:
    """Every table a RENAME TABLE names (sqlglot keeps RENAME as a Command: read its tokens;
    the SELECT prefix makes the tokenizer split the body instead of keeping it as one string)."""
    names = [t for t in MySQL().tokenize("SELECT " + body)[1:] if t.token_type.name in ("VAR", "IDENTIFIER", "DOT")]
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(names):
        tok = names[i]
        if tok.token_type.name == "VAR" and tok.text.upper() == "TO" or tok.text == ".":
            i += 1
            continue
        if i + 2 < len(names) and names[i + 1].text == ".":
            out.append((tok.text, names[i + 2].text))
            i += 3
        else:
            out.append((default_db, tok.text))
            i += 1
    return out


def _target_tables(tree: exp.Expression) -> list[exp.Table]:
    t = tree.this
    if isinstance(t, exp.Schema):
        t = t.this
    return [t] if isinstance(t, exp.Table) else list(tree.find_all(exp.Table))[:1]


def _names(tables: list, default_db: str) -> list[tuple[str, str]]:
    out = []
    for t in tables:
        if isinstance(t, exp.Table) and t.name:
            out.append((t.db or default_db, t.name))
    return out


def retarget(stmt: DdlStatement, target_db: str, target_table: str) -> str:
    """The statement with its table renamed to the target table (alter / index / truncate)."""
    tree = stmt.tree.copy()  # type: ignore[union-attr]
    new = exp.Table(this=exp.to_identifier(target_table, quoted=True), db=exp.to_identifier(target_db, quoted=True))
    if isinstance(tree, exp.Alter):
        tree.set("this", new)
    elif isinstance(tree, exp.TruncateTable):
        tree.set("expressions", [new])
    elif isinstance(tree, exp.Create):
        tree.this.set("table", new)
    elif isinstance(tree, exp.Drop):
        tree.args["cluster"].set("this", new)
    return tree.sql(dialect="mysql")


def rewrite_for_target(sql: str, target_engine: str, source_flavor: str) -> tuple[str, list[str]]:
    """Run engineer A's rewrite when it exists; returns (statement, blocking reasons)."""
    try:
        from ..schema.rewrite import rewrite_ddl_statement  # type: ignore[attr-defined]
    except ImportError:
        return sql, []
    result = rewrite_ddl_statement(sql, target_engine, source_flavor=source_flavor)
    if isinstance(result, str):
        return result, []
    blocking = [c.reason for c in getattr(result, "changes", []) if c.severity == "blocking"]
    return result.target_ddl, blocking


def normalize(sql: str) -> str:
    """One spelling per statement, so every shard's copy of a DDL compares equal."""
    try:
        return sqlglot.parse_one(sql, read="mysql").sql(dialect="mysql", normalize=True)
    except ParseError:
        return " ".join(sql.split())


class DdlRecord:
    """The shared record of DDL applied per target table: one line per applied statement.

    Every source's process reads and appends under an exclusive file lock, so a statement sent
    by four shards runs once."""

    def __init__(self, path: Path):
        self.journal = Journal(path)
        self.lock_path = path.with_suffix(".lock")

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def applied(self, target_name: str, statement: str) -> bool:
        return any(r.get("target") == target_name and r.get("statement") == statement for r in self.journal.replay())

    def record(self, target_name: str, statement: str, source: str, position: str) -> None:
        self.journal.append({"target": target_name, "statement": statement, "source": source, "position": position})
        self.journal.close()
