"""Review regressions for the copy stage (real servers)."""

from __future__ import annotations

from migrator.copy.runner import CopyOptions, run_copy
from migrator.db import connect, quote_ident
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, make_plan, table_plan


def test_enum_key_paging_skips_no_row(source, target, unique_db, tmp_path):
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
                                                                  min_page_rows=2, max_page_rows=2))
        assert assert_same_rows(source, target, tp) == 7
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])

