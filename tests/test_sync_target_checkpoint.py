"""The sync checkpoint held in the target (migrator_state.sync_checkpoint), committed with the
batch it covers; the work directory's file is a view of it. Real servers, real kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sync_helpers import (
    ROOT,
    copy_done,
    make_plan,
    rows_of,
    run_cli,
    setup_tables,
    write_plan,
)
from test_sync_xa import rollback_leftovers, wait_for, xa, xid_for

from migrator.db import connect, qualified, query, quote_ident
from migrator.errors import StateError, TargetError
from migrator.positions import BinlogPosition
from migrator.state import atomic_write_json, read_json
from migrator.sync.contracts import Checkpoint
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.sync.targetstate import TABLE, TargetState, copy_start_key
from migrator.workdir import WorkDir

CHAIN = [("a", "CREATE TABLE {name} (id INT PRIMARY KEY)"),
         ("b", ("CREATE TABLE {name} (id INT PRIMARY KEY, a_id INT, KEY (a_id), "
               "FOREIGN KEY (a_id) REFERENCES {db}.a (id) ON DELETE CASCADE)")),
         ("c", ("CREATE TABLE {name} (id INT PRIMARY KEY, b_id INT, KEY (b_id), "
               "FOREIGN KEY (b_id) REFERENCES {db}.b (id) ON DELETE CASCADE)"))]
T = [("t", "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)")]


def setup_chain(source, target, db: str, tdb: str, tmp_path):
    """a <- b <- c (ON DELETE CASCADE) on both sides, planned one to one, marked copied while empty."""
    for ep, role, name in ((source, "source", db), (target, "target", tdb)):
        with connect(ep, role) as c:
            query(c, f"CREATE DATABASE {quote_ident(name)}")
            for table, ddl in CHAIN:
                query(c, ddl.format(name=qualified(name, table), db=quote_ident(name)))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in CHAIN])
    copy_done(wd, plan, source)
    return wd, plan


def held_checkpoint(target, wd, source: str) -> Checkpoint | None:
    """The checkpoint the target holds for this work directory's copy of `source`."""
    start = BinlogPosition.model_validate(read_json(wd.copy_position(source))["start"])
    with connect(target, "target") as t:
        rows = query(t, f"SELECT `checkpoint` FROM {TABLE} WHERE `source` = %s AND `copy_start` = %s",
                     (source, copy_start_key(start)))
    return Checkpoint.model_validate_json(rows[0][0]) if rows and rows[0][0] else None


def file_checkpoint(wd, source: str) -> Checkpoint:
    return Checkpoint.model_validate(read_json(wd.sync_checkpoint(source)))


def test_kill_9_between_a_cascading_batch_commit_and_the_file_resumes_from_the_target(source, target, unique_db,
                                                                                     tmp_path):
    """`INSERT grandchild; DELETE grandparent` (cascading to child and grandchild) committed on
    the target, then the whole `migrator sync` process group killed before the work directory's
    checkpoint moved. Replayed from the file, the cascade found no child any more and the
    replayed grandchild stayed (fuzz seed 302); the target's checkpoint, committed in that
    batch's transaction, is ahead, and the restart resumes from it: nothing replayed."""
    db = unique_db("tck")
    tdb = db + "_t"
    wd, plan = setup_chain(source, target, db, tdb, tmp_path)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO a VALUES (1)")
        query(c, "INSERT INTO b VALUES (10, 1)")
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    before = file_checkpoint(wd, source.name)
    with connect(source, "source", database=db, autocommit=False) as c:  # one transaction: one batch
        query(c, "INSERT INTO c VALUES (100, 10)")
        query(c, "DELETE FROM a WHERE id = 1")
        c.commit()
    # the source process stops (for 120 s) right after the batch committed, before the file is written
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIGRATOR_COPY_FAULT": "sync_batch_committed:1:120"}
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root)],
                            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_for("the cascading batch on the target", lambda: not rows_of(target, "target", tdb, "a"), timeout=120)
        time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # runner and source process at once
        proc.wait()
    held, saved = held_checkpoint(target, wd, source.name), file_checkpoint(wd, source.name)
    assert saved.position.key() == before.position.key()  # the file never saw the batch
    assert held is not None and held.position.key() > saved.position.key()
    assert held.rows["delete"] == saved.rows["delete"] + 1 and held.rows["insert"] == saved.rows["insert"] + 1

    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    for table in ("a", "b", "c"):
        assert rows_of(target, "target", tdb, table) == rows_of(source, "source", db, table) == []
    assert "is ahead of the work directory's" in res.stderr, res.stderr
    after = file_checkpoint(wd, source.name)
    assert after.position.key() >= held.position.key() and after.rows == held.rows  # counted once


def test_a_work_directory_without_a_checkpoint_resumes_from_the_target(source, target, unique_db, tmp_path):
    """Another machine (no sync/SRC.json) resumes where the target says, not at the copy's start."""
    db = unique_db("tcn")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(target, "target") as t:  # changed on the target only: a replay would bring it back
        query(t, f"DELETE FROM {qualified(tdb, 't')} WHERE id = 1")
    wd.sync_checkpoint(source.name).unlink()
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO t VALUES (3, 'three')")
    result = run_sync(plan, wd, SyncOptions(until_caught_up=True)).sources[source.name]
    assert rows_of(target, "target", tdb, "t", "id") == [(2,), (3,)]
    assert result.rows["insert"] == 3  # 2 counted before, in the target's checkpoint, + 1
    assert file_checkpoint(wd, source.name).position == held_checkpoint(target, wd, source.name).position


def test_a_checkpoint_of_another_server_is_refused(source, target, unique_db, tmp_path):
    db = unique_db("tcs")
    wd, plan = setup_tables(source, target, db, db + "_t", tmp_path, T)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO t VALUES (1, 'one')")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    raw = read_json(wd.sync_checkpoint(source.name))
    raw["position"]["server_id"] = 4242
    atomic_write_json(wd.sync_checkpoint(source.name), raw)
    with pytest.raises(StateError, match="server_id 4242, the one held in the target for server_id"):
        run_sync(plan, wd, SyncOptions(until_caught_up=True))


def test_a_checkpoint_of_an_earlier_copy_is_not_resumed(source, target, unique_db, tmp_path):
    """copy --restart records a new start position: the target's row of the earlier copy is not
    resumed (its position may be past changes the new copy needs replayed)."""
    db = unique_db("tcc")
    wd, plan = setup_tables(source, target, db, db + "_t", tmp_path, T)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO t VALUES (1, 'one')")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    first = held_checkpoint(target, wd, source.name)
    assert first is not None
    state = TargetState(plan.fingerprint(), source.name, wd.root)
    later = BinlogPosition.model_validate(read_json(wd.copy_position(source.name))["start"]).model_copy(
        update={"pos": 4})  # another copy's start
    with connect(target, "target") as t:
        assert state.claim(t, later) is None  # not resumed
        assert state.read(t).copy_start == copy_start_key(later) and state.read(t).checkpoint is None


def test_a_held_xa_keeps_the_target_checkpoint_behind(source, target, unique_db, tmp_path):
    """An undecided XA PREPARE holds the target's checkpoint at its group, as the file's."""
    db = unique_db("tcx")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    xa1, c = connect(source, "source"), connect(source, "source")
    try:
        xa(xa1, xid_for(db, "1"), f"INSERT INTO {qualified(db, 't')} VALUES (1, 'xa')", outcome=None)
        query(c, f"INSERT INTO {qualified(db, 't')} VALUES (2, 'plain')")
        run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=1))
        held, saved = held_checkpoint(target, wd, source.name), file_checkpoint(wd, source.name)
        assert rows_of(target, "target", tdb, "t", "id") == [(2,)]
        assert held.xa_prepared and held.position == saved.position
        assert f"{held.position.file}:{held.position.pos}" == next(iter(held.xa_prepared.values()))
        query(xa1, "XA COMMIT %s", (xid_for(db, "1"),))
        run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=1))
        moved = held_checkpoint(target, wd, source.name)
        assert not moved.xa_prepared and moved.position.key() > held.position.key()
        assert rows_of(target, "target", tdb, "t", "id") == [(1,), (2,)]
    finally:
        xa1.close()
        c.close()
        rollback_leftovers(source, xid_for(db, ""))


def test_the_target_user_needs_only_select_insert_update_on_migrator_state(source, target, unique_db, tmp_path):
    """Without grants on migrator_state sync stops naming what to grant; with SELECT, INSERT,
    UPDATE there (the table already exists) it syncs."""
    db = unique_db("tcp")
    tdb = db + "_t"
    user = db[-24:]
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    secret = tmp_path / "pw"
    secret.write_text("pw-" + user)
    with connect(target, "target") as t:
        TargetState.ensure(t)  # another sync created it before
        query(t, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'")
        query(t, f"GRANT ALL PRIVILEGES ON {quote_ident(tdb)}.* TO '{user}'@'%'")
    try:
        url = f"oceanbase://{user}@{target.host}:{target.port}?password_file={secret}"
        plan.target.url = url
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO t VALUES (1, 'one')")
        with pytest.raises(TargetError, match="migrator_state.sync_checkpoint: the target user needs CREATE there "
                                              "once, then SELECT, INSERT, UPDATE") as err:
            run_sync(plan, wd, SyncOptions(until_caught_up=True))
        assert "pw-" not in str(err.value)
        with connect(target, "target") as t:
            query(t, f"GRANT SELECT, INSERT, UPDATE ON migrator_state.* TO '{user}'@'%'")
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        assert rows_of(target, "target", tdb, "t", "id") == [(1,)]
        assert held_checkpoint(target, wd, source.name) is not None
    finally:
        with connect(target, "target") as t:
            query(t, f"DROP USER IF EXISTS '{user}'@'%'")


def test_sources_starting_together_on_a_target_without_the_state_table_all_claim(target, tmp_path):
    """Every source's sync creates migrator_state when it is missing, all at once. seekdb may not
    show a table just created by another session to a session whose own CREATE ... IF NOT EXISTS
    raced it (1146 for a moment; seen on a target idle for a minute, and in CI on the demo's fresh
    seekdb): every source must still start."""
    from concurrent.futures import ThreadPoolExecutor

    with connect(target, "target") as t:
        query(t, "DROP DATABASE IF EXISTS migrator_state")  # as on a target sync never ran against

    def claim(n: int) -> None:
        with connect(target, "target") as conn:
            conn.autocommit(True)
            TargetState("race", f"src{n}", tmp_path).claim(conn, None)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(claim, range(12)))  # raises the first error
    with connect(target, "target") as t:
        assert query(t, f"SELECT COUNT(*) FROM {TABLE} WHERE plan_id = 'race'")[0][0] == 12
