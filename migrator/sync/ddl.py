"""DDL seen in the binlog: what it touches, whether sync may apply it, and the target statement.

Parsed with sqlglot (never regexes). Statements that keep the table's identity (ADD/DROP/MODIFY
COLUMN, ADD/DROP INDEX, CREATE/DROP INDEX) are rewritten to the target table and applied once
per target table and occurrence even when every shard of a merged table sends them (`DdlRecord`). Statements
that change what the plan routes (RENAME, DROP TABLE, re-CREATE of a planned table, TRUNCATE of
a merged table) stop the source's stream: applying them blindly could lose rows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError

from ..engine.locks import locked
from ..plan.model import Column
from ..schema.rewrite import rewrite_ddl_statement
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


def retarget(stmt: DdlStatement, target_db: str, target_table: str,
             parent_target: Callable[[str, str], tuple[str, str]] | None = None, source_db: str = "") -> str:
    """The statement with its table renamed to the target table (alter / index / truncate).
    parent_target maps a REFERENCES (source db, table) to its target table: the target session
    has no default database, and a renamed or routed parent has another name there. An
    unqualified parent is in the child's own database (source_db)."""
    tree = stmt.tree.copy()  # type: ignore[union-attr]
    if parent_target is not None:
        for ref in tree.find_all(exp.Reference):
            table = ref.this.this if isinstance(ref.this, exp.Schema) else ref.this
            if isinstance(table, exp.Table):
                db, name = parent_target(table.db or source_db, table.name)
                table.set("this", exp.to_identifier(name, quoted=True))
                table.set("db", exp.to_identifier(db, quoted=True))
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


def rewrite_for_target(sql: str, target_engine: str, source_flavor: str,
                       column_collations: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """The statement rewritten for the target (schema.rewrite) and the reasons it must not run.
    column_collations: the key collations the plan forced (plan.keycollation.planned_key_collations)."""
    result = rewrite_ddl_statement(sql, target_engine, source_flavor=source_flavor, column_collations=column_collations)
    return result.target_ddl, [c.reason for c in result.changes if c.severity == "blocking"]


def position_key(position: str) -> tuple[int, int]:
    """'binlog.000012:345' -> (12, 345), ordered like BinlogPosition.key()."""
    file, _, pos = position.rpartition(":")
    return (int(file.rsplit(".", 1)[-1]), int(pos))


# ALTER actions that leave the column list as it was
NO_COLUMN_CHANGE = (exp.AddConstraint, exp.AlterColumn, exp.DropPrimaryKey)


def columns_after(stmt: DdlStatement, before: list[Column]) -> list[Column | exp.ColumnDef] | None:
    """The table's columns in ordinal order right after `stmt`, told by the statement itself.

    Row events after a DDL must be read with the shape the table had at that point of the binlog,
    not with its shape now: after ADD c / DROP c / ADD c the source has c again, while the rows
    between DROP and the second ADD have no c. Entries are the earlier Column where the column
    is unchanged (or only renamed), else the ColumnDef of an added or modified column (the caller
    takes the source's definition of that name, or builds one with `column_from_def`). None: a
    statement we cannot follow (the caller falls back to the source's current shape)."""
    if stmt.kind in ("create_index", "drop_index", "truncate"):
        return list(before)
    if stmt.kind != "alter" or not isinstance(stmt.tree, exp.Alter):
        return None
    cols: list = list(before)

    def index(name: str) -> int | None:
        return next((i for i, c in enumerate(cols) if _col_name(c).lower() == name.lower()), None)

    def place(entry, position: exp.Expression | None) -> bool:
        if position is None:
            cols.append(entry)
        elif str(position.args.get("position") or "").upper() == "FIRST":
            cols.insert(0, entry)
        else:
            at = index(position.this.name if position.this is not None else "")
            if at is None:
                return False
            cols.insert(at + 1, entry)
        return True

    for action in stmt.tree.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            if index(action.name) is not None:
                if action.args.get("exists"):
                    continue  # ADD COLUMN IF NOT EXISTS of a present column
                return None
            if not place(action, action.args.get("position")):
                return None
        elif isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN":
            for col in action.args.get("tables") or []:
                at = index(col.name)
                if at is None and not action.args.get("exists"):
                    return None
                if at is not None:
                    del cols[at]
        elif isinstance(action, exp.ModifyColumn):
            new = action.this
            old = action.args.get("rename_from")
            at = index(old.name if old is not None else new.name)
            if at is None:
                return None
            del cols[at]
            position = new.args.get("position") or action.args.get("position")
            if position is None:
                cols.insert(at, new)
            elif not place(new, position):
                return None
        elif isinstance(action, exp.RenameColumn):
            at = index(action.this.name)
            if at is None or not isinstance(cols[at], Column):
                return None
            cols[at] = cols[at].model_copy(update={"name": action.args["to"].name})
        elif not isinstance(action, NO_COLUMN_CHANGE):
            return None
    return cols


def _col_name(entry: Column | exp.ColumnDef) -> str:
    return entry.name


def column_from_def(coldef: exp.ColumnDef, table_charset: str | None) -> Column:
    """A Column (as information_schema would describe it) from an ADD/MODIFY column definition:
    used only when the column no longer exists on the source to be looked up."""
    kind = coldef.args.get("kind")
    column_type = kind.sql(dialect="mysql").lower() if kind is not None else ""
    data_type = column_type.split("(")[0].split()[0] if column_type else ""
    constraints = [c.args.get("kind") for c in coldef.args.get("constraints") or []]
    charset = next((c.name for c in constraints if isinstance(c, exp.CharacterSetColumnConstraint)), None)
    texty = data_type in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")
    return Column(name=coldef.name, data_type=data_type, column_type=column_type,
                  nullable=not any(isinstance(c, exp.NotNullColumnConstraint) for c in constraints),
                  charset=(charset or table_charset) if texty else None,
                  generated=any(isinstance(c, exp.ComputedColumnConstraint) for c in constraints))


def normalize(sql: str) -> str:
    """One spelling per statement, so every shard's copy of a DDL compares equal."""
    try:
        return sqlglot.parse_one(sql, read="mysql").sql(dialect="mysql", normalize=True)
    except ParseError:
        return " ".join(sql.split())


@dataclass
class Occurrence:
    """One shard's k-th occurrence of a statement for a target table, and what became of it."""

    k: int
    seen: bool  # this shard met this very event before (a replay after a restart)
    applied_by: dict | None  # the applied-record line of occurrence k, by whichever shard ran it


class DdlRecord:
    """Which DDL ran on which target table, so a statement every shard of a merged table sends
    runs once per occurrence, and a replay after a restart never runs it twice.

    Keyed by (target table, normalised statement, k): shard X's k-th ADD COLUMN c is the same
    change as shard Y's k-th, so ADD c / DROP c / ADD c sent by every shard applies three times,
    not once. Two journals, both appended under one exclusive file lock shared by every source's
    process:
    - sync/ddl.jsonl: one line per occurrence applied to the target (target, statement, k, source,
      table, position), whoever ran it;
    - sync/SRC.ddl.jsonl, one per source: every occurrence that source met (applied or skipped),
      with its binlog position. k is counted from this file, so it survives kill -9, and an event
      replayed from an older checkpoint is recognised by its position and not counted twice.
    """

    def __init__(self, path: Path, seen_path: Path | None, lock_path: Path):
        self.journal = Journal(path)
        self.seen = Journal(seen_path) if seen_path is not None else None
        self.lock_path = lock_path

    def locked(self) -> AbstractContextManager[None]:
        return locked(self.lock_path)

    def occurrence(self, target_name: str, statement: str, table: str, position: str) -> Occurrence:
        """Which occurrence of `statement` the event at `position` of shard `table` is (call under
        locked()). Lines written before occurrences were counted have no k: they count as k=1."""
        mine = [r for r in self._replay(self.seen) if r.get("target") == target_name
                and r.get("statement") == statement and r.get("table") == table]
        earlier = next((r for r in mine if r.get("position") == position), None)
        k = int(earlier["k"]) if earlier else max((int(r["k"]) for r in mine), default=0) + 1
        applied = next((r for r in self._replay(self.journal) if r.get("target") == target_name
                        and r.get("statement") == statement and int(r.get("k", 1)) == k), None)
        return Occurrence(k=k, seen=earlier is not None, applied_by=applied)

    def applied_after(self, target_name: str, line: dict, table: str) -> list[dict]:
        """DDL other shards applied to the target table after `line`: the target is that far
        ahead of shard `table` (call under locked())."""
        lines = [r for r in self._replay(self.journal) if r.get("target") == target_name]
        at = next((i for i, r in enumerate(lines) if r == line), len(lines))
        return [r for r in lines[at + 1:] if r.get("table") != table]

    def record_applied(self, target_name: str, statement: str, k: int, source: str, table: str, position: str) -> None:
        self.journal.append({"target": target_name, "statement": statement, "k": k, "source": source,
                             "table": table, "position": position})
        self.journal.close()

    def record_seen(self, target_name: str, statement: str, k: int, source: str, table: str, position: str,
                    action: str) -> None:
        """action: applied | already applied (by another shard, or before a restart) | skipped (--skip-ddl)."""
        if self.seen is None:
            return
        self.seen.append({"target": target_name, "statement": statement, "k": k, "source": source, "table": table,
                          "position": position, "action": action})
        self.seen.close()

    def record_shape(self, table: str, position: str, columns: list[Column]) -> None:
        """Shard `table`'s columns from binlog `position` (file:offset after a DDL) on: a restart
        resumes reading with the shape its checkpoint's point had, not the plan's nor the
        source's current one."""
        if self.seen is None:
            return
        self.seen.append({"shape": table, "position": position, "columns": [c.model_dump() for c in columns]})
        self.seen.close()

    def shape_at(self, table: str, at: tuple[int, int]) -> list[Column] | None:
        """The columns recorded by the last DDL on shard `table` at or before `at` (position key)."""
        best: tuple[tuple[int, int], list] | None = None
        for r in self._replay(self.seen):
            if r.get("shape") != table:
                continue
            key = position_key(r["position"])
            if key <= at and (best is None or key >= best[0]):
                best = (key, r["columns"])
        return [Column.model_validate(c) for c in best[1]] if best else None

    @staticmethod
    def _replay(journal: Journal | None) -> list[dict]:
        return list(journal.replay()) if journal is not None else []
