"""Failures a DBA must see plainly: a row the target rejects (named by its key), a source that
vanishes mid-copy (clear error, non-zero exit, resumable); and shard merge with generated columns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.copy.runner import CopyOptions, run_copy
from migrator.copy.state import CopyState
from migrator.db import connect, query, quote_ident
from migrator.errors import TargetError
from migrator.sandbox import start_mariadb, stop_pid
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import REPO, assert_same_rows, execute, make_plan, run_cli, table_plan, write_plan


def test_rejected_row_names_its_key_and_other_tables_finish(source, target, unique_db, tmp_path):
    db, tdb = unique_db("rs"), unique_db("rt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE r (id INT PRIMARY KEY, name VARCHAR(20)) DEFAULT CHARSET=utf8mb4",
                "INSERT INTO r SELECT seq, CONCAT('n', seq MOD 100) FROM seq_1_to_500",
                "UPDATE r SET name = 'much too long' WHERE id = 137",
                "CREATE TABLE ok (id INT PRIMARY KEY, v INT)",
                "INSERT INTO ok SELECT seq, seq FROM seq_1_to_300")
        conn = connect(source, "source")
        narrow = "CREATE TABLE r (id INT PRIMARY KEY, name VARCHAR(5)) DEFAULT CHARSET=utf8mb4"
        tables = [table_plan(conn, source.label, db, "r", tdb, target_ddl=narrow),
                  table_plan(conn, source.label, db, "ok", tdb)]
        conn.close()
        plan = make_plan([source], target, tables)
        wd = WorkDir(tmp_path / "work")
        with pytest.raises(TargetError) as err:
            run_copy(plan, wd, CopyOptions(initial_page_rows=400))
        msg = str(err.value)
        assert "id=137" in msg and "1406" in msg and f"{db}.r" in msg and f"{tdb}.r" in msg
        state = CopyState.load(wd, plan)
        assert state.table_complete(tables[1].id) and not state.table_complete(tables[0].id)
        assert "id=137" in state.table_progress(tables[0].id).error
        assert_same_rows(source, target, tables[1])

        execute(target, "target", f"ALTER TABLE {quote_ident(tdb)}.r MODIFY name VARCHAR(20)")
        run_copy(plan, wd, CopyOptions())
        assert assert_same_rows(source, target, tables[0]) == 500
        assert CopyState.load(wd, plan).incomplete_tables() == []
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


def test_source_vanishing_mid_copy_fails_clearly_and_resumes(source, target, mariadb_factory, unique_db, tmp_path):
    gone = mariadb_factory(name="vanish")
    db, tdb, db2 = unique_db("vs"), unique_db("vt"), unique_db("vo")
    restarted = None
    try:
        execute(gone, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
                "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000")
        execute(source, "source", f"CREATE DATABASE {quote_ident(db2)}", f"USE {quote_ident(db2)}",
                "CREATE TABLE other (id INT PRIMARY KEY, v INT)",
                "INSERT INTO other SELECT seq, seq FROM seq_1_to_400")
        gconn = connect(gone, "source")
        datadir, server_id = query(gconn, "SELECT @@datadir, @@server_id")[0]
        tp = table_plan(gconn, gone.label, db, "t", tdb, boundaries=[[1500]])
        gconn.close()
        sconn = connect(source, "source")
        other = table_plan(sconn, source.label, db2, "other", tdb)
        sconn.close()
        plan = make_plan([gone, source], target, [tp, other])
        path = write_plan(plan, tmp_path / "plan.yaml")
        args = [sys.executable, "-m", "migrator.cli", "copy", str(path), "--workdir", str(tmp_path / "work"),
                "--page-rows", "100", "--retries", "2"]
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "MIGRATOR_COPY_FAULT": "page_read:*:0.15"})
        deadline = time.monotonic() + 60  # wait for real progress on the doomed source, however slow the machine
        while time.monotonic() < deadline and proc.poll() is None:
            if CopyState.load(WorkDir(tmp_path / "work"), plan).table_progress(tp.id).rows > 0:
                break
            time.sleep(0.1)
        execute(gone, "source", "SHUTDOWN")  # the server goes away mid-copy
        out, errtext = proc.communicate(timeout=90)
        assert proc.returncode == 4, errtext
        assert "vanish" in errtext and f"{db}.t" in errtext and ("cannot connect" in errtext or "lost" in errtext)
        assert "Traceback" not in errtext
        state = CopyState.load(WorkDir(tmp_path / "work"), plan)
        assert state.table_complete(other.id)  # the other source carried on
        assert not state.table_complete(tp.id) and state.table_progress(tp.id).rows > 0

        for _ in range(100):  # wait for the old server to exit, then bring it back
            try:
                execute(gone, "source", "SELECT 1")
            except Exception:  # noqa: BLE001 - down is what we wait for
                break
            time.sleep(0.1)
        restarted = start_mariadb(Path(datadir).parent, gone.port, server_id=int(server_id))
        done = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"))
        assert done.returncode == 0, done.stderr
        assert assert_same_rows(gone, target, tp) == 3000
        assert CopyState.load(WorkDir(tmp_path / "work"), plan).table_progress(tp.id).rows == 3000
    finally:
        if restarted is not None:
            stop_pid(restarted.pid)
        drop_databases(source, "source", [db2])
        drop_databases(target, "target", [tdb])


def test_shard_merge_fills_source_column_and_skips_generated(source, source2, target, unique_db, tmp_path):
    db, tdb = unique_db("sh"), unique_db("st")
    ddl = ("CREATE TABLE w (id INT PRIMARY KEY, amount DECIMAL(10,2), doubled DECIMAL(11,2) "
           "AS (amount * 2) VIRTUAL) DEFAULT CHARSET=utf8mb4")
    try:
        for ep, n in ((source, 30), (source2, 20)):
            execute(ep, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}", ddl,
                    f"INSERT INTO w (id, amount) SELECT seq, seq / 4 FROM seq_1_to_{n}")
        merged = ("CREATE TABLE w (shard VARCHAR(64) NOT NULL, id INT NOT NULL, amount DECIMAL(10,2), "
                  "doubled DECIMAL(11,2) AS (amount * 2) VIRTUAL, PRIMARY KEY (shard, id)) DEFAULT CHARSET=utf8mb4")
        tables = []
        for ep in (source, source2):
            conn = connect(ep, "source")
            tables.append(table_plan(conn, ep.label, db, "w", tdb, target_ddl=merged, source_column="shard"))
            conn.close()
        assert any(c.generated for c in tables[0].columns)
        run_copy(make_plan([source, source2], target, tables), WorkDir(tmp_path / "work"), CopyOptions())
        conn = connect(target, "target")
        rows = query(conn, f"SELECT shard, COUNT(*), SUM(amount), SUM(doubled) FROM {quote_ident(tdb)}.w "
                           "GROUP BY shard ORDER BY shard")
        conn.close()
        assert [(r[0], r[1]) for r in rows] == [(f"{source.label}/{db}", 30), (f"{source2.label}/{db}", 20)]
        assert all(r[3] == 2 * r[2] for r in rows)
    finally:
        drop_databases(source, "source", [db])
        drop_databases(source2, "source", [db])
        drop_databases(target, "target", [tdb])
