"""Sync bugs the differential fuzzer found in foreign-key rounds (fuzz/, issue 14), reduced to
minimal reproductions on real servers. Marked xfail(strict=True) until migrator/sync/cascade.py
is fixed: then they pass, strict xfail fails, and the marks come off."""

from __future__ import annotations

import shutil

import pytest
from conftest import drop_databases
from sync_helpers import create_plain_both, copy_done, make_plan, rows_of

from migrator.db import connect, query
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir

CHAIN = [("a", "CREATE TABLE a (id INT PRIMARY KEY)"),
         ("b", ("CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY (a_id), "
                "FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE)")),
         ("c", ("CREATE TABLE c (id INT PRIMARY KEY, b_id INT, KEY (b_id), "
                "FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE)"))]


@pytest.fixture
def dbs(source, target, unique_db):
    db = unique_db("fzfk")
    yield db, db + "_t"
    drop_databases(source, "source", [db])
    drop_databases(target, "target", [db + "_t"])


def setup_fk_tables(source, target, db: str, tdb: str, tmp_path, ddls: list[tuple[str, str]]):
    """The tables (parents first) in db on the source and tdb on the target, planned one to one,
    and marked copied while empty: every row below comes from the binlog."""
    create_plain_both(source, target, db, tdb, ddls)
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
    copy_done(wd, plan, source)
    return wd, plan


def test_replay_after_a_kill_of_a_grandchild_insert_and_a_cascading_delete(source, target, dbs, tmp_path):
    """kill -9 after sync applied `INSERT c; DELETE a` (cascading to b and c) but before the work
    directory's checkpoint moved (fuzz seed 302): replaying both, the cascade from a found no b
    on the target any more, so the replayed c stayed: an extra row the source does not have.
    The checkpoint held in the target, committed with that batch, is ahead: nothing is replayed."""
    db, tdb = dbs
    wd, plan = setup_fk_tables(source, target, db, tdb, tmp_path, CHAIN)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO a VALUES (1)")
        query(c, "INSERT INTO b VALUES (10, 1)")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    shutil.copytree(wd.root, tmp_path / "saved")  # the checkpoint a killed sync restarts from
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO c VALUES (100, 10)")
        query(c, "DELETE FROM a WHERE id = 1")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert rows_of(target, "target", tdb, "c") == []  # first pass: exact
    shutil.rmtree(wd.root)
    shutil.copytree(tmp_path / "saved", wd.root)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))  # the replay a kill -9 causes
    assert rows_of(target, "target", tdb, "c") == rows_of(source, "source", db, "c") == []


def test_cascade_through_a_table_keyed_by_an_enum(source, target, dbs, tmp_path):
    """a -> b (key (ENUM, INT)) -> c: deleting a cascades to b, whose key values sync reads from
    the target to cascade to c. Fuzz seed 101: read as labels, seekdb refused a string compared
    with an indexed ENUM (error 1210) and sync stopped (exit 5) instead of deleting c's row."""
    db, tdb = dbs
    ddls = [("a", "CREATE TABLE a (id INT PRIMARY KEY)"),
            ("b", ("CREATE TABLE b (k ENUM('x','y') NOT NULL, i INT NOT NULL, a_id INT, PRIMARY KEY (k, i), "
                   "KEY (a_id), FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE)")),
            ("c", ("CREATE TABLE c (id INT PRIMARY KEY, bk ENUM('x','y'), bi INT, KEY (bk, bi), "
                   "FOREIGN KEY (bk, bi) REFERENCES b (k, i) ON DELETE CASCADE)"))]
    wd, plan = setup_fk_tables(source, target, db, tdb, tmp_path, ddls)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO a VALUES (1)")
        query(c, "INSERT INTO b VALUES ('x', 1, 1)")
        query(c, "INSERT INTO c VALUES (10, 'x', 1)")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert len(rows_of(target, "target", tdb, "c")) == 1
    with connect(source, "source", database=db) as c:
        query(c, "DELETE FROM a WHERE id = 1")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert rows_of(target, "target", tdb, "c") == rows_of(source, "source", db, "c") == []


SELF_VB = [("t", ("CREATE TABLE t (k VARBINARY(40) PRIMARY KEY, parent_id VARBINARY(40) NULL, KEY (parent_id), "
                  "FOREIGN KEY (parent_id) REFERENCES t (k) ON DELETE CASCADE ON UPDATE CASCADE)"))]


def test_cascade_from_a_parent_whose_key_is_the_empty_binary_string(source, target, dbs, tmp_path):
    """Fuzz seed 5: a VARBINARY key '' deleted on the source cascades to its children; sync's
    replayed cascade matched them with `parent_id IN (X'')`, and seekdb matches nothing with an
    empty hex literal in an IN list (`= X''` and `IN (_binary'')` match): the children stayed."""
    db, tdb = dbs
    wd, plan = setup_fk_tables(source, target, db, tdb, tmp_path, SELF_VB)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO t VALUES ('', NULL), (X'01', ''), (X'02', X'01'), (X'03', NULL)")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(source, "source", database=db) as c:
        query(c, "DELETE FROM t WHERE k = ''")
        query(c, "DELETE FROM t WHERE k = X'03'")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert rows_of(source, "source", db, "t") == []
    assert rows_of(target, "target", tdb, "t") == []
