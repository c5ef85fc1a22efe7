"""Fix SQL and shard-scoped verify: exact decimals, keys differing only in case, the file run by
hand with the mysql client, and the other shards of a merged table left alone."""

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


SHARD = "CREATE TABLE acct (id INT PRIMARY KEY, bal DECIMAL(18,2) NOT NULL)"
MERGED = ("CREATE TABLE acct (id INT NOT NULL, bal DECIMAL(18,2) NOT NULL, `__source` VARCHAR(64) NOT NULL, "
          "PRIMARY KEY (id, `__source`))")


def test_verify_of_one_shard_leaves_the_other_shards_of_a_merged_table_alone(source, source2, target, unique_db,
                                                                            tmp_path):
    from migrator.db import connect

    db1, db2, merged = unique_db("shard"), unique_db("shard"), unique_db("merged")
    s1, s2, tgt = connect(source, "source"), connect(source2, "source"), connect(target, "target")
    try:
        for conn, db in ((s1, db1), (s2, db2)):
            run_sql(conn, f"CREATE DATABASE `{db}`", f"USE `{db}`", SHARD, "INSERT INTO acct VALUES (1, 1), (2, 2)")
        run_sql(tgt, f"CREATE DATABASE `{merged}`", f"USE `{merged}`", MERGED)
        for ep, db in ((source, db1), (source2, db2)):
            run_sql(tgt, "INSERT INTO acct VALUES (1, 1, %s), (2, 2, %s)", args=(f"{ep.label}/{db}",) * 2)
        tables = [table_plan(s1, source.label, db1, "acct", target_db=merged, source_column="__source"),
                  table_plan(s2, source2.label, db2, "acct", target_db=merged, source_column="__source")]
        plan = make_plan([source, source2], target, tables)
        # verify --tables <shard 1> --fix-sql --apply-fix: shard 2's rows are not "of no shard"
        report = verify_plan(plan, tmp_path / "w", tables=tables[0].id, fix_sql=tmp_path / "fix.sql", apply_fix=True)
        assert report.exit_code == 0 and report.rows == [], report.rows
        assert query(tgt, f"SELECT COUNT(*) FROM `{merged}`.acct")[0][0] == 4
    finally:
        for conn in (s1, s2, tgt):
            conn.close()
        drop(source, "source", db1)
        drop(source2, "source", db2)
        drop(target, "target", merged)


def test_fix_sql_of_a_key_that_differs_only_in_case_keeps_the_row(source, target, src_conn, tgt_conn, unique_db,
                                                                   tmp_path):
    # 'abc' on the source, 'ABC' on the target: missing + extra under a _ci key; the REPLACE of
    # 'abc' overwrites 'ABC', so a DELETE of 'ABC' run after it would delete the repaired row
    db = unique_db("ci")
    ddl = "CREATE TABLE k (code VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT) CHARSET utf8mb4"
    try:
        create_both(src_conn, tgt_conn, db, ddl, ["INSERT INTO k VALUES ('abc', 1), ('x', 2)"])
        run_sql(tgt_conn, f"UPDATE {quote_ident(db)}.k SET code = 'ABC' WHERE code = 'abc'")
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "k")])
        report = verify_plan(plan, tmp_path / "w", fix_sql=tmp_path / "fix.sql", apply_fix=True)
        assert [tuple(r) for r in query(tgt_conn, f"SELECT code, v FROM {quote_ident(db)}.k ORDER BY v")] == [
            ("abc", 1), ("x", 2)]
        assert report.exit_code == 0, report.rows
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


def test_fix_sql_file_applied_by_hand_with_the_mysql_client(source, target, src_conn, tgt_conn, unique_db,
                                                            tmp_path):
    # the DBA reviews fix.sql and runs it with the client: seekdb's sessions default to
    # time_zone +08:00, which would shift every TIMESTAMP literal by 8 hours
    import subprocess

    db = unique_db("hand")
    ddl = "CREATE TABLE h (id INT PRIMARY KEY, ts TIMESTAMP NULL, s VARCHAR(20))"
    try:
        create_both(src_conn, tgt_conn, db, ddl, ["INSERT INTO h VALUES (1, '2024-01-01 00:00:00', 'a\\\\b''c')"])
        run_sql(tgt_conn, f"DELETE FROM {quote_ident(db)}.h")
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "h")])
        fix = tmp_path / "fix.sql"
        assert verify_plan(plan, tmp_path / "w", fix_sql=fix).exit_code == 1
        with fix.open() as f:
            subprocess.run(["mariadb", "-h", target.host, "-P", str(target.port), "-u", target.user],
                           stdin=f, check=True, timeout=30, capture_output=True)
        assert verify_plan(plan, tmp_path / "w2").exit_code == 0
    finally:
        drop(source, "source", db)
        drop(target, "target", db)
