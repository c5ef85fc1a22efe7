"""Operator controls while running: WORKDIR/pause pauses copy, sync and verify --follow (and says so), removing it
resumes; WORKDIR/limits.yaml changes the source-load limit of a running throttle."""

from __future__ import annotations

import json
import threading
import time

from migrator.db import connect, quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.state import read_json
from migrator.throttle import Throttle, ThrottleOptions

from conftest import drop_databases
from copy_helpers import execute
from sync_helpers import setup_tables, start_cli, write_plan


def count(ep, role: str, db: str, table: str = "t") -> int:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {quote_ident(db)}.{quote_ident(table)}")
            return int(cur.fetchone()[0])
    except Exception:  # noqa: BLE001 - the table may not exist yet
        return 0
    finally:
        conn.close()


def test_pause_file_pauses_copy_within_a_second_and_removing_it_resumes(source, target, unique_db, tmp_path):
    db = unique_db("pause")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
            "INSERT INTO t SELECT seq, CONCAT('value ', seq) FROM seq_1_to_6000")
    plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=2000)
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    work = tmp_path / "work"
    proc = start_cli("copy", str(path), "--workdir", str(work), "--page-rows", "20", "--parallel", "1",
                     "--progress-interval", "0.3")
    try:
        deadline = time.monotonic() + 60
        while count(target, "target", db) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        (work / "pause").touch()
        paused_at = time.monotonic()
        time.sleep(1.0)
        held = count(target, "target", db)
        time.sleep(1.5)
        assert count(target, "target", db) == held, "copy went on more than a second after the pause file appeared"
        assert 0 < held < 6000
        (work / "pause").unlink()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert count(target, "target", db) == 6000
        assert "throttling: paused: " in err and "pause exists (remove it to go on)" in err
        assert "throttled: paused" in err  # in the progress line too
        print(f"paused {held} rows in; held for {time.monotonic() - paused_at:.1f}s")
    finally:
        if proc.poll() is None:
            proc.kill()
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])


def test_pause_file_pauses_sync(source, target, unique_db, tmp_path):
    db, tdb = unique_db("sp"), unique_db("spt")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path,
                            [("t", "CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20))")])
    path = write_plan(plan, tmp_path / "plan.yaml")
    wd.pause_file.parent.mkdir(parents=True, exist_ok=True)
    wd.pause_file.touch()
    proc = start_cli("sync", str(path), "--workdir", str(wd.root), "--progress-interval", "0.3")
    try:
        deadline = time.monotonic() + 60  # the source's sync process is up and holding at the pause
        while "paused" not in json.dumps(read_json(wd.live("sync"), default={})) and time.monotonic() < deadline:
            time.sleep(0.2)
        live = read_json(wd.live("sync"))
        assert live["sources"][source.name]["state"].startswith("paused: "), live
        execute(source, "source", f"USE {quote_ident(db)}", "INSERT INTO t SELECT seq, 'x' FROM seq_1_to_50")
        time.sleep(2.0)
        assert count(target, "target", tdb) == 0, "sync applied changes while paused"
        wd.pause_file.unlink()
        deadline = time.monotonic() + 30
        while count(target, "target", tdb) < 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(target, "target", tdb) == 50
        time.sleep(0.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])
    assert proc.returncode == 0, err
    assert "throttled: 1 source(s) paused: " in err and "lag p50" in err


def test_limits_file_changes_the_source_load_limit_while_running(mariadb_factory, tmp_path):
    ep = mariadb_factory(name="limits")
    throttle = Throttle(ThrottleOptions(max_threads_running=100, workdir=tmp_path))
    conn = connect(ep, "source")
    sleepers = [connect(ep, "source") for _ in range(3)]
    try:
        threads = [threading.Thread(target=lambda c=c: c.query("SELECT SLEEP(3)")) for c in sleepers]
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert throttle.source_wait("limits", conn) == 0.0  # 3 running <= 100
        (tmp_path / "limits.yaml").write_text("max_source_threads_running: 1\n")
        time.sleep(1.1)  # the file is looked at once a second
        waited = throttle.source_wait("limits", conn)
        assert waited >= 1.0, waited
        assert any("Threads_running" in e and "> 1" in e for e in throttle.events)
        for t in threads:
            t.join()
    finally:
        conn.close()
        for c in sleepers:
            c.close()


def test_pause_file_holds_verify_follow(source, target, unique_db, tmp_path):
    """`verify --follow` obeys WORKDIR/pause as a plain verify does (its checksums wait)."""
    db, tdb = unique_db("vfp"), unique_db("vfpt")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", "CREATE TABLE {name} (id INT PRIMARY KEY)")])
    path = write_plan(plan, tmp_path / "plan.yaml")
    wd.pause_file.touch()
    proc = start_cli("verify", str(path), "--workdir", str(wd.root), "--follow", "--passes", "1", "--json")
    try:
        time.sleep(4.0)
        assert proc.poll() is None, f"verify --follow ran its pass while paused: {proc.communicate()}"
        wd.pause_file.unlink()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])
    assert proc.returncode == 0, out + err
    assert json.loads(out.splitlines()[-1])["pass"] == 1
