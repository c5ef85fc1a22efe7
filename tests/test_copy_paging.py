"""Keyset paging over awkward keys (ENUM, FLOAT, BIT), and the fallback to row pages when an
aggregated read is cut (real servers)."""

from __future__ import annotations

import pytest

from migrator.copy.runner import CopyOptions, run_copy
from migrator.db import connect, quote_ident
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, make_plan, table_plan


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated-pages", "row-pages"])
def test_enum_key_paging_skips_no_row(source, target, unique_db, tmp_path, aggregated):
    """ENUM keys ORDER BY their index but compare with a string as text: keyset pages over
    ENUM('b','a') read 'b' then asked for key > 'b', which 'a' is not: rows were lost."""
    db, tdb = unique_db("enk"), unique_db("enkt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
                f"CREATE TABLE {quote_ident(db)}.e (kind ENUM('zeta','alpha','mid') NOT NULL, id INT NOT NULL, "
                "v VARCHAR(10), PRIMARY KEY (kind, id)) DEFAULT CHARSET=utf8mb4",
                f"INSERT INTO {quote_ident(db)}.e VALUES ('zeta',1,'a'),('zeta',2,'b'),('alpha',1,'c'),"
                "('alpha',2,'d'),('mid',1,'e'),('mid',2,'f'),('mid',3,'g')")
        conn = connect(source, "source")
        tp = table_plan(conn, source.label, db, "e", tdb)
        conn.close()
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        plan = make_plan([source], target, [tp])
        run_copy(plan, WorkDir(tmp_path / "work"), CopyOptions(whole_chunks=False, initial_page_rows=2,
                                                                  min_page_rows=2, max_page_rows=2,
                                                                  aggregated_pages=aggregated))
        assert assert_same_rows(source, target, tp) == 7
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])



def _copy_in_pages(source, target, db, tdb, table, tmp_path, rows_per_page, aggregated=True):
    conn = connect(source, "source")
    tp = table_plan(conn, source.label, db, table, tdb)
    conn.close()
    execute(target, "target", f"CREATE DATABASE IF NOT EXISTS {quote_ident(tdb)}")
    plan = make_plan([source], target, [tp])
    run_copy(plan, WorkDir(tmp_path / table), CopyOptions(
        whole_chunks=False, initial_page_rows=rows_per_page, min_page_rows=rows_per_page, max_page_rows=rows_per_page,
        aggregated_pages=aggregated))
    return tp


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated-pages", "row-pages"])
def test_float_and_bit_key_paging_skips_no_row(source, target, unique_db, tmp_path, aggregated):
    """FLOAT prints 6 digits (1.234567 and 1.234569 both read back as 1.23457), so a page ending at
    one asked for key > 1.23457 and skipped the rest; BIT keys read back as bytes."""
    db, tdb = unique_db("flk"), unique_db("flkt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
                f"CREATE TABLE {quote_ident(db)}.f (k FLOAT NOT NULL PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4",
                f"INSERT INTO {quote_ident(db)}.f VALUES (1.234567,1),(1.234568,2),(1.234569,3),(1.25,4),"
                "(-0.5,5),(3e30,6)",
                f"CREATE TABLE {quote_ident(db)}.b (k BIT(12) NOT NULL PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4",
                f"INSERT INTO {quote_ident(db)}.b VALUES (0,1),(1,2),(2,3),(255,4),(256,5),(4095,6)")
        for table in ("f", "b"):
            tp = _copy_in_pages(source, target, db, tdb, table, tmp_path, 1, aggregated)
            assert assert_same_rows(source, target, tp) == 6
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


def test_group_concat_cut_in_the_last_row_falls_back_to_pages(mariadb_factory, target, unique_db, tmp_path):
    """group_concat_max_len (= max_allowed_packet, 1M here) cutting the chunk's LAST row leaves as
    many parts as rows: the count check alone cannot see it; the cut row must not reach the target."""
    ep = mariadb_factory(options={"max-allowed-packet": "1M"}, name="smallpkt")
    db, tdb = unique_db("gc"), unique_db("gct")
    try:
        execute(ep, "source", f"CREATE DATABASE {quote_ident(db)}",
                f"CREATE TABLE {quote_ident(db)}.g (id INT PRIMARY KEY, s LONGTEXT) DEFAULT CHARSET=utf8mb4",
                f"INSERT INTO {quote_ident(db)}.g VALUES (1, REPEAT('a', 400000)), (2, REPEAT('b', 400000)), "
                "(3, REPEAT('c', 400000))")
        conn = connect(ep, "source")
        tp = table_plan(conn, ep.label, db, "g", tdb)
        conn.close()
        tp.estimated_rows, tp.estimated_bytes = 3, 1_200_000  # read whole: one GROUP_CONCAT
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}")
        plan = make_plan([ep], target, [tp])
        run_copy(plan, WorkDir(tmp_path / "work"), CopyOptions())
        assert assert_same_rows(ep, target, tp) == 3
    finally:
        drop_databases(ep, "source", [db])
        drop_databases(target, "target", [tdb])
