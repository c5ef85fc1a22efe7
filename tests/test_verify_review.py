"""Regression tests from the verify/cutover correctness review."""

from __future__ import annotations

from migrator.db import query, quote_ident
from migrator.verify.compare import verify_plan

from verify_helpers import create_both, drop, make_plan, run_sql, table_plan

# digits a double cannot hold, in the range Python's str(Decimal) prints as 1.2...E-7
SMALL = "0.000000123456789012345678901234"


def test_fix_sql_carries_small_decimals_exactly(source, target, src_conn, tgt_conn, unique_db, tmp_path):
    db = unique_db("dec")
    ddl = "CREATE TABLE d (id INT PRIMARY KEY, v DECIMAL(40,30), w DECIMAL(40,30))"
    try:
        create_both(src_conn, tgt_conn, db, ddl, [f"INSERT INTO d VALUES (1, {SMALL}, -{SMALL}), (2, 0, 1)"])
        run_sql(tgt_conn, f"DELETE FROM {quote_ident(db)}.d WHERE id = 1", "UPDATE " + quote_ident(db) + ".d SET w = 2")
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "d")])
        report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql", apply_fix=True)
        assert report.fix_statements == 2
        got = query(tgt_conn, f"SELECT CAST(v AS CHAR), CAST(w AS CHAR) FROM {quote_ident(db)}.d WHERE id = 1")
        assert [tuple(r) for r in got] == [(SMALL, "-" + SMALL)]
        assert report.exit_code == 0 and all(r.fixed for r in report.rows), report.rows
    finally:
        drop(source, "source", db)
        drop(target, "target", db)
