"""XA transactions in the binlog (MariaDB 10.11): rows are logged at XA PREPARE, the outcome in a
later group of its own (XA COMMIT / XA ROLLBACK); XA COMMIT ... ONE PHASE is a plain transaction.
Sync holds prepared rows until the outcome, and never checkpoints past an undecided PREPARE."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from migrator.db import connect, qualified, query
from migrator.errors import SourceError
from migrator.positions import BinlogPosition
from migrator.state import read_json
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from sync_helpers import copy_done, rows_of, run_cli, setup_tables, start_cli, write_plan

DDL = "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)"


def xid_for(db: str, tag: str) -> str:
    """An XA id unique to the test (gtrid is at most 64 bytes; unique_db names end unique)."""
    return db[-24:] + tag


def rollback_leftovers(ep, prefix: str) -> None:
    """A failed test must not leave prepared XA transactions (and their locks) on the server."""
    with connect(ep, "source") as c:
        for fmt, glen, blen, data in query(c, "XA RECOVER"):
            if data.startswith(prefix.encode()):
                query(c, f"XA ROLLBACK X'{data[:glen].hex()}',X'{data[glen:glen + blen].hex()}',{fmt}")


def xa(conn, xid: str, *statements: str, outcome: str | None = "COMMIT") -> None:
    """XA START; statements; XA END; XA PREPARE; then the outcome (None: leave it prepared)."""
    query(conn, f"XA START '{xid}'")
    for sql in statements:
        query(conn, sql)
    query(conn, f"XA END '{xid}'")
    if outcome == "ONE PHASE":
        query(conn, f"XA COMMIT '{xid}' ONE PHASE")
        return
    query(conn, f"XA PREPARE '{xid}'")
    if outcome:
        query(conn, f"XA {outcome} '{xid}'")


def sync(plan, wd, **kw):
    return run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2, poll_interval=0.1, **kw))


def same(source, target, db, tdb) -> None:
    assert rows_of(target, "target", tdb, "t", "id, v") == rows_of(source, "source", db, "t", "id, v")


def test_xa_commit_rollback_and_one_phase_are_replayed_as_committed(source, target, unique_db, tmp_path):
    db = unique_db("xa")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", DDL)])
    t = qualified(db, "t")
    a = xid_for(db, "a")
    with connect(source, "source") as c, connect(source, "source") as other:
        query(c, f"INSERT INTO {t} VALUES (1, 'plain'), (2, 'plain')")
        query(c, f"XA START '{a}'")
        query(c, f"INSERT INTO {t} VALUES (10, 'xa commit')")
        query(c, f"UPDATE {t} SET v = 'xa updated' WHERE id = 1")
        query(c, f"XA END '{a}'")
        query(c, f"XA PREPARE '{a}'")
        query(other, f"INSERT INTO {t} VALUES (3, 'between')")  # logged between PREPARE and COMMIT
        query(c, f"XA COMMIT '{a}'")
        xa(c, xid_for(db, "b"), f"INSERT INTO {t} VALUES (20, 'xa rolled back')", f"DELETE FROM {t} WHERE id = 2",
           outcome="ROLLBACK")
        xa(c, xid_for(db, "c"), f"INSERT INTO {t} VALUES (30, 'one phase')", outcome="ONE PHASE")
    sync(plan, wd)
    same(source, target, db, tdb)
    got = dict(rows_of(target, "target", tdb, "t", "id, v"))
    assert got[10] == "xa commit" and got[1] == "xa updated" and got[30] == "one phase"
    assert 20 not in got and 2 in got  # the rolled-back insert and delete left no trace
    assert read_json(wd.sync_checkpoint(source.name))["xa_prepared"] == {}


def wait_for(what, fn, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_prepared_xa_is_held_and_the_checkpoint_waits_for_it_across_kill_9(source, target, unique_db, tmp_path):
    db = unique_db("xk")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", DDL)])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    t = qualified(db, "t")
    ids = lambda: [r[0] for r in rows_of(target, "target", tdb, "t", "id")]  # noqa: E731
    cp_path = wd.sync_checkpoint(source.name)
    # a session with a prepared XA transaction can only end it: one session per XA, one for the rest
    xa1, xa2, c = (connect(source, "source") for _ in range(3))
    xa(xa1, xid_for(db, "1"), f"INSERT INTO {t} VALUES (1, 'xa one')", outcome=None)
    query(c, f"INSERT INTO {t} VALUES (2, 'plain')")
    proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--duration", "60", "--workers", "2")
    try:
        wait_for("the plain row", lambda: 2 in ids())
        assert 1 not in ids()  # prepared, not committed: not applied
        cp = wait_for("the held XA in the checkpoint", lambda: (read_json(cp_path) or {}).get("xa_prepared") and read_json(cp_path))
        start = BinlogPosition.model_validate(cp["position"])
        query(xa1, "XA COMMIT %s", (xid_for(db, "1"),))  # decided while sync runs: applied from memory
        xa(xa2, xid_for(db, "2"), f"INSERT INTO {t} VALUES (3, 'xa two')", outcome=None)
        query(c, f"INSERT INTO {t} VALUES (4, 'plain')")
        wait_for("the committed XA row", lambda: 1 in ids() and 4 in ids())
        assert 3 not in ids()
        held = wait_for("the second XA held", lambda: list((read_json(cp_path) or {}).get("xa_prepared", {}).values()))
        assert BinlogPosition.model_validate(read_json(cp_path)["position"]).key() > start.key()  # moved on to XA 2
        assert read_json(cp_path)["position"]["file"] + ":" + str(read_json(cp_path)["position"]["pos"]) == held[0]
        status = run_cli("status", str(plan_path), "--workdir", str(wd.root), "--json")  # what a DBA looks at
        assert "1 prepared XA transaction(s)" in json.loads(status.stdout)["sources"][0]["sync"]["state"], status.stdout
    except BaseException:
        for conn in (xa1, xa2, c):
            conn.close()
        rollback_leftovers(source, xid_for(db, ""))
        raise
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    query(xa2, "XA COMMIT %s", (xid_for(db, "2"),))  # its rows are in the binlog only before the checkpoint's end
    for conn in (xa1, xa2, c):
        conn.close()
    sync(plan, wd)
    same(source, target, db, tdb)
    assert read_json(cp_path)["xa_prepared"] == {}


def test_xa_commit_of_a_transaction_prepared_before_the_start_stops_loudly(source, target, unique_db, tmp_path):
    db = unique_db("xu")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", DDL)])
    t = qualified(db, "t")
    with connect(source, "source") as c:
        xa(c, xid_for(db, "u"), f"INSERT INTO {t} VALUES (1, 'before start')", outcome=None)
        copy_done(wd, plan, source)  # the copy starts while the XA is prepared: it cannot see its row
        query(c, "XA COMMIT %s", (xid_for(db, "u"),))
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {t} VALUES (2, 'after')")
    with pytest.raises(SourceError) as err:
        sync(plan, wd)
    msg = str(err.value)
    assert "XA COMMIT" in msg and "prepared before" in msg and "--skip-ddl" in msg
    at = msg.split("--skip-ddl ")[1].split()[0]
    sync(plan, wd, skip_ddl=[at])  # the DBA re-copied / checked the table and goes on
    assert [r[0] for r in rows_of(target, "target", tdb, "t", "id")] == [2]


def test_an_undecided_xa_is_said_out_loud(source, target, unique_db, tmp_path, capfd):
    """A prepared XA transaction nobody decides holds the checkpoint back: sync says so, once."""
    db = unique_db("xw")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", DDL)])
    xid = xid_for(db, "w")
    conn = connect(source, "source")
    try:
        xa(conn, xid, f"INSERT INTO {qualified(db, 't')} VALUES (1, 'undecided')", outcome=None)
        sync(plan, wd, xa_warn_seconds=0)
        err = capfd.readouterr().err
        assert err.count("is still undecided") == 1 and "XA RECOVER" in err, err
        assert list(read_json(wd.sync_checkpoint(source.name))["xa_prepared"]) and not rows_of(target, "target", tdb, "t")
    finally:
        query(conn, "XA ROLLBACK %s", (xid,))
        conn.close()
