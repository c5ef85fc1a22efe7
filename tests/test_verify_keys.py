"""verify on keys whose comparison order is not their text order (ENUM, SET, FLOAT, BIT, ENUM+INT).

Bisection is forced down to single rows (ROWS_AT_ONCE = 1), so every split bound is a key read
from a database; each table has a missing, an extra and a changed row placed where text order
and sort order disagree. Verify must name exactly those keys, and its fix SQL, applied, must
make the target equal to the source.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from migrator.db import query, quote_ident
from migrator.verify import bisect as bisect_mod
from migrator.verify.compare import verify_plan

from verify_helpers import create_both, drop, make_plan, run_sql, table_plan


def f32(x: float) -> float:
    """The value a FLOAT column stores for x, as the exact double."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


@dataclass
class Case:
    ddl: str  # table k: key column(s), then v INT (row number, unique), w VARCHAR
    keys: list[str]  # SQL literals of each row's key, row number = position + 1
    missing: int  # row number deleted on the target
    changed: int  # row number whose w differs on the target
    extra: int  # row number deleted on the source (present on the target only)
    expect: dict[str, tuple]  # kind -> the key verify must report (plan-file form)
    key_text: str  # SQL text of the key for comparing contents after the fix


ENUM_MEMBERS = "jihgfedcba"  # declared in reverse: index order is the reverse of text order
SET_MEMBERS = ["y", "x", "w", "v"]  # set value n (bit mask) sorts by n, not by its text
FLOATS = [1.234561, 1.234562, 1.234563, 1.2345635, 1.234564, 1.2345645, 1.234565, 1.234566, 0.5, 2.5]


def set_text(mask: int) -> str:
    return ",".join(m for i, m in enumerate(SET_MEMBERS) if mask >> i & 1)


CASES = {
    "enum": Case(
        ddl="CREATE TABLE k (e ENUM(" + ",".join(f"'{c}'" for c in ENUM_MEMBERS) + ") NOT NULL PRIMARY KEY, "
            "v INT NOT NULL, w VARCHAR(20))",
        keys=[f"'{c}'" for c in ENUM_MEMBERS],  # rows 1..10 = j..a
        missing=8, changed=3, extra=6,  # 'c', 'h', 'e'
        expect={"missing": ("c",), "changed": ("h",), "extra": ("e",)},
        key_text="CAST(e AS CHAR)",
    ),
    "set": Case(
        ddl="CREATE TABLE k (s SET(" + ",".join(f"'{m}'" for m in SET_MEMBERS) + ") NOT NULL PRIMARY KEY, "
            "v INT NOT NULL, w VARCHAR(20))",
        keys=[f"'{set_text(n)}'" for n in range(16)],
        missing=7, changed=12, extra=10,  # masks 6, 11, 9
        expect={"missing": (set_text(6),), "changed": (set_text(11),), "extra": (set_text(9),)},
        key_text="CAST(s AS CHAR)",
    ),
    "float": Case(
        ddl="CREATE TABLE k (f FLOAT NOT NULL PRIMARY KEY, v INT NOT NULL, w VARCHAR(20))",
        keys=[repr(x) for x in FLOATS],  # all but two print as 1.23456 or 1.23457
        missing=8, changed=3, extra=6,
        expect={"missing": (repr(f32(FLOATS[7])),), "changed": (repr(f32(FLOATS[2])),),
                "extra": (repr(f32(FLOATS[5])),)},
        key_text="CAST(CAST(f AS DOUBLE) AS CHAR)",
    ),
    "bit": Case(
        ddl="CREATE TABLE k (b BIT(8) NOT NULL PRIMARY KEY, v INT NOT NULL, w VARCHAR(20))",
        keys=[str(n) for n in (1, 2, 3, 5, 8, 13, 21, 34, 55, 200)],
        missing=8, changed=3, extra=6,
        expect={"missing": (34,), "changed": (3,), "extra": (13,)},
        key_text="CAST(b + 0 AS CHAR)",
    ),
    "enum_int": Case(
        ddl="CREATE TABLE k (e ENUM('z','y','x') NOT NULL, i INT NOT NULL, v INT NOT NULL, w VARCHAR(20), "
            "PRIMARY KEY (e, i))",
        keys=[f"'{e}', {i}" for e in "zyx" for i in (1, 2, 3, 4)],
        missing=10, changed=4, extra=7,  # ('x', 2), ('z', 4), ('y', 3)
        expect={"missing": ("x", 2), "changed": ("z", 4), "extra": ("y", 3)},
        key_text="CONCAT(e, '/', i)",
    ),
}


def contents(conn, db: str, case: Case) -> list[tuple]:
    return [tuple(r) for r in query(conn, f"SELECT {case.key_text}, v, w FROM {quote_ident(db)}.k ORDER BY v")]


@pytest.mark.parametrize("chunk_rows", [0, 3], ids=["one-chunk", "chunked"])
@pytest.mark.parametrize("name", list(CASES))
def test_verify_names_each_differing_row_and_fix_repairs_it(name, chunk_rows, source, target, src_conn, tgt_conn,
                                                             unique_db, tmp_path, monkeypatch):
    case = CASES[name]
    monkeypatch.setattr(bisect_mod, "ROWS_AT_ONCE", 1)  # bisect down to single rows
    db = unique_db("vkey")
    rows = ", ".join(f"({key}, {n}, 'w{n}')" for n, key in enumerate(case.keys, 1))
    try:
        create_both(src_conn, tgt_conn, db, case.ddl, [f"INSERT INTO k VALUES {rows}"])
        # chunked: bounds read from the source as plain values (ENUM text, FLOAT 6 digits, BIT bytes)
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "k", chunk_rows=chunk_rows)])
        run_sql(src_conn, f"DELETE FROM {quote_ident(db)}.k WHERE v = {case.extra}")
        run_sql(tgt_conn, f"USE {quote_ident(db)}", f"DELETE FROM k WHERE v = {case.missing}",
                f"UPDATE k SET w = 'changed' WHERE v = {case.changed}")
        report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql", apply_fix=True)
        assert report.errors == []
        for kind, key in case.expect.items():
            assert [tuple(r.key) for r in report.rows if r.kind == kind] == [key], (kind, report.rows)
        assert len(report.rows) == 3, report.rows
        changed = next(r for r in report.rows if r.kind == "changed")
        assert changed.columns == ["w"]
        assert report.fix_statements == 3
        assert contents(tgt_conn, db, case) == contents(src_conn, db, case)
        assert report.exit_code == 0 and all(r.fixed for r in report.rows), report.rows
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


def test_keyless_merged_table_rows_of_no_shard(source, target, src_conn, tgt_conn, unique_db, tmp_path):
    """The shard check reads the key as key_select_sql gives it; a keyless table has none to read."""
    db, merged = unique_db("vkl"), unique_db("vklm")
    try:
        run_sql(src_conn, f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE log (msg VARCHAR(20))", "INSERT INTO log VALUES ('a'), ('b')")
        run_sql(tgt_conn, f"CREATE DATABASE {quote_ident(merged)}", f"USE {quote_ident(merged)}",
                "CREATE TABLE log (msg VARCHAR(20), `__source` VARCHAR(64) NOT NULL)")
        run_sql(tgt_conn, "INSERT INTO log VALUES ('a', %s), ('b', %s), ('c', 'gone/shard')",
                args=(f"{source.label}/{db}",) * 2)
        tp = table_plan(src_conn, source.label, db, "log", target_db=merged, source_column="__source")
        report = verify_plan(make_plan([source], target, [tp]), tmp_path / "w", fix_sql=tmp_path / "fix.sql")
        assert [(r.kind, r.key) for r in report.rows] == [("extra", [])], report.rows
        assert "gone/shard" in (report.rows[0].detail or "") and report.exit_code == 1
    finally:
        drop(source, "source", db)
        drop(target, "target", merged)
