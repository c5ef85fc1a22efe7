"""verify when a text key's collation differs between source (latin1_swedish_ci) and target (utf8mb4_general_ci).

The two collations sort keys differently ('ä', 'ö' after 'z' in Swedish, next to 'a'/'o' in
general_ci), so a chunk bound or a split point taken on the source puts a row in one range on the
source and in another on the target, and the plan's bounds, out of order on the target, make its
chunks overlap. Verify must not report such rows nor write a fix for them (they are on both sides,
identical), and must still name a real difference exactly.
"""

from __future__ import annotations

import pytest

from migrator.db import query, quote_ident
from migrator.verify import bisect as bisect_mod
from migrator.verify.compare import verify_plan

from verify_helpers import drop, make_plan, run_sql, table_plan

# unique under both collations; their order differs between them
KEYS = ["1", "b", "c", "m", "x", "z", "ä", "ö", "_q", "þ", "é", "ß", "~"]
SOURCE_DDL = ("CREATE TABLE k (k VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL PRIMARY KEY, "
              "v INT NOT NULL)")
TARGET_DDL = ("CREATE TABLE k (k VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, "
              "v INT NOT NULL)")


@pytest.fixture(autouse=True)
def _rows(monkeypatch):
    monkeypatch.setattr(bisect_mod, "ROWS_AT_ONCE", 1)  # bisect down to single rows


def insert_args() -> list:
    return [v for i, k in enumerate(KEYS) for v in (k, i)]


@pytest.fixture
def filled(source, target, src_conn, tgt_conn, unique_db):
    db = unique_db("vcoll")
    rows = ", ".join(["(%s, %s)"] * len(KEYS))
    for conn, ddl in ((src_conn, SOURCE_DDL), (tgt_conn, TARGET_DDL)):
        run_sql(conn, f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}", ddl)
        run_sql(conn, f"INSERT INTO k VALUES {rows}", args=insert_args())
    yield db
    drop(source, "source", db)
    drop(target, "target", db)


def test_orders_differ_between_the_collations(filled, src_conn, tgt_conn):
    """The premise: the same keys, in another order on the target."""
    src = [r[0] for r in query(src_conn, f"SELECT k FROM {quote_ident(filled)}.k ORDER BY k")]
    tgt = [r[0] for r in query(tgt_conn, f"SELECT k FROM {quote_ident(filled)}.k ORDER BY k")]
    assert sorted(src) == sorted(tgt) == sorted(KEYS) and src != tgt


@pytest.mark.parametrize("chunk_rows", [0, 3], ids=["one-chunk", "chunked"])
def test_same_rows_in_another_order_are_identical(filled, chunk_rows, source, target, src_conn, tmp_path):
    plan = make_plan([source], target, [table_plan(src_conn, source.label, filled, "k", chunk_rows=chunk_rows)])
    report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql")
    assert report.rows == [] and report.fix_statements == 0, report.rows
    assert report.exit_code == 0, report.tables
    if chunk_rows:  # the user is told why the plan's chunks were not used
        assert any("latin1_swedish_ci" in n and "one range" in n for n in report.tables[0].notes), report.tables


@pytest.mark.parametrize("chunk_rows", [0, 3], ids=["one-chunk", "chunked"])
def test_real_differences_still_named(filled, chunk_rows, source, target, src_conn, tgt_conn, tmp_path):
    run_sql(tgt_conn, f"USE {quote_ident(filled)}", "DELETE FROM k WHERE v = 6",  # 'ä'
            "UPDATE k SET v = 100 WHERE v = 7",  # 'ö'
            "INSERT INTO k VALUES ('å', 200)")
    plan = make_plan([source], target, [table_plan(src_conn, source.label, filled, "k", chunk_rows=chunk_rows)])
    report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql", apply_fix=True)
    assert sorted((r.kind, tuple(r.key)) for r in report.rows) == [
        ("changed", ("ö",)), ("extra", ("å",)), ("missing", ("ä",))], report.rows
    # bisection split by source keys put some rows in other halves on the target: paired, not reported
    assert any("another key range" in n for n in report.tables[0].notes), report.tables
    assert report.exit_code == 0 and all(r.fixed for r in report.rows), report.rows
    got = query(tgt_conn, f"SELECT k, v FROM {quote_ident(filled)}.k ORDER BY v")
    assert [tuple(r) for r in got] == [(k, i) for i, k in enumerate(KEYS)]


def test_rows_in_other_ranges_never_count_as_differences(filled, source, target, src_conn, tgt_conn, tmp_path):
    """With room for one differing row, that row is the one named: a row that merely sits in another
    range on the target is looked up there by its key, never listed (nor deleted by the fix SQL)."""
    run_sql(tgt_conn, f"UPDATE {quote_ident(filled)}.k SET v = 100 WHERE v = 7")  # 'ö'
    plan = make_plan([source], target, [table_plan(src_conn, source.label, filled, "k")])
    report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql", max_rows=1)
    assert [(r.kind, tuple(r.key)) for r in report.rows] == [("changed", ("ö",))], report.rows
    assert "DELETE FROM" not in (tmp_path / "fix.sql").read_text()
