"""The orphan sweep at the copy's end position (migrator/sync/window.py, issue 14), on real
MariaDB -> seekdb: writes between the copy's start and end positions, chunks read after them,
sync replaying from the start. Each test ends with a row oracle: every table, both sides."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from plan_helpers import drop_dbs
from sync_helpers import (
    create_plain_both,
    ROOT,
    make_plan,
    mark_copied,
    naive_copy,
    record_copy_end,
    record_copy_start,
    rows_of,
    run_cli,
    write_plan,
)

from migrator.db import connect, query
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir

A = ("a", "CREATE TABLE a (id INT PRIMARY KEY)")
B = ("b", ("CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY (a_id), "
           "FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE ON UPDATE CASCADE)"))
C = ("c", ("CREATE TABLE c (id INT PRIMARY KEY, b_id INT, KEY (b_id), "
           "FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE ON UPDATE CASCADE)"))
D = ("d", ("CREATE TABLE d (id INT PRIMARY KEY, c_id INT, KEY (c_id), "
           "FOREIGN KEY (c_id) REFERENCES c (id) ON DELETE CASCADE)"))
C_V = ("c", ("CREATE TABLE c (id INT PRIMARY KEY, b_id INT, v VARCHAR(5), KEY (b_id), "
             "FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE)"))
C_NULL = ("c", ("CREATE TABLE c (id INT PRIMARY KEY, b_id INT NULL, KEY (b_id), "
                "FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE SET NULL)"))


@pytest.fixture
def window(source, target, unique_db, tmp_path):
    """window(ddls, before, during) -> (db, tdb, wd, plan): tables on both sides; `before` run on
    the source, the copy's start recorded, `during` run (one autocommit statement each: a
    `SET foreign_key_checks` holds for the rest of the list), every table read after that (the
    chunks), the copy's end recorded."""
    db, made = unique_db("win"), []

    def make(ddls, before, during):
        tdb = db + "_t"
        made.append(tdb)
        create_plain_both(source, target, db, tdb, ddls)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
        with connect(source, "source", database=db) as c:
            for sql in before:
                query(c, sql)
        record_copy_start(wd, source)
        with connect(source, "source", database=db) as c:
            for sql in during:
                query(c, sql)
        for t, _ in ddls:
            naive_copy(source, target, db, t, tdb, t)
        record_copy_end(wd, source)
        mark_copied(wd, plan)
        return db, tdb, wd, plan

    yield make
    drop_dbs(source, [db])
    drop_dbs(target, made, role="target")


def assert_same(source, target, db: str, tdb: str, tables) -> dict[str, list[tuple]]:
    out = {}
    for t, _ in tables:
        src, tgt = rows_of(source, "source", db, t), rows_of(target, "target", tdb, t)
        assert tgt == src, f"{t}: source {src}, target {tgt}"
        out[t] = src
    return out


def test_set_null_child_of_a_cascaded_row_written_in_the_window(source, target, window):
    """a -> b CASCADE, c -> b SET NULL: c written in the window, then a deleted (b cascaded, c's
    column nulled by InnoDB). The chunks hold c with NULL; the replay writes c(b_id=10) back and
    finds no b to cascade from: the sweep sets the column NULL. Failed before the sweep."""
    ddls = [A, B, C_NULL]
    db, tdb, wd, plan = window(ddls, ["INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (10, 1)"],
                               ["INSERT INTO c VALUES (100, 10)", "DELETE FROM a WHERE id = 1"])
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    rows = assert_same(source, target, db, tdb, ddls)
    assert rows["c"] == [(100, None)]


C_ZERO_DATE = ("c", ("CREATE TABLE c (k DATETIME(6) NOT NULL, n INT NOT NULL, b_id INT NULL, PRIMARY KEY (k, n), "
                     "KEY (b_id), FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE SET NULL)"))


def test_a_child_keyed_by_a_zero_date_written_in_the_window(source, target, window):
    """As above, with c keyed by a zero DATETIME(6) (legal in MariaDB): the binlog gives its text
    as '0000-00-00 00:00:00', the target '0000-00-00 00:00:00.000000'. The sweep looked the row
    read back up by that text and stopped sync with a KeyError (exit 70 at every restart; found
    by the fuzzer, seeds 917140 and 917145)."""
    ddls = [A, B, C_ZERO_DATE]
    db, tdb, wd, plan = window(ddls, ["INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (10, 1)"],
                               ["INSERT INTO c VALUES ('0000-00-00 00:00:00', 1, 10)",
                                "INSERT INTO c VALUES ('2024-05-00 10:00:00.250000', 2, 10)",
                                "DELETE FROM a WHERE id = 1"])
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    rows = assert_same(source, target, db, tdb, ddls)
    assert [(n, b_id) for _, n, b_id in rows["c"]] == [(1, None), (2, None)]


def test_three_levels_written_in_the_window_under_a_row_cascaded_away(source, target, window):
    """a -> b -> c -> d, all ON DELETE CASCADE: c and d written in the window under b(10), then a
    deleted (InnoDB removes b, c, d). The chunks hold none of them; the replay puts c and d back
    and its cascade from a finds no b. The sweep removes c (b absent) and d with it, parents
    first; b(20)'s family, written in the window under a surviving a(2), stays. Failed before."""
    ddls = [A, B, C, D]
    db, tdb, wd, plan = window(
        ddls, ["INSERT INTO a VALUES (1), (2)", "INSERT INTO b VALUES (10, 1), (20, 2)"],
        ["INSERT INTO c VALUES (100, 10), (200, 20)", "INSERT INTO d VALUES (1000, 100), (1001, 100), (2000, 200)",
         "DELETE FROM a WHERE id = 1"])
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    rows = assert_same(source, target, db, tdb, ddls)
    assert rows["d"] == [(2000, 200)] and rows["c"] == [(200, 20)]


def test_rows_written_with_foreign_key_checks_off_stay_orphans(source, target, window):
    """Orphans the source holds legitimately are never touched: c(200) inserted with checks off
    under a b that never existed, c(201) whose parent b(20) was deleted with checks off, c(202)
    written with checks on and then rewritten with checks off, c(200) then updated with checks on
    (neither its key nor its foreign key changes: InnoDB checks nothing). Next to them c(100), written with
    checks on, whose ancestor a(1) is deleted with checks on: it goes."""
    ddls = [A, B, C_V]
    db, tdb, wd, plan = window(
        ddls, ["INSERT INTO a VALUES (1), (2), (3)", "INSERT INTO b VALUES (10, 1), (20, 2), (30, 3)"],
        ["INSERT INTO c VALUES (100, 10, NULL)", "INSERT INTO c VALUES (201, 20, NULL)",
         "INSERT INTO c VALUES (202, 30, NULL)", "SET foreign_key_checks = 0",
         "INSERT INTO c VALUES (200, 99, NULL)", "DELETE FROM b WHERE id = 20", "UPDATE c SET b_id = 31 WHERE id = 202",
         "SET foreign_key_checks = 1",
         "UPDATE c SET v = 'x' WHERE id = 200",  # checks on, neither key nor foreign key changes: not checked
         "DELETE FROM a WHERE id = 1"])
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    rows = assert_same(source, target, db, tdb, ddls)
    assert rows["c"] == [(200, 99, "x"), (201, 20, None), (202, 31, None)]


def test_on_update_cascade_in_the_window_over_children_copied_with_the_new_key(source, target, window):
    """a -> b -> c with ON UPDATE CASCADE: c written in the window under b(10), then b re-keyed to
    11 (c follows in InnoDB, not in the binlog) and a re-keyed to 2 (b follows). The chunks hold
    the new keys; the replay writes c(b_id=10) back, re-keys b and cascades c to 11, a to 2 and
    b to 2: it converges, and the sweep finds every parent present."""
    ddls = [A, B, C]
    db, tdb, wd, plan = window(ddls, ["INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (10, 1)"],
                               ["INSERT INTO c VALUES (100, 10)", "UPDATE b SET id = 11 WHERE id = 10",
                                "UPDATE a SET id = 2 WHERE id = 1"])
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    rows = assert_same(source, target, db, tdb, ddls)
    assert rows["c"] == [(100, 11)] and rows["b"] == [(11, 2)]


def test_parent_key_inserted_again_after_a_cascade_the_replay_missed(source, target, unique_db, tmp_path):
    """c(100) written under b(10); a(1) deleted (InnoDB removes b(10) and c(100)); the chunks of b
    and c read then; a(1) and b(10) inserted again. The replay writes c back, finds no b to
    cascade from, then writes the new b(10): at the copy's end c has a parent on the target, but
    that parent was inserted after c was written, so c was removed in between. Swept."""
    db, tdb = unique_db("wre"), unique_db("wret")
    ddls = [A, B, C]
    try:
        create_plain_both(source, target, db, tdb, ddls)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO a VALUES (1), (2)")
            query(c, "INSERT INTO b VALUES (10, 1), (20, 2)")
            record_copy_start(wd, source)
            query(c, "INSERT INTO c VALUES (100, 10), (200, 20)")
            query(c, "DELETE FROM a WHERE id = 1")
            for t in ("b", "c"):
                naive_copy(source, target, db, t, tdb, t)
            query(c, "INSERT INTO a VALUES (1)")
            query(c, "INSERT INTO b VALUES (10, 1)")
            naive_copy(source, target, db, "a", tdb, "a")
        record_copy_end(wd, source)
        mark_copied(wd, plan)
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        rows = assert_same(source, target, db, tdb, ddls)
        assert rows["c"] == [(200, 20)] and rows["b"] == [(10, 1), (20, 2)]
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


def test_a_copied_row_two_levels_below_a_parent_deleted_while_the_copy_ran(source, target, window, unique_db,
                                                                           tmp_path):
    """a -> b -> c: the chunk of c is read (c(100) there), then a(1) is deleted (InnoDB removes b(10)
    and c(100)), then the chunks of a and b are read. The replayed cascade from a finds no b and
    never reaches the copied c(100): rechecked against the source at the copy's end, it is gone
    there, so it goes. c(300), an orphan the source held before the copy (inserted with checks
    off), stays. Failed before the recheck."""
    db, tdb = unique_db("wdp"), unique_db("wdpt")
    ddls = [A, B, C]
    try:
        create_plain_both(source, target, db, tdb, ddls)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO a VALUES (1), (2)")
            query(c, "INSERT INTO b VALUES (10, 1), (20, 2)")
            query(c, "INSERT INTO c VALUES (100, 10), (200, 20)")
            query(c, "SET foreign_key_checks = 0")
            query(c, "INSERT INTO c VALUES (300, 99)")
            query(c, "SET foreign_key_checks = 1")
            record_copy_start(wd, source)
            naive_copy(source, target, db, "c", tdb, "c")
            query(c, "DELETE FROM a WHERE id = 1")
            for t in ("a", "b"):
                naive_copy(source, target, db, t, tdb, t)
        record_copy_end(wd, source)
        mark_copied(wd, plan)
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        rows = assert_same(source, target, db, tdb, ddls)
        assert rows["c"] == [(200, 20), (300, 99)]
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


FILM = ("film", "CREATE TABLE film (id INT PRIMARY KEY, title VARCHAR(10))")
FA = ("fa", ("CREATE TABLE fa (film_id INT, actor_id INT, PRIMARY KEY (film_id, actor_id), "
             "FOREIGN KEY (film_id) REFERENCES film (id) ON DELETE CASCADE ON UPDATE CASCADE)"))
NOTE = ("note", ("CREATE TABLE note (id INT PRIMARY KEY, film_id INT, actor_id INT, KEY (film_id, actor_id), "
                 "FOREIGN KEY (film_id, actor_id) REFERENCES fa (film_id, actor_id) "
                 "ON DELETE CASCADE ON UPDATE CASCADE)"))
FAN = ("fan", ("CREATE TABLE fan (film_id INT, actor_id INT, k INT, v VARCHAR(5), PRIMARY KEY (film_id, actor_id, k), "
               "FOREIGN KEY (film_id, actor_id) REFERENCES fa (film_id, actor_id) "
               "ON DELETE CASCADE ON UPDATE CASCADE)"))
FANX = ("fanx", ("CREATE TABLE fanx (film_id INT, actor_id INT, k INT, z INT, PRIMARY KEY (film_id, actor_id, k, z), "
                 "FOREIGN KEY (film_id, actor_id, k) REFERENCES fan (film_id, actor_id, k) "
                 "ON DELETE CASCADE ON UPDATE CASCADE)"))
NOTE_NULL = ("note_n", ("CREATE TABLE note_n (id INT PRIMARY KEY, film_id INT NULL, actor_id INT NULL, "
                        "KEY (film_id, actor_id), FOREIGN KEY (film_id, actor_id) REFERENCES fa (film_id, actor_id) "
                        "ON DELETE CASCADE ON UPDATE SET NULL)"))


def test_copied_rows_two_and_three_update_cascade_levels_below_a_parent_re_keyed_while_the_copy_ran(
        source, target, unique_db, tmp_path):
    """film -> fa -> {note, note_n, fan -> fanx}, ON UPDATE CASCADE through fa's key (note_n: SET
    NULL). The chunks of the rows two and three levels down are read, then film 1 is re-keyed to
    2 (InnoDB moves fa, and through fa's key note, fan and fanx; note_n's columns go NULL; the
    binlog holds film's row only), then the chunks of film and fa are read. The replayed cascade
    from film finds fa already moved and reaches nothing below it. At the copy's end sync maps
    the re-key down the chain (fan's and fanx's keys hold the moved column: their rows are
    looked up on the source under the new key) and makes the target's rows equal to the
    source's. film 3's family, untouched, and an orphan note written with checks off (film 9)
    stay as they are. Failed before: the target kept the old values and lacked the moved keys."""
    db, tdb = unique_db("wup"), unique_db("wupt")
    ddls = [FILM, FA, NOTE, NOTE_NULL, FAN, FANX]
    try:
        create_plain_both(source, target, db, tdb, ddls)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO film VALUES (1, 'one'), (3, 'three')")
            query(c, "INSERT INTO fa VALUES (1, 7), (1, 8), (3, 7)")
            query(c, "INSERT INTO note VALUES (100, 1, 7), (101, 1, 8), (300, 3, 7)")
            query(c, "INSERT INTO note_n VALUES (100, 1, 7), (300, 3, 7)")
            query(c, "INSERT INTO fan VALUES (1, 7, 1, 'a'), (1, 7, 2, 'b'), (1, 8, 1, 'c'), (3, 7, 1, 'd')")
            query(c, "INSERT INTO fanx VALUES (1, 7, 1, 50), (1, 8, 1, 60), (3, 7, 1, 70)")
            query(c, "SET foreign_key_checks = 0")
            query(c, "INSERT INTO note VALUES (900, 9, 7)")
            query(c, "SET foreign_key_checks = 1")
            record_copy_start(wd, source)
            for t in ("note", "note_n", "fan", "fanx"):
                naive_copy(source, target, db, t, tdb, t)
            query(c, "UPDATE film SET id = 2 WHERE id = 1")
            for t in ("film", "fa"):
                naive_copy(source, target, db, t, tdb, t)
        record_copy_end(wd, source)
        mark_copied(wd, plan)
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        rows = assert_same(source, target, db, tdb, ddls)
        assert rows["note"] == [(100, 2, 7), (101, 2, 8), (300, 3, 7), (900, 9, 7)]
        assert rows["note_n"] == [(100, None, None), (300, 3, 7)]
        assert rows["fan"] == [(2, 7, 1, "a"), (2, 7, 2, "b"), (2, 8, 1, "c"), (3, 7, 1, "d")]
        assert rows["fanx"] == [(2, 7, 1, 50), (2, 8, 1, 60), (3, 7, 1, 70)]
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


def checkpoint_key(wd: WorkDir, name: str) -> tuple[str, int]:
    cp = json.loads(wd.sync_checkpoint(name).read_text())["position"]
    return cp["file"], cp["pos"]


def copy_positions(wd: WorkDir, name: str) -> tuple[tuple[str, int], tuple[str, int]]:
    raw = json.loads(wd.copy_position(name).read_text())
    return (raw["start"]["file"], raw["start"]["pos"]), (raw["end"]["file"], raw["end"]["pos"])


@pytest.mark.parametrize("point", ["sync_window_sweep", "sync_window_swept"])
def test_kill_9_of_sync_right_around_the_copy_end_then_resume(source, target, window, tmp_path, point):
    """sync (one transaction per batch, so its checkpoint moves inside the window) is held at the
    sweep, before it ran or right after its commit, and its whole process group killed. The
    checkpoint on disk is strictly between the copy's start and end positions; the restart
    replays from the copy's start (a replay from the checkpoint would not know c(100) was written
    in the window, and would keep it), sweeps again and ends equal to the source."""
    ddls = [A, B, C]
    db, tdb, wd, plan = window(ddls, ["INSERT INTO a VALUES (1)", "INSERT INTO b VALUES (10, 1)"],
                               ["INSERT INTO c VALUES (100, 10)", "INSERT INTO a VALUES (5)",
                                "DELETE FROM a WHERE id = 1"])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MIGRATOR_COPY_FAULT": f"{point}:1:600"}
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root),
                             "--batch-rows", "1", "--until-caught-up"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # held at the point: c(100) replayed and still there (before) or removed (after), for good
        want = [(100, 10)] if point == "sync_window_sweep" else []
        deadline, steady = time.monotonic() + 60, 0
        while steady < 3:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "sync never reached the sweep"
            steady = steady + 1 if rows_of(target, "target", tdb, "c") == want and wd.sync_checkpoint(
                source.name).exists() and rows_of(target, "target", tdb, "a") == [(5,)] else 0
            time.sleep(1)
        start, end = copy_positions(wd, source.name)
        assert start < checkpoint_key(wd, source.name) < end  # inside the window: the restart must rewind
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: runner and source processes at once
        proc.wait()
        proc.stderr.close()
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    rows = assert_same(source, target, db, tdb, ddls)
    assert rows["c"] == [] and rows["a"] == [(5,)]
    assert checkpoint_key(wd, source.name) >= end


def test_update_chains_follow_the_columns_each_cascade_changes():
    """Pure logic: which tables a re-key reaches two and more levels down (window.update_chains):
    through a middle key holding the re-keyed column (film -> fa -> note -> nx), not through a
    middle level whose cascade changes columns the next level does not reference (film -> x -> y);
    a SET NULL level makes the chain inexact (the moved value is NULL, not the new key)."""
    from migrator.schema.catalog import ForeignKey
    from migrator.sync.window import update_chains

    def fk(child, parent, cols, ref, on_update="CASCADE"):
        return ForeignKey(name=f"fk_{child}", database="d", table=child, columns=cols, ref_database="d",
                          ref_table=parent, ref_columns=ref, on_delete="CASCADE", on_update=on_update)

    chains = update_chains([fk("fa", "film", ("film_id",), ("id",)),
                            fk("note", "fa", ("actor_id", "film_id"), ("actor_id", "film_id")),
                            fk("nx", "note", ("f",), ("film_id",), on_update="SET NULL"),
                            fk("x", "film", ("film_id",), ("id",)), fk("y", "x", ("x_id",), ("id",))])
    got = {(c.top.table, c.table[1], tuple(sorted(c.reach.items())), c.exact) for c in chains}
    assert got == {("fa", "note", (("film_id", 0),), True),  # film re-keyed: fa moves, note follows
                   ("fa", "nx", (("f", 0),), False),  # and nx's column, three levels down, goes NULL
                   ("note", "nx", (("f", 1),), False)}  # fa re-keyed itself (film_id, the 2nd referenced)
