"""`migrator copy` killed with SIGKILL anywhere resumes with no row lost or duplicated; a changed
plan or altered source table is refused; --restart starts over; `status` reads the work dir."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from migrator.copy.state import CopyState
from migrator.db import connect, quote_ident
from migrator.plan.model import load_plan
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import REPO, assert_same_rows, execute, make_plan, run_cli, table_plan, write_plan

ROWS = 2000


@pytest.fixture
def wallet(source, target, unique_db, tmp_path):
    """A 2,000-row wallet table in 3 chunks plus a small second table; yields (plan_path, plan)."""
    db, tdb = unique_db("ws"), unique_db("wt")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE tx (id BIGINT PRIMARY KEY, amount DECIMAL(18,2), note VARCHAR(40)) DEFAULT CHARSET=utf8mb4",
            f"INSERT INTO tx SELECT seq, seq * 1.25, CONCAT('n', seq, ' \U0001F4B0') FROM seq_1_to_{ROWS}",
            "CREATE TABLE small (k VARCHAR(10) PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4",
            "INSERT INTO small SELECT CONCAT('k', seq), seq FROM seq_1_to_50")
    conn = connect(source, "source")
    tables = [table_plan(conn, source.label, db, "tx", tdb, boundaries=[[700], [1400]]),
              table_plan(conn, source.label, db, "small", tdb)]
    conn.close()
    for chunk, rows in zip(tables[0].chunks, (700, 700, 600)):
        chunk.estimated_rows = rows  # without --page-rows, chunks this small are read whole
    plan = make_plan([source], target, tables)
    path = write_plan(plan, tmp_path / "plan.yaml")
    yield path, plan
    drop_databases(source, "source", [db])
    drop_databases(target, "target", [tdb])


def _copy_args(path, tmp_path, *extra):
    return ("copy", str(path), "--workdir", str(tmp_path / "work"), "--page-rows", "150", *extra)


def _journal_rows(tmp_path, plan) -> dict[str, int]:
    state = CopyState.load(WorkDir(tmp_path / "work"), plan)
    return {p.table_id: p.rows for p in state.progress()}


@pytest.mark.parametrize("point", ["page_read:4", "before_commit:3", "after_commit:5", "after_journal:2",
                                   "after_commit:12", "whole:after_commit:2", "whole:before_commit:3"])
def test_kill_at_named_point_then_resume(wallet, source, target, tmp_path, point):
    path, plan = wallet
    whole = point.startswith("whole:")  # chunks read in one aggregated query instead of pages
    args = ("copy", str(path), "--workdir", str(tmp_path / "work")) if whole else _copy_args(path, tmp_path)
    killed = run_cli(*args, env={"MIGRATOR_COPY_FAULT": point.removeprefix("whole:")})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = CopyState.load(WorkDir(tmp_path / "work"), plan)
    assert state.start_position(source.label) is not None  # recorded before the first chunk
    assert state.incomplete_tables()  # the kill left work to do
    done = run_cli(*_copy_args(path, tmp_path))
    assert done.returncode == 0, done.stderr
    for tp in plan.tables:
        assert_same_rows(source, target, tp)
    # the checkpoint counts every row exactly once
    assert _journal_rows(tmp_path, plan) == {plan.tables[0].id: ROWS, plan.tables[1].id: 50}
    state = CopyState.load(WorkDir(tmp_path / "work"), plan)
    assert state.incomplete_tables() == [] and state.end_position(source.label) is not None


def test_kill_at_random_instants_then_resume(wallet, source, target, tmp_path):
    path, plan = wallet
    rng = random.Random(7)
    interrupted = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", *_copy_args(path, tmp_path, "--parallel", "2")],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "MIGRATOR_COPY_FAULT": "page_read:*:0.3"})
        time.sleep(rng.uniform(0.7, 1.3))  # every page read pauses 0.3 s: ~3 s of copying in all
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted += bool(CopyState.load(WorkDir(tmp_path / "work"), plan).incomplete_tables())
    assert interrupted >= 2  # the kills landed mid-copy
    done = run_cli(*_copy_args(path, tmp_path))
    assert done.returncode == 0, done.stderr
    for tp in plan.tables:
        assert_same_rows(source, target, tp)
    assert _journal_rows(tmp_path, plan)[plan.tables[0].id] == ROWS


def test_changed_plan_and_altered_table_are_refused(wallet, source, target, tmp_path):
    path, plan = wallet
    killed = run_cli(*_copy_args(path, tmp_path), env={"MIGRATOR_COPY_FAULT": "after_journal:2"})
    assert killed.returncode == -signal.SIGKILL

    changed = load_plan(path)
    changed.tables[0].chunks[0].upper = [600]
    changed.tables[1].chunks = []
    other = write_plan(changed, tmp_path / "other.yaml")
    refused = run_cli("copy", str(other), "--workdir", str(tmp_path / "work"))
    assert refused.returncode == 3, refused.stderr
    assert "different plan" in refused.stderr and "--restart" in refused.stderr

    tp = plan.tables[0]
    execute(source, "source", f"ALTER TABLE {quote_ident(tp.database)}.tx MODIFY note VARCHAR(80)")
    altered = run_cli(*_copy_args(path, tmp_path))
    assert altered.returncode == 3, altered.stderr
    assert "note" in altered.stderr and "varchar(40)" in altered.stderr and "varchar(80)" in altered.stderr


def test_restart_and_status(wallet, source, target, tmp_path):
    path, plan = wallet
    killed = run_cli(*_copy_args(path, tmp_path), env={"MIGRATOR_COPY_FAULT": "after_journal:3"})
    assert killed.returncode == -signal.SIGKILL
    st = run_cli("status", str(path), "--workdir", str(tmp_path / "work"), "--json")
    assert st.returncode == 0, st.stderr
    doc = json.loads(st.stdout)
    by_id = {t["table_id"]: t for t in doc["tables"]}
    assert sum(t["rows"] for t in doc["tables"]) == 450  # 3 pages of 150 journaled
    assert not all(t["complete"] for t in by_id.values())
    (src,) = [s for s in doc["sources"] if s["source"] == source.label]
    assert src["copy"]["start"].startswith("binlog.")
    human = run_cli("status", str(path), "--workdir", str(tmp_path / "work"), "--tables")
    assert human.returncode == 0 and "tx" in human.stdout

    start_before = CopyState.load(WorkDir(tmp_path / "work"), plan).start_position(source.label)
    tdb = quote_ident(plan.tables[0].target_database)
    execute(target, "target", f"DELETE FROM {tdb}.tx WHERE id = 1",
            f"INSERT INTO {tdb}.tx VALUES (999999, 1, 'stale')")  # a row the source no longer has
    again = run_cli(*_copy_args(path, tmp_path, "--restart", "--yes"))
    assert again.returncode == 0, again.stderr
    assert_same_rows(source, target, plan.tables[0])  # row 1 copied again, the stale row gone
    state = CopyState.load(WorkDir(tmp_path / "work"), plan)
    assert state.start_position(source.label).at > start_before.at
    assert _journal_rows(tmp_path, plan)[plan.tables[0].id] == ROWS


def test_keyless_copy_only_table_replaces_on_rerun(source, target, unique_db, tmp_path):
    db, tdb = unique_db("nk"), unique_db("nkt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE logs (at INT, msg VARCHAR(20))",
                "INSERT INTO logs SELECT seq MOD 7, CONCAT('m', seq MOD 5) FROM seq_1_to_3000")  # duplicates
        conn = connect(source, "source")
        tp = table_plan(conn, source.label, db, "logs", tdb, mode="copy-only")
        conn.close()
        assert tp.key == []
        path = write_plan(make_plan([source], target, [tp]), tmp_path / "plan.yaml")
        killed = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"),
                         env={"MIGRATOR_COPY_FAULT": "after_commit:1"})  # committed, not journaled
        assert killed.returncode == -signal.SIGKILL
        done = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"))
        assert done.returncode == 0, done.stderr
        assert assert_same_rows(source, target, tp) == 3000  # duplicates kept, none added by the rerun
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])
