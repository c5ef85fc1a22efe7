"""Test helpers for the DDL rewrite and `schema convert`: read a table's shape from
information_schema on either side and check that every difference is explained by a Change."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migrator.db import query
from migrator.plan.model import Change
from migrator.schema import ddl_text as dt

CORPUS = Path(__file__).parent / "corpus"


@dataclass
class CorpusCase:
    path: Path
    form: str  # mariadb | mysql8
    expect_blocking: bool
    rules: list[str]
    statements: list[str]

    @property
    def id(self) -> str:
        return self.path.stem


def load_case(path: Path) -> CorpusCase:
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("-- "):
            break
        key, _, value = line[3:].partition(":")
        meta[key.strip()] = value.strip()
    rules = [r.strip() for r in meta.get("rules", "").split(",") if r.strip()]
    stmts = [s.text for s in dt.split_statements(path.read_text())]
    return CorpusCase(path, meta.get("form", "mariadb"), meta.get("expect") == "blocking", rules, stmts)


def object_name(statement: str) -> str:
    """Name of the table/sequence a CREATE statement creates (first name after TABLE/SEQUENCE)."""
    sig = dt.significant(dt.tokenize(statement))
    for k, t in enumerate(sig):
        if t.upper in ("TABLE", "SEQUENCE"):
            return sig[k + 1].ident
    raise AssertionError(f"no object name in {statement[:60]}")


def column_names(ddl: str) -> list[str]:
    """Column names of a CREATE TABLE, in order (items that are not keys or constraints)."""
    tokens = dt.tokenize(dt.unwrap_version_comments(ddl)[0])
    open_k = next(k for k, t in enumerate(tokens) if t.text == "(")
    items = dt.split_top_level(tokens[open_k + 1:dt.matching_paren(tokens, open_k)])
    keywords = {"PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK"}
    firsts = [dt.significant(item)[0] for item in items]
    return [t.ident for t in firsts if not (t.kind == dt.WORD and t.upper in keywords)]


def _norm_default(value: str | None) -> str | None:
    if value is None or value == "NULL":
        return None
    v = value
    if len(v) >= 2 and v[0] == "'" and v[-1] == "'":  # MariaDB quotes string defaults
        v = v[1:-1].replace("''", "'").replace("\\\\", "\\")
    v = v.lower()
    if v.startswith("current_timestamp"):
        # seekdb's information_schema prints CURRENT_TIMESTAMP without the precision its SHOW CREATE
        # TABLE keeps (checked by hand); the precision is in the column type, compared separately
        v = "current_timestamp"
    try:
        return repr(float(v))  # zerofill: MariaDB reports '007' for a default of 7
    except ValueError:
        return v


def _norm_extra(extra: str) -> str:
    words = extra.lower().replace("current_timestamp()", "current_timestamp").split()
    return " ".join(w for w in words if w != "default_generated")


def columns(conn, db: str, table: str) -> dict[str, dict[str, object]]:
    rows = query(conn, "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, CHARACTER_SET_NAME, "
                       "COLLATION_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                       "TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (db, table))
    out = {}
    for name, ctype, nullable, default, cs, co, extra in rows:
        generated = "generated" in (extra or "").lower()
        # seekdb reports a generated column's expression as its COLUMN_DEFAULT
        out[name] = {"type": str(ctype).lower(), "nullable": nullable,
                     "default": None if generated else _norm_default(default),
                     "charset": cs, "collation": co, "extra": _norm_extra(extra or "")}
    return out


def indexes(conn, db: str, table: str) -> dict[str, list[tuple]]:
    rows = query(conn, "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, COLLATION "
                       "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                       "ORDER BY INDEX_NAME, SEQ_IN_INDEX", (db, table))
    out: dict[str, list[tuple]] = {}
    for name, seq, col, non_unique, sub_part, collation in rows:
        out.setdefault(name, []).append((int(seq), col, int(non_unique), sub_part and int(sub_part),
                                         (collation or "A").upper()))
    return out


def partitions(conn, db: str, table: str) -> list[tuple]:
    rows = query(conn, "SELECT PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD "
                       "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                       "AND PARTITION_NAME IS NOT NULL ORDER BY PARTITION_ORDINAL_POSITION, "
                       "SUBPARTITION_ORDINAL_POSITION", (db, table))
    return [(p, s, (m or "").replace("LINEAR ", ""), (sm or "").replace("LINEAR ", "")) for p, s, m, sm in rows]


# attribute -> rule prefixes that may explain a difference in it
_EXPLAINS = {
    "type": ("type.", "column."),
    "nullable": ("type.",),
    "default": ("default.", "type."),
    "charset": ("charset.", "type.national", "type.mariadb-"),
    "collation": ("collation.", "charset.", "type.mariadb-"),
    "extra": ("default.", "type."),
}


def _explained(changes: list[Change], attr: str, column: str) -> bool:
    col = f"column `{column}`"
    for c in changes:
        if not c.rule.startswith(_EXPLAINS[attr]):
            continue
        if col in c.reason or (attr in ("charset", "collation") and "table default" in c.reason):
            return True
    return False


def unexplained_differences(src_conn, src_db: str, tgt_conn, tgt_db: str, table: str,
                            changes: list[Change]) -> list[str]:
    """Every column/index/partition difference between source and target not covered by a Change."""
    problems: list[str] = []
    s_cols, t_cols = columns(src_conn, src_db, table), columns(tgt_conn, tgt_db, table)
    if list(s_cols) != list(t_cols):
        problems.append(f"{table}: columns differ: {list(s_cols)} vs {list(t_cols)}")
        return problems
    for name, s in s_cols.items():
        t = t_cols[name]
        for attr, sv in s.items():
            tv = t[attr]
            if attr == "type":
                sv, tv = str(sv).replace("geometrycollection", "geomcollection"), str(tv)
            if sv != tv and not _explained(changes, attr, name):
                problems.append(f"{table}.{name}: {attr} {sv!r} became {tv!r} with no Change explaining it")
    s_ix, t_ix = indexes(src_conn, src_db, table), indexes(tgt_conn, tgt_db, table)
    for name in set(s_ix) | set(t_ix):
        if s_ix.get(name) == t_ix.get(name):
            continue
        if name in s_ix and name in t_ix and any(str(c[1]).startswith("__") for c in t_ix[name]):
            continue  # seekdb FULLTEXT/SPATIAL indexes list hidden internal columns: existence is the check
        explained = any(c.rule.startswith("index.") and f"`{name}`" in c.reason for c in changes)
        if not explained:
            problems.append(f"{table}: index {name}: {s_ix.get(name)} became {t_ix.get(name)} with no Change")
    s_p, t_p = partitions(src_conn, src_db, table), partitions(tgt_conn, tgt_db, table)
    if sorted(s_p, key=str) != sorted(t_p, key=str):  # seekdb orders LIST partitions differently
        problems.append(f"{table}: partitions {s_p} became {t_p}")
    return problems
