"""Canonical forms: identical data checksums alike on MariaDB and seekdb; a one-bit change in any column type shows.

The corpus covers every MySQL column type at its extremes; each mutation changes one column of one
row on the target by the smallest step the type allows.
"""

from __future__ import annotations

import pytest

from migrator.verify.canonical import SideColumn, field_sql, normalize_json, row_text_sql
from migrator.verify.compare import verify_plan

from verify_helpers import create_both, diff_keys, drop, make_plan, run_sql, table_plan

CORPUS = """CREATE TABLE corpus (
  id INT PRIMARY KEY,
  ti TINYINT NULL, su SMALLINT UNSIGNED NULL, mi MEDIUMINT NULL, i INT NULL, bi BIGINT NULL, bu BIGINT UNSIGNED NULL,
  dc DECIMAL(65,30) NULL, dm DECIMAL(10,2) NULL, f FLOAT NULL, d DOUBLE NULL, b1 BIT(1) NULL, b64 BIT(64) NULL,
  y YEAR NULL, dt DATE NULL, dtm DATETIME(6) NULL, ts TIMESTAMP(3) NULL, tm TIME(6) NULL,
  c CHAR(10) NULL, vc VARCHAR(100) NULL, tx TEXT NULL, bn BINARY(8) NULL, vb VARBINARY(100) NULL, bl BLOB NULL,
  e ENUM('a','b','c') NULL, s SET('x','y','z') NULL, j JSON NULL
) DEFAULT CHARSET=utf8mb4"""

EXTREMES = [
    # minimums / empties
    "(1, -128, 0, -8388608, -2147483648, -9223372036854775808, 0, "
    "-99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, -3.40282e38, "
    "-1.7976931348623157e308, b'0', b'0', 1901, '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01', "
    "'-838:59:59', '', '', '', '', '', '', 'a', '', '{}')",
    # maximums, NUL bytes, 4-byte characters
    "(2, 127, 65535, 8388607, 2147483647, 9223372036854775807, 18446744073709551615, "
    "99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 3.40282e38, "
    "1.7976931348623157e308, b'1', x'FFFFFFFFFFFFFFFF', 2155, '9999-12-31', '9999-12-31 23:59:59.999999', "
    "'2038-01-19 03:14:07.999', '838:59:59', 'zzzzzzzzzz', '😀 é ß 中', CONCAT('a', CHAR(0), 'b'), "
    "x'0000000000000000', x'00FF00', x'00', 'c', 'x,y,z', '{\"b\": [1, 2.5, {\"z\": null}], \"a\": \"é😀\"}')",
    # NULL everywhere
    "(3" + ", NULL" * 26 + ")",
    # shortest-repr traps: 0.1, 1/3, denormals, 'NULL' text, separators
    "(4, 0, 1, 0, 0, 0, 1, 0.000000000000000000000000000001, 0.01, 0.1, 0.3333333333333333, b'1', b'101', "
    "2000, '2000-02-29', '2000-02-29 12:00:00.5', '2000-02-29 12:00:00.5', '-00:00:00.000001', 'NULL', 'a,b', "
    "'N', 'a|b', x'2C', x'7C', 'b', 'y', '[1, \"a\", true, false, null, 1.0, 1e2]')",
    "(5, 0, 1, 0, 0, 0, 1, 0, 0, 1e-40, 5e-324, b'0', b'0', 2000, '2000-01-01', '2000-01-01', NULL, '00:00:00', "
    "' x', 'x ', 'trailing  ', 'a b', '', x'01', 'a', 'x,z', '\"text\"')",
    # zero dates (strict mode without NO_ZERO_DATE accepts them on both engines)
    "(6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 16777217, -0.0, NULL, NULL, 0, '0000-00-00', "
    "'0000-00-00 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]

TYPICAL = ("({id}, 1, 2, 3, 4, 5, 6, 1.5, 2.25, 0.1, 0.1, b'1', 255, 2000, '2020-02-02', "
           "'2020-02-02 02:02:02.123456', '2020-02-02 02:02:02.123', '01:02:03.000004', 'ab', 'abc', 'text', 'bin', "
           "x'0001', x'00', 'a', 'x', '{{\"k\": 1}}')")

# (column, new value on the target): the smallest change each type allows
MUTATIONS = [
    ("ti", "0"), ("su", "3"), ("mi", "2"), ("i", "5"), ("bi", "4"), ("bu", "7"),
    ("dc", "1.500000000000000000000000000001"), ("dm", "2.24"),
    ("f", "0.10000001"),  # next float after 0.1f
    ("d", "0.10000000000000002"),  # next double after 0.1
    ("b1", "b'0'"), ("b64", "254"), ("y", "2001"), ("dt", "'2020-02-03'"),
    ("dtm", "'2020-02-02 02:02:02.123457'"), ("ts", "'2020-02-02 02:02:02.124'"), ("tm", "'01:02:03.000005'"),
    ("c", "'aB'"), ("vc", "'abc '"), ("tx", "'texu'"), ("bn", "'bio'"), ("vb", "x'0101'"), ("bl", "x'01'"),
    ("e", "'b'"), ("s", "'x,y'"), ("j", "'{\"k\": 2}'"), ("j", "'{\"k\": \"1\"}'"),
]
FIRST_MUTATED = 10


@pytest.fixture
def corpus(source, target, src_conn, tgt_conn, unique_db):
    db = unique_db("corpus")
    typical = [TYPICAL.format(id=FIRST_MUTATED + n) for n in range(len(MUTATIONS))]
    create_both(src_conn, tgt_conn, db, CORPUS, [f"INSERT INTO corpus VALUES {', '.join(EXTREMES + typical)}"])
    yield db
    drop(source, "source", db)
    drop(target, "target", db)


def test_corpus_identical_then_every_one_step_change_caught(corpus, source, target, src_conn, tgt_conn, tmp_path):
    plan = make_plan([source], target, [table_plan(src_conn, source.label, corpus, "corpus", chunk_rows=4)])
    report = verify_plan(plan, tmp_path / "w1")
    assert report.exit_code == 0, report.model_dump()
    t = report.tables[0]
    assert t.rows_source == t.rows_target == len(EXTREMES) + len(MUTATIONS)
    # MariaDB json is longtext, the target's is a real JSON type: compared normalized, said so
    assert t.client_columns == ["j"]

    for n, (col, value) in enumerate(MUTATIONS):
        run_sql(tgt_conn, f"UPDATE `{corpus}`.corpus SET `{col}` = {value} WHERE id = {FIRST_MUTATED + n}")
    report = verify_plan(plan, tmp_path / "w2", max_rows=100)
    assert report.exit_code == 1
    assert diff_keys(report, "changed") == {(FIRST_MUTATED + n,) for n in range(len(MUTATIONS))}
    assert diff_keys(report) == diff_keys(report, "changed")
    by_key = {r.key[0]: r for r in report.rows}
    for n, (col, _) in enumerate(MUTATIONS):
        assert by_key[FIRST_MUTATED + n].columns == [col], (col, by_key[FIRST_MUTATED + n])
    # representation suspicions, so a DBA is not sent chasing false alarms (but still reported)
    suspected = {MUTATIONS[r.key[0] - FIRST_MUTATED][0]: r.suspected for r in report.rows}
    assert suspected["c"].startswith("collation/case")
    assert suspected["vc"].startswith("trailing spaces")
    assert suspected["f"].startswith("float rounding") and suspected["d"].startswith("float rounding")
    assert suspected["dm"] is None and suspected["tx"] is None

    # the fix SQL carries every type back exactly (extremes, floats, bits, NUL bytes, JSON, zero dates)
    run_sql(tgt_conn, f"DELETE FROM `{corpus}`.corpus WHERE id <= {len(EXTREMES)}")
    report = verify_plan(plan, tmp_path / "w3", fix_sql=tmp_path / "fix.sql", apply_fix=True, max_rows=100)
    assert diff_keys(report, "missing") == {(i,) for i in range(1, len(EXTREMES) + 1)}
    assert report.fix_statements == len(MUTATIONS) + len(EXTREMES) and report.exit_code == 0
    assert verify_plan(plan, tmp_path / "w4").exit_code == 0


def test_json_text_normalized_on_both_sides(source, target, src_conn, tgt_conn, unique_db, tmp_path):
    """Same JSON, written differently (spaces, key order, 2.50): equal; a changed number: caught."""
    db = unique_db("json")
    try:
        create_both(src_conn, tgt_conn, db, "CREATE TABLE j (id INT PRIMARY KEY, doc JSON)",
                    ["INSERT INTO j VALUES (1, '{\"b\":1,\"a\":[1,2.50]}'), (2, '[]'), (3, NULL)"])
        run_sql(tgt_conn, f"UPDATE `{db}`.j SET doc = '{{\"a\": [1, 2.5], \"b\": 1}}' WHERE id = 1")
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "j")])
        assert verify_plan(plan, tmp_path / "w1").exit_code == 0
        run_sql(tgt_conn, f"UPDATE `{db}`.j SET doc = '[0]' WHERE id = 2")
        report = verify_plan(plan, tmp_path / "w2")
        assert diff_keys(report) == {(2,)} and report.rows[0].columns == ["doc"]
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


def test_null_empty_text_null_and_separators(source, target, src_conn, tgt_conn, unique_db, tmp_path):
    db = unique_db("nulls")
    ddl = "CREATE TABLE p (id INT PRIMARY KEY, a VARCHAR(10) NULL, b VARCHAR(10) NULL)"
    try:
        create_both(src_conn, tgt_conn, db, ddl, ["INSERT INTO p VALUES (1, NULL, 'x'), (2, '', 'x'), "
                                                  "(3, 'NULL', 'x'), (4, 'a,b', 'c'), (5, 'N', NULL), (6, 'same', '')"])
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "p")])
        assert verify_plan(plan, tmp_path / "w1").exit_code == 0
        run_sql(tgt_conn, f"USE `{db}`", "UPDATE p SET a = '' WHERE id = 1", "UPDATE p SET a = 'NULL' WHERE id = 2",
                "UPDATE p SET a = NULL WHERE id = 3", "UPDATE p SET a = 'a', b = 'b,c' WHERE id = 4",
                "UPDATE p SET a = NULL, b = 'N' WHERE id = 5")
        report = verify_plan(plan, tmp_path / "w2")
        assert report.exit_code == 1
        assert diff_keys(report, "changed") == {(1,), (2,), (3,), (4,), (5,)}
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


@pytest.mark.parametrize("src_rows,tgt_rows", [
    (["('x')", "('y')", "('y')"], ["('x')", "('z')", "('z')"]),  # BIT_XOR of both is x: a sum is not fooled
    (["('x')"], ["('x')", "('x')"]),  # a duplicated row
    (["('x')", "('x')"], ["('y')", "('y')"]),
])
def test_duplicate_rows_in_keyless_table(src_rows, tgt_rows, source, target, src_conn, tgt_conn, unique_db, tmp_path):
    db = unique_db("dups")
    try:
        for conn, rows in ((src_conn, src_rows), (tgt_conn, tgt_rows)):
            run_sql(conn, f"CREATE DATABASE `{db}`", f"USE `{db}`", "CREATE TABLE k (v VARCHAR(5))",
                    f"INSERT INTO k VALUES {', '.join(rows)}")
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "k")])
        report = verify_plan(plan, tmp_path / "w")
        assert report.exit_code == 1
        assert report.tables[0].status == "different"
        assert any("no primary or unique key" in n for n in report.tables[0].notes)
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


# ---------------------------------------------------------------- pure logic


def test_row_text_is_unambiguous():
    cols = [SideColumn("a", "text"), SideColumn("b", "text")]
    sql = row_text_sql(cols)
    assert "LENGTH(" in sql and "'N'" in sql  # length prefix + NULL marker, not CONCAT_WS
    assert field_sql("n", "exact") == "COALESCE(CAST(`n` AS CHAR), 'N'), '|'"


def test_normalize_json():
    assert normalize_json('{"b":1, "a":[1,2.50]}') == normalize_json('{"a": [1, 2.5], "b": 1}')
    assert normalize_json('{"a":1}') != normalize_json('{"a":"1"}')
    assert normalize_json(None) is None and normalize_json("null") == "null"
