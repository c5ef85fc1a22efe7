"""Values survive `migrator copy` exactly: every MySQL type, its extremes, charsets (real servers)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.copy.runner import CopyOptions, run_copy
from migrator.copy.state import CopyState
from migrator.db import connect, quote_ident
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, make_plan, table_plan

CORPUS_DDL = """CREATE TABLE {t} (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  i8 TINYINT, u8 TINYINT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d10 DECIMAL(10,2) UNSIGNED,
  f FLOAT, d DOUBLE,
  b1 BIT(1), b64 BIT(64),
  bin BINARY(4), vb VARBINARY(64), bl BLOB,
  dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
  js JSON, en ENUM('a','b','c d'), st SET('x','y','z'),
  v VARCHAR(100), tx TEXT, ch CHAR(5)
) DEFAULT CHARSET=utf8mb4"""

CORPUS_ROWS = [
    "(1, -128, 255, -9223372036854775808, 18446744073709551615, "
    "'-99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99, "
    "3.4028234e38, 1.7976931348623157e308, b'1', b'1111111111111111111111111111111111111111111111111111111111111111', "
    "x'00000000', x'00ff00', x'00', '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', "
    "'-838:59:59.000000', 1901, '{\"a\": [1, 2.5, null, \"\\\\u00e9\"]}', 'c d', 'x,z', "
    "'emoji \U0001F600 \U0001F4B8 中文', 'quote '' backslash \\\\ nul \\0 ctrl-z \\Z', 'ab')",
    "(18446744073709551615, 127, 0, 9223372036854775807, 0, "
    "'99999999999999999999999999999999999.999999999999999999999999999999', 0.01, "
    "-1.1754944e-38, 4.9e-324, b'0', b'0', x'ffffffff', '', '', '9999-12-31', '9999-12-31 23:59:59.999999', "
    "'2038-01-19 03:14:07.999999', '838:59:59.000000', 2155, '[]', 'a', '', '', '', '')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, 1, -1, 1, '0.000000000000000000000000000001', 1.5, 0.1, 0.1, b'1', b'101', "
    "x'5c27', x'27', x'5c', '2024-02-29', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56.123456', "
    "'-00:00:00.000001', 0, '{\"k\": \"v\"}', 'b', 'x,y,z', 'tab\\tnewline\\n', 'ünïcödé', 'x')",
    "(4, 1, 2, 3, 4, '1e-30', 2, 1.0000001, 1.0000000000000002, b'0', b'10', x'00010203', x'', x'', "
    "'2000-01-01', '2000-01-01 00:00:00', '2000-01-01 00:00:00', '00:00:00', 2000, 'null', 'a', 'y', "
    "'𝔘𝔫𝔦𝔠𝔬𝔡𝔢', REPEAT('ab', 5000), 'a  ')",
]


def _copy(source, target, tables, tmp_path, **opts):
    plan = make_plan([source], target, tables)
    wd = WorkDir(tmp_path / "work")
    run_copy(plan, wd, CopyOptions(**opts))
    return plan, wd


@pytest.mark.parametrize("whole_chunks,aggregated_pages,page_rows", [(True, True, 0), (False, True, 2), (False, False, 0)],
                         ids=["whole-chunk", "aggregated-pages", "row-pages"])
def test_value_corpus_round_trips_exactly(source, target, unique_db, tmp_path, whole_chunks, aggregated_pages,
                                          page_rows):
    db, tdb = unique_db("vals"), unique_db("valt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
                CORPUS_DDL.format(t=f"{quote_ident(db)}.corpus"),
                f"INSERT INTO {quote_ident(db)}.corpus VALUES " + ",".join(CORPUS_ROWS))
        conn = connect(source, "source")
        tp = table_plan(conn, source.label, db, "corpus", tdb)
        conn.close()
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        sizing = dict(initial_page_rows=page_rows, min_page_rows=page_rows, max_page_rows=page_rows) if page_rows else {}
        plan, wd = _copy(source, target, [tp], tmp_path, whole_chunks=whole_chunks, aggregated_pages=aggregated_pages,
                         **sizing)
        assert assert_same_rows(source, target, tp) == len(CORPUS_ROWS)
        state = CopyState.load(wd, plan)
        assert state.table_complete(tp.id) and state.incomplete_tables() == []
        assert state.start_position(source.label) is not None and state.end_position(source.label) is not None
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


def test_zero_dates_and_latin1_text_into_utf8mb4(source, target, unique_db, tmp_path):
    db, tdb = unique_db("l1s"), unique_db("l1t")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "SET SESSION sql_mode=''",
                "CREATE TABLE l1 (id INT PRIMARY KEY, name VARCHAR(40) CHARACTER SET latin1, "
                "note TEXT CHARACTER SET latin1, d DATE, dt DATETIME) DEFAULT CHARSET=latin1",
                "INSERT INTO l1 VALUES (1, 'Café crème', 'naïve façade ¿¡ £ © ÿ', '0000-00-00', '0000-00-00 00:00:00'),"
                "(2, 'Ärger', NULL, '2020-00-15', '2020-01-00 10:00:00')")
        conn = connect(source, "source")
        ddl = ("CREATE TABLE l1 (id INT PRIMARY KEY, name VARCHAR(40), note TEXT, d DATE, dt DATETIME) "
               "DEFAULT CHARSET=utf8mb4")
        tp = table_plan(conn, source.label, db, "l1", tdb, target_ddl=ddl)
        conn.close()
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        _copy(source, target, [tp], tmp_path)  # target table created from target_ddl
        assert assert_same_rows(source, target, tp) == 2
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_row = st.tuples(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), places=10, allow_nan=False),
    st.binary(max_size=20),
    _text,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_row, min_size=1, max_size=25))
def test_generated_values_round_trip(source, target, unique_db, tmp_path_factory, rows):
    db, tdb = unique_db("hs"), unique_db("ht")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
                f"CREATE TABLE {quote_ident(db)}.h (id INT PRIMARY KEY, i BIGINT, d DOUBLE, f FLOAT, "
                "m DECIMAL(31,10), b VARBINARY(20), t VARCHAR(30)) DEFAULT CHARSET=utf8mb4")
        conn = connect(source, "source")
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {quote_ident(db)}.h VALUES (%s,%s,%s,%s,%s,%s,%s)",
                            [(n, *r) for n, r in enumerate(rows)])
        tp = table_plan(conn, source.label, db, "h", tdb)
        conn.close()
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        _copy(source, target, [tp], tmp_path_factory.mktemp("hyp"))
        assert assert_same_rows(source, target, tp) == len(rows)
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


@pytest.mark.parametrize("kind", ["composite", "unique"])
def test_composite_and_unique_key_tables_in_chunks(source, target, unique_db, tmp_path, kind):
    db, tdb = unique_db("ks"), unique_db("kt")
    try:
        if kind == "composite":
            ddl = "CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b))"
            bounds = [[3, "m"], [7, "c"]]
        else:
            ddl = "CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, UNIQUE KEY uk (a, b))"
            bounds = [[5, "a"]]
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                ddl + " DEFAULT CHARSET=utf8mb4",
                "INSERT INTO k SELECT s.seq DIV 26, CHAR(97 + s.seq MOD 26), s.seq FROM seq_0_to_299 s")
        conn = connect(source, "source")
        tp = table_plan(conn, source.label, db, "k", tdb, boundaries=bounds)
        conn.close()
        assert tp.key == ["a", "b"] and tp.key_kind == ("primary" if kind == "composite" else "unique")
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        # tiny pages force many keyset pages inside every chunk
        plan, wd = _copy(source, target, [tp], tmp_path, initial_page_rows=7, min_page_rows=7, max_page_rows=7)
        assert assert_same_rows(source, target, tp) == 300
        state = CopyState.load(wd, plan)
        prog = state.table_progress(tp.id)
        assert (prog.rows, prog.chunks_done, prog.chunks_total) == (300, len(bounds) + 1, len(bounds) + 1)
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])
