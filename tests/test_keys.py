"""The one key-range form (migrator.keys) on the real servers: it selects exactly the rows a row
comparison selects, and every stage's range query reads only its range through the key index."""

from __future__ import annotations

import itertools

import pytest

from migrator.copy import sqlgen
from migrator.db import connect, query, quote_ident
from migrator.keys import compare_sql, range_sql
from migrator.verify.canonical import SideColumn, type_kind
from migrator.verify.checksum import TableSide, checksum_sql, range_where, split_key

from copy_helpers import table_plan

KEY = ["a", "b", "c"]
GRID = list(itertools.product(range(4), range(3), range(3)))  # every key of a 4x3x3 key space


@pytest.mark.parametrize("role", ["source", "target"])
def test_compare_sql_selects_what_a_row_comparison_selects(role, source, target, unique_db):
    ep = source if role == "source" else target
    db = unique_db("keycmp")
    conn = connect(ep, role, autocommit=True)
    try:
        query(conn, f"CREATE DATABASE {quote_ident(db)}")
        query(conn, f"CREATE TABLE {quote_ident(db)}.k (a INT NOT NULL, b INT NOT NULL, c INT NOT NULL, "
                    "PRIMARY KEY (a, b, c))")
        query(conn, f"INSERT INTO {quote_ident(db)}.k VALUES " + ",".join(str(k) for k in GRID))
        for bound in [(0, 0, 0), (1, 2, 1), (2, 0, 2), (3, 2, 2), (1, 1, 0)]:
            for op, test in ((">", tuple.__gt__), (">=", tuple.__ge__), ("<", tuple.__lt__), ("<=", tuple.__le__)):
                sql, params = compare_sql(KEY, op, bound)
                got = query(conn, f"SELECT a, b, c FROM {quote_ident(db)}.k WHERE {sql} ORDER BY a, b, c", params)
                assert [tuple(r) for r in got] == [k for k in GRID if test(k, bound)], (op, bound, sql)
        parts, params = range_sql(KEY, [1, 2, 1], [3, 0, 1])
        got = query(conn, f"SELECT COUNT(*) FROM {quote_ident(db)}.k WHERE {' AND '.join(parts)}", params)
        assert got[0][0] == sum(1 for k in GRID if (1, 2, 1) < k <= (3, 0, 1))
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        conn.close()


def _make_pairs(conn, db: str) -> None:
    query(conn, f"CREATE DATABASE {quote_ident(db)}")
    query(conn, f"CREATE TABLE {quote_ident(db)}.p (a INT NOT NULL, b INT NOT NULL, v VARCHAR(20) NOT NULL, "
                "PRIMARY KEY (a, b))")
    for start in range(0, 20_000, 5_000):
        query(conn, f"INSERT INTO {quote_ident(db)}.p VALUES "
                    + ",".join(f"({i // 10},{i % 10},'v{i}')" for i in range(start, start + 5_000)))
    query(conn, f"ANALYZE TABLE {quote_ident(db)}.p")


def _index_reads(conn, sql: str, params: list) -> int:
    """Index entries MariaDB read to answer the query (this session's handler counters)."""
    def counters() -> int:
        rows = query(conn, "SHOW SESSION STATUS WHERE Variable_name IN "
                           "('Handler_read_first','Handler_read_key','Handler_read_next')")
        return sum(int(r[1]) for r in rows)
    before = counters()
    query(conn, sql, params)
    return counters() - before


def test_copy_pages_read_only_their_range_on_mariadb(source, unique_db):
    """Copy paged a composite key with the row-value form `(a,b) > (x,y)`, which MariaDB does not
    range-optimise: a page deep in the table scanned the index from its first entry (15,000 entries
    read for a 100-row page here). Every stage now spells the range the same way."""
    db = unique_db("keypage")
    conn = connect(source, "source", autocommit=True)
    try:
        _make_pairs(conn, db)
        tp = table_plan(conn, source.label, db, "p", db)
        lower, upper = [1500, 5], [1700, 3]
        for name, (sql, params) in {
            "copy page": sqlgen.page_select(tp, lower, upper, 100),
            "copy page bound": sqlgen.page_bound_select(tp, lower, upper, 100),
            "copy whole chunk": sqlgen.whole_chunk_select(tp, lower, upper),
        }.items():
            plan = query(conn, "EXPLAIN " + sql, params)[0]
            assert plan[3] == "range" and plan[5] == "PRIMARY", (name, plan)
            assert _index_reads(conn, sql, params) < 2_100, name  # the range holds 1,998 rows
        sql, params = sqlgen.page_select(tp, [1900, 0], None, 100)
        assert _index_reads(conn, sql, params) < 200
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        conn.close()


def test_verify_range_is_one_range_scan_on_seekdb(target, unique_db):
    """seekdb splits the expanded comparison `a > x OR (a = x AND b > y)` (verify's form before)
    into a UNION ALL of three range scans under `ORDER BY key LIMIT n`, the shape of a page; with
    the leading column bounded too every range query is one range scan."""
    db = unique_db("keyrange")
    conn = connect(target, "target", autocommit=True)
    try:
        _make_pairs(conn, db)
        cols = query(conn, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                           "AND TABLE_NAME = 'p' ORDER BY ORDINAL_POSITION", (db,))
        side = TableSide("target", "target", db, "p", [SideColumn(n, type_kind(t)) for n, t in cols], ["a", "b"])
        where, params = range_where(side, [1500, 5], [1700, 3])
        for sql in (checksum_sql(side, [1500, 5], [1700, 3])[0],  # a chunk's checksum
                    f"SELECT a, b FROM {side.name} WHERE {where} ORDER BY a, b LIMIT 1 OFFSET 999",  # bisection point
                    f"SELECT * FROM {side.name} WHERE {where} ORDER BY a, b LIMIT 100"):  # a page in key order
            plan = "\n".join(r[0] for r in query(conn, "EXPLAIN " + sql, params))
            assert "UNION" not in plan and plan.count("TABLE RANGE SCAN") == 1, plan
        assert query(conn, checksum_sql(side, [1500, 5], [1700, 3])[0], params)[0][0] == 1998
        assert split_key(conn, side, [1500, 5], [1700, 3], 999) == [1600, 5]
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        conn.close()
