"""The copy journal is compacted when a copy run starts: one record per chunk replaces the page
history, the CopyState and `migrator status` read the same before and after, and a kill -9 in the
middle of compaction leaves a copy that resumes to identical rows."""

from __future__ import annotations

import json
import signal

import pytest

from migrator.copy.state import CopyState, compact_journal
from migrator.db import connect, quote_ident
from migrator.state import Journal
from migrator.workdir import WorkDir

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, make_plan, run_cli, table_plan, write_plan

ROWS = 400


@pytest.fixture
def ledger(source, target, unique_db, tmp_path):
    """A 400-row ledger in 2 chunks and a 30-row side table copied first; yields (plan_path, plan, workdir).
    With 10-row pages the journal holds 4 records for `side`, 21 per ledger chunk."""
    db, tdb = unique_db("js"), unique_db("jt")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount DECIMAL(18,2), memo VARCHAR(30)) DEFAULT CHARSET=utf8mb4",
            f"INSERT INTO ledger SELECT seq, seq * 0.25, CONCAT('m', seq) FROM seq_1_to_{ROWS}",
            "CREATE TABLE side (k VARCHAR(8) PRIMARY KEY, v INT) DEFAULT CHARSET=utf8mb4",
            "INSERT INTO side SELECT CONCAT('k', seq), seq FROM seq_1_to_30")
    conn = connect(source, "source")
    tables = [table_plan(conn, source.label, db, "ledger", tdb, boundaries=[[200]]),
              table_plan(conn, source.label, db, "side", tdb)]
    conn.close()
    tables[1].estimated_rows = 1000  # copied first (biggest first): finished before the ledger
    plan = make_plan([source], target, tables)
    yield write_plan(plan, tmp_path / "plan.yaml"), plan, WorkDir(tmp_path / "work")
    drop_databases(source, "source", [db])
    drop_databases(target, "target", [tdb])


def _copy(path, wd, fault=None):
    env = {"MIGRATOR_COPY_FAULT": fault} if fault else None
    return run_cli("copy", str(path), "--workdir", str(wd.root), "--page-rows", "10", "--parallel", "1", env=env)


def _status(path, wd) -> dict:
    out = run_cli("status", str(path), "--workdir", str(wd.root), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    return {"tables": doc["tables"], "copy": [s["copy"] for s in doc["sources"]]}


def _figures(state: CopyState) -> tuple:
    """What a user relies on: per-chunk rows, bytes, resume key and done flag; per-table progress."""
    return ({k: (c.rows, c.bytes, c.after, c.done) for k, c in state.chunks.items()}, state.progress(),
            state.positions)


def _interrupted(path, wd, plan) -> CopyState:
    """A run killed after 30 journaled pages (and 2 closing records of finished chunks): `side` done,
    ledger chunk 0 done, chunk 1 copied up to id 270."""
    assert _copy(path, wd, "after_journal:30").returncode == -signal.SIGKILL
    state = CopyState.load(wd, plan)
    assert state.journal_records == 32 and state.incomplete_tables() == [plan.tables[0].id]
    assert state.chunk(plan.tables[0].id, 1).after == [270]
    return state


def test_compaction_keeps_state_and_status_and_shrinks_the_file(ledger, source, target):
    path, plan, wd = ledger
    before = _interrupted(path, wd, plan)
    status_before, size_before = _status(path, wd), wd.copy_journal.stat().st_size
    # A copy killed just after it compacted (its first page read comes after compaction).
    assert _copy(path, wd, "page_read:1").returncode == -signal.SIGKILL
    after = CopyState.load(wd, plan)
    assert _figures(after) == _figures(before) and after == before
    assert after.journal_records == len(after.chunks) < before.journal_records
    assert wd.copy_journal.stat().st_size < size_before / 5
    assert _status(path, wd) == status_before
    wd.lock("test")
    try:
        assert compact_journal(wd, after) is None  # already minimal: not rewritten
    finally:
        wd.unlock()

    done = _copy(path, wd)
    assert done.returncode == 0, done.stderr
    assert [assert_same_rows(source, target, tp) for tp in plan.tables] == [ROWS, 30]
    assert [p.rows for p in CopyState.load(wd, plan).progress()] == [ROWS, 30]


def test_kill_during_compaction_leaves_a_resumable_copy(ledger, source, target, tmp_path):
    path, plan, wd = ledger
    before = _interrupted(path, wd, plan)
    old_journal = wd.copy_journal.read_bytes()
    # Killed with the compacted journal written and fsynced, before the rename.
    assert _copy(path, wd, "compact_written:1").returncode == -signal.SIGKILL
    assert wd.copy_journal.read_bytes() == old_journal  # the old journal, untouched
    leftovers = list(wd.copy_journal.parent.glob(".journal.jsonl.compact.*"))
    assert len(leftovers) == 1
    assert [json.loads(line) for line in leftovers[0].read_bytes().splitlines()] == before.compacted_records()
    assert _figures(CopyState.load(wd, plan)) == _figures(before)

    done = _copy(path, wd)
    assert done.returncode == 0, done.stderr
    assert not list(wd.copy_journal.parent.glob(".journal.jsonl.compact.*"))  # the next run cleaned up
    assert [assert_same_rows(source, target, tp) for tp in plan.tables] == [ROWS, 30]
    assert [p.rows for p in CopyState.load(wd, plan).progress()] == [ROWS, 30]


def test_errors_of_finished_tables_and_torn_lines_are_dropped(ledger, source, target):
    path, plan, wd = ledger
    ledger_id, side_id = plan.tables[0].id, plan.tables[1].id
    _interrupted(path, wd, plan)
    journal = Journal(wd.copy_journal)
    journal.append_many([{"t": ledger_id, "error": "target error: earlier failure"},
                         {"t": side_id, "error": "source error: earlier failure"}])
    journal.close()
    with open(wd.copy_journal, "ab") as fh:
        fh.write(b'{"t": "torn')  # a kill in the middle of an append
    before = CopyState.load(wd, plan)
    assert before.table_complete(side_id) and not before.table_complete(ledger_id)
    wd.lock("test")
    try:
        assert compact_journal(wd, before) is not None
    finally:
        wd.unlock()
    after = CopyState.load(wd, plan)
    assert _figures(after) == _figures(before)
    assert after.errors == {ledger_id: "target error: earlier failure"}  # still relevant: shown by status
    assert after.table_progress(ledger_id).error == "target error: earlier failure"
    assert wd.copy_journal.read_bytes().endswith(b"\n")
