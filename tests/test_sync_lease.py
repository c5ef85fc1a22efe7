"""One sync per source: a lease in the target (migrator_state.sync_checkpoint), renewed with each
checkpoint and idle poll. Two real `migrator sync` processes on two work directories."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from sync_helpers import ROOT, rows_of, run_cli, setup_tables, write_plan
from test_sync_xa import wait_for

from migrator.db import connect, qualified, query
from migrator.positions import BinlogPosition
from migrator.state import read_json
from migrator.sync.targetstate import TABLE, copy_start_key
from migrator.workdir import WorkDir

T = [("t", "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)")]
LEASE = 6.0


def start_sync(plan_path, wd: WorkDir, *args: str) -> subprocess.Popen:
    """`migrator sync` in its own process group (killed as a whole), stderr to a file."""
    err = open(wd.root.parent / f"{wd.root.name}.stderr", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root),
                             "--lease-seconds", str(LEASE), *args], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=err)


def stderr_of(wd: WorkDir) -> str:
    return (wd.root.parent / f"{wd.root.name}.stderr").read_text(errors="replace")


def second_workdir(wd: WorkDir, tmp_path) -> WorkDir:
    """Another machine's work directory for the same copy (same copy start position)."""
    other = WorkDir(tmp_path / "other")
    shutil.copytree(wd.copy_dir, other.copy_dir)
    return other


def lease_of(target, wd: WorkDir, source: str) -> tuple[float, str]:
    """Seconds left on the source's lease (target clock) and its owner."""
    start = BinlogPosition.model_validate(read_json(wd.copy_position(source))["start"])
    with connect(target, "target") as t:
        return query(t, f"SELECT `lease_expires` - UNIX_TIMESTAMP(NOW(6)), `owner` FROM {TABLE} WHERE `source` = %s "
                        "AND `copy_start` = %s", (source, copy_start_key(start)))[0]


def insert(source, db: str, ids) -> None:
    with connect(source, "source") as c:
        for i in ids:
            query(c, f"INSERT INTO {qualified(db, 't')} VALUES (%s, 'x')", (i,))


def test_a_second_sync_of_the_same_source_is_refused_then_takes_an_expired_lease_over(source, target, unique_db,
                                                                                        tmp_path):
    db = unique_db("ls")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    other = second_workdir(wd, tmp_path)
    insert(source, db, range(1, 4))
    first = start_sync(plan_path, wd)
    try:
        wait_for("the first sync's rows", lambda: len(rows_of(target, "target", tdb, "t")) == 3, timeout=60)
        res = run_cli("sync", str(plan_path), "--workdir", str(other.root), "--until-caught-up")
        assert res.returncode == 3, res.stderr
        assert "another sync holds this source's lease" in res.stderr, res.stderr
        assert str(wd.root.resolve()) in res.stderr and "pid" in res.stderr and " UTC (in " in res.stderr, res.stderr
        # the holder renews its lease while idle: still refused well after one lease length
        time.sleep(LEASE * 1.5)
        res = run_cli("sync", str(plan_path), "--workdir", str(other.root), "--until-caught-up")
        assert res.returncode == 3 and "another sync holds this source's lease" in res.stderr, res.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # dies holding the lease
        first.wait()
    left, owner = lease_of(target, wd, source.name)
    assert 0 < left <= LEASE and owner.split("/")[1] != str(os.getpid())  # the dead holder's, not expired yet
    insert(source, db, range(4, 6))
    time.sleep(left + 0.5)
    res = run_cli("sync", str(plan_path), "--workdir", str(other.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    assert "expired" in res.stderr and "taken over" in res.stderr, res.stderr
    assert rows_of(target, "target", tdb, "t") == rows_of(source, "source", db, "t")
    # a clean stop released the lease: the first work directory resumes at once
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr


def test_a_sync_that_lost_its_lease_writes_nothing_more(source, target, unique_db, tmp_path):
    """The holder is frozen (a network partition, a stopped VM) past its lease; another sync takes
    it over and applies; when the first one wakes up its next batch is fenced off: rolled back,
    and it stops saying so, instead of writing beside the new holder."""
    db = unique_db("lf")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    other = second_workdir(wd, tmp_path)
    insert(source, db, [1])
    first = start_sync(plan_path, wd, "--workers", "1")
    second = None
    try:
        wait_for("the first sync's row", lambda: rows_of(target, "target", tdb, "t", "id") == [(1,)], timeout=60)
        os.killpg(first.pid, signal.SIGSTOP)
        time.sleep(LEASE + 1)
        second = start_sync(plan_path, other, "--workers", "1", "--duration", "40")
        insert(source, db, [2])
        wait_for("the second sync's row", lambda: len(rows_of(target, "target", tdb, "t")) == 2, timeout=60)
        with connect(target, "target") as t:  # the new holder's row changes only
            query(t, f"UPDATE {qualified(tdb, 't')} SET v = 'second' WHERE id = 2")
        os.killpg(first.pid, signal.SIGCONT)  # wakes up: reads row 2 too, tries to apply it
        assert first.wait(timeout=60) == 5, stderr_of(wd)
        assert "lost the source's lease" in stderr_of(wd), stderr_of(wd)
        assert rows_of(target, "target", tdb, "t", "id, v") == [(1, "x"), (2, "second")]  # nothing written by it
        insert(source, db, [3])
        wait_for("the holder goes on", lambda: len(rows_of(target, "target", tdb, "t")) == 3, timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
