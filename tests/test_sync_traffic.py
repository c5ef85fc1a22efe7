"""Sync under shapes ordinary application traffic produces (issue 13): BINARY keys ending in
0x00, zero-part dates, a rotation followed by silence, SAVEPOINTs inside big transactions.
Each test failed before its fix, on the real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from migrator.db import connect, qualified, query
from migrator.positions import read_position
from migrator.state import read_json
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from sync_helpers import ROOT, run_cli, setup_tables, write_plan


def _sql(ep, role, *statements, mode: str | None = None):
    with connect(ep, role) as c:
        if mode is not None:
            query(c, f"SET SESSION sql_mode = '{mode}'")
        out = None
        for s in statements:
            out = query(c, s)
        return out


def test_binary_keys_ending_in_zero_bytes_are_deleted_and_rekeyed(source, target, unique_db, tmp_path):
    db, tdb = unique_db("bin"), unique_db("bin_t")
    ddl = """CREATE TABLE {name} (id BINARY(16) NOT NULL PRIMARY KEY, tag BINARY(4) NOT NULL,
             v INT NOT NULL, UNIQUE KEY uk_tag (tag, v))"""
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("u", ddl)])
    t_src = qualified(db, "u")
    # keys whose last bytes are 0x00 (the server strips them in row images), and a few that are not
    rows = [(bytes([i, 0xAB]) + b"\x00" * 14 if i % 4 else bytes([i]) * 16, bytes([i, 0, 0, 0]), i)
            for i in range(1, 61)]
    with connect(source, "source") as c, c.cursor() as cur:
        cur.executemany(f"INSERT INTO {t_src} VALUES (%s,%s,%s)", rows)
        c.commit()
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2))  # the rows are on the target first
    with connect(source, "source") as c, c.cursor() as cur:
        for key, _, i in rows[:20]:
            cur.execute(f"DELETE FROM {t_src} WHERE id = %s", (key,))
        for key, _, i in rows[20:40]:  # key change to another key ending in 0x00
            cur.execute(f"UPDATE {t_src} SET id = %s WHERE id = %s", (bytes([i, 0xCD, 0x7F]) + b"\x00" * 13, key))
        for key, _, i in rows[40:]:
            cur.execute(f"UPDATE {t_src} SET v = v + 1000 WHERE id = %s", (key,))
        c.commit()
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2))
    cols = "HEX(id), HEX(tag), v"
    want = _sql(source, "source", f"SELECT {cols} FROM {t_src} ORDER BY 1")
    got = _sql(target, "target", f"SELECT {cols} FROM {qualified(tdb, 'u')} ORDER BY 1")
    assert len(want) == 40
    assert got == want


def test_zero_part_dates_written_during_sync_arrive_exactly(source, target, unique_db, tmp_path):
    db, tdb = unique_db("zd"), unique_db("zd_t")
    ddl = """CREATE TABLE {name} (id INT PRIMARY KEY, d DATE NULL, dt DATETIME(3) NULL, dt0 DATETIME NULL,
             ts TIMESTAMP(6) NULL DEFAULT NULL)"""
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("z", ddl)])
    t = qualified(db, "z")
    _sql(source, "source",
         f"INSERT INTO {t} VALUES (1, '2024-05-00', '2024-05-00 12:34:56.789', '2024-00-00 00:00:01', NULL),"
         f"(2, '2024-00-00', '2024-00-00 00:00:00.001', '0000-00-00 00:00:00', '0000-00-00 00:00:00'),"
         f"(3, '0000-00-00', '0000-05-10 23:59:59.999', '2024-02-00 10:00:00', '2024-02-29 23:59:59.5'),"
         f"(4, '0000-01-00', NULL, '0000-00-01 00:00:00', '1970-01-01 00:00:01')",
         f"UPDATE {t} SET d = '2025-12-00' WHERE id = 4", mode="")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    cols = "id, CAST(d AS CHAR), CAST(dt AS CHAR), CAST(dt0 AS CHAR), CAST(ts AS CHAR)"
    want = _sql(source, "source", "SET time_zone = '+00:00'", f"SELECT {cols} FROM {t} ORDER BY id")
    got = _sql(target, "target", "SET time_zone = '+00:00'", f"SELECT {cols} FROM {qualified(tdb, 'z')} ORDER BY id")
    assert want[0][1] == "2024-05-00" and want[1][1] == "2024-00-00"
    assert got == want


def test_rotation_then_an_idle_source_is_caught_up(target, mariadb_factory, unique_db, tmp_path):
    ep = mariadb_factory(name="idle")
    db, tdb = unique_db("rot"), unique_db("rot_t")
    ddl = "CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20))"
    wd, plan = setup_tables(ep, target, db, tdb, tmp_path, [("r", ddl)])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    _sql(ep, "source", f"INSERT INTO {qualified(db, 'r')} VALUES (1, 'a'), (2, 'b')")
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up", timeout=60)
    assert res.returncode == 0, res.stderr
    for _ in range(2):  # FLUSH BINARY LOGS, then nothing: the head is in a new file
        _sql(ep, "source", "FLUSH BINARY LOGS")
    with connect(ep, "source") as c:
        head = read_position(c)
    for use_gtid in (True, False):  # a resume by GTID and one by file/offset both follow the rotation
        args = ["sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up"]
        if not use_gtid:
            args.append("--by-file-position")
        try:
            res = run_cli(*args, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("sync --until-caught-up never returned after a binlog rotation on an idle source")
        assert res.returncode == 0, res.stderr
        cp = read_json(wd.sync_checkpoint(ep.name))
        assert (cp["position"]["file"], cp["position"]["pos"]) == (head.file, head.pos)
    assert _sql(target, "target", f"SELECT COUNT(*) FROM {qualified(tdb, 'r')}")[0][0] == 2


def _killpg(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: every source process too
    proc.wait()


def test_savepoint_inside_a_big_transaction_never_becomes_a_checkpoint(target, mariadb_factory, unique_db, tmp_path):
    """BEGIN; rows; SAVEPOINT; more rows; ROLLBACK TO; rows; COMMIT while sync runs; sync's
    whole process group killed at random instants: every row of the transaction arrives."""
    ep = mariadb_factory(name="savept")
    db, tdb = unique_db("sp"), unique_db("sp_t")
    ddl = "CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(32) NOT NULL)"
    wd, plan = setup_tables(ep, target, db, tdb, tmp_path, [("s", ddl)])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    t = qualified(db, "s")
    n1, n2 = 20_000, 60_000

    def write() -> None:
        with connect(ep, "source", autocommit=False) as c, c.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO {t} SELECT seq, CONCAT('before-', seq) FROM {db}.seq_1_to_{n1}")
            cur.execute("SAVEPOINT s1")
            cur.execute(f"INSERT INTO {t} VALUES (-1, 'rolled back')")
            cur.execute("ROLLBACK TO SAVEPOINT s1")
            cur.execute("SAVEPOINT s2")
            cur.execute(f"INSERT INTO {t} SELECT seq, CONCAT('after-', seq) FROM {db}.seq_{n1 + 1}_to_{n1 + n2}")
            cur.execute("RELEASE SAVEPOINT s2")
            c.commit()

    # the transaction is in the binlog before sync starts reading it
    write()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root),
            "--batch-rows", "2000"]
    inside = 0
    for delay in (1.0, 1.4, 1.9):
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        _killpg(proc)
        cp = read_json(wd.sync_checkpoint(ep.name))
        if cp and 0 < sum(cp["rows"].values()) < n1 + n2:
            inside += 1  # a checkpoint inside the transaction: it must not exist
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up", timeout=120)
    assert res.returncode == 0, res.stderr
    assert inside == 0, "a checkpoint was written inside the transaction"
    got = _sql(target, "target", f"SELECT COUNT(*), SUM(v LIKE 'after-%'), MIN(id) FROM {qualified(tdb, 's')}")[0]
    assert (int(got[0]), int(got[1]), int(got[2])) == (n1 + n2, n2, 1)


def test_savepoint_statement_is_no_transaction_boundary(target, mariadb_factory, unique_db, tmp_path):
    """Deterministic: every checkpoint sync writes lies outside the transaction's byte range."""
    from migrator.sync.stream import SourceSync

    ep = mariadb_factory(name="savept2")
    db, tdb = unique_db("sq"), unique_db("sq_t")
    wd, plan = setup_tables(ep, target, db, tdb, tmp_path,
                            [("s", "CREATE TABLE {name} (id INT PRIMARY KEY, v INT NOT NULL)")])
    t = qualified(db, "s")
    with connect(ep, "source") as c:
        before = read_position(c)
    with connect(ep, "source", autocommit=False) as c, c.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {t} SELECT seq, seq FROM {db}.seq_1_to_3000")
        cur.execute("SAVEPOINT a")
        cur.execute(f"INSERT INTO {t} SELECT seq, seq FROM {db}.seq_3001_to_6000")
        c.commit()
    with connect(ep, "source") as c:
        after = read_position(c)
    seen: list[tuple[int, int]] = []

    def report(msg: dict) -> None:
        if "checkpoint" in msg:
            p = msg["checkpoint"]["position"]
            seen.append((int(p["file"].rsplit(".", 1)[1]), p["pos"]))

    sync = SourceSync(plan, ep.name, wd, SyncOptions(until_caught_up=True, batch_rows=500), report=report)
    sync.run()
    assert seen and all(k <= before.key() or k >= after.key() for k in seen), (before.key(), after.key(), seen)
    assert _sql(target, "target", f"SELECT COUNT(*) FROM {qualified(tdb, 's')}")[0][0] == 6000


def test_undecodable_events_stop_sync_unless_known_to_carry_no_rows():
    from migrator.sync.stream import undecodable_event_reason

    assert "binlog_transaction_compression" in undecodable_event_reason(40)  # MySQL's compressed payload
    assert "log_bin_compress" in undecodable_event_reason(0xA6)  # MariaDB's compressed rows
    assert "INCIDENT" in undecodable_event_reason(26)
    assert "unknown type 250" in undecodable_event_reason(250)
    assert undecodable_event_reason(34) is None  # MySQL's anonymous GTID: no rows


def test_plan_blocks_mysql_binlog_transaction_compression():
    from migrator.plan.introspect import InstanceFacts
    from migrator.plan.preflight import binlog_findings

    facts = InstanceFacts(flavor="mysql", variables={
        "log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_transaction_compression": "ON",
        "server_id": "1"})
    found = [f for f in binlog_findings("db1", facts, needs_sync=True) if f.check == "binlog.transaction-compression"]
    assert found and found[0].severity == "blocking"


def test_start_position_is_consistent_and_visible_under_commits(mariadb_factory, unique_db):
    """Read copy's start position P while a writer commits as fast as it can: the GTID state of P
    is exactly the one at P's file/offset (a GTID start resumes at the same place), and every
    transaction before P is visible to a read that starts after P was read."""
    from migrator.positions import gtid_at, read_start_position

    ep = mariadb_factory(name="busy")
    db = unique_db("busy")
    t = qualified(db, "w")
    _sql(ep, "source", f"CREATE DATABASE {db}", f"CREATE TABLE {t} (id INT PRIMARY KEY)")
    base = int(_sql(ep, "source", "SELECT @@gtid_binlog_pos")[0][0].rsplit("-", 1)[1])
    stop = threading.Event()

    def writer() -> None:
        with connect(ep, "source") as c, c.cursor() as cur:
            i = 0
            while not stop.is_set():
                i += 1
                cur.execute(f"INSERT INTO {t} VALUES ({i})")  # autocommit: one GTID per row, in id order

    th = threading.Thread(target=writer)
    th.start()
    try:
        with connect(ep, "source") as c, connect(ep, "source") as reader:
            for _ in range(60):
                p = read_start_position(c)
                assert p.gtid == gtid_at(c, "mariadb", p.file, p.pos)
                before = int(p.gtid.rsplit("-", 1)[1]) - base  # rows committed before P
                visible = query(reader, f"SELECT COALESCE(MAX(id), 0) FROM {t}")[0][0]
                assert visible >= before, (p, visible)
    finally:
        stop.set()
        th.join()


def test_a_trigger_on_a_synced_target_table_is_refused(source, target, unique_db, tmp_path):
    from migrator.errors import TargetError

    db, tdb = unique_db("trg"), unique_db("trg_t")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path,
                            [("a", "CREATE TABLE {name} (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)")])
    _sql(target, "target", f"USE {tdb}", "CREATE TRIGGER bump BEFORE INSERT ON a FOR EACH ROW SET NEW.n = NEW.n + 1")
    _sql(source, "source", f"INSERT INTO {qualified(db, 'a')} VALUES (1, 5)")
    with pytest.raises(TargetError, match=r"bump on .*would fire again"):
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert _sql(target, "target", f"SELECT COUNT(*) FROM {qualified(tdb, 'a')}")[0][0] == 0  # nothing applied


def test_negative_time_literals_keep_their_sign():
    from datetime import timedelta

    from migrator.sync.apply import FAST_LITERALS

    lit = FAST_LITERALS[timedelta]
    assert lit(-timedelta(microseconds=1)) == "'-00:00:00.000001'"
    assert lit(-timedelta(minutes=30)) == "'-00:30:00'"
    assert lit(-timedelta(hours=838, minutes=59, seconds=59)) == "'-838:59:59'"


def test_a_source_process_that_dies_says_why(source, target, unique_db, tmp_path):
    db, tdb = unique_db("die"), unique_db("die_t")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("d", "CREATE TABLE {name} (id INT PRIMARY KEY)")])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root),
                             "--duration", "60"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lock = wd.root / "sync" / f"{source.name}.lock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not wd.sync_checkpoint(source.name).exists():
        time.sleep(0.2)
    os.kill(int(lock.read_text().strip()), signal.SIGKILL)  # the source's process alone, as the OOM killer would
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"source {source.name}: the sync process killed by signal SIGKILL" in err, err[-2000:]
    assert "dmesg" in err and str(wd.sync_log(source.name)) in err and "resume" in err
    assert "replaying 1 table(s)" in err  # the last lines of the source's own log


def test_duration_ending_while_sources_start_is_a_clean_stop(source, target, unique_db, tmp_path):
    db, tdb = unique_db("dur"), unique_db("dur_t")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("d", "CREATE TABLE {name} (id INT PRIMARY KEY)")])
    from sync_helpers import record_copy_start
    record_copy_start(wd, source)  # copy "still running": the source waits for it
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--duration", "1", "--wait-for-copy", timeout=60)
    assert res.returncode == 0, res.stderr


def test_sync_waiting_for_copy_lets_copy_run_in_the_same_work_directory(source, target, unique_db, tmp_path):
    """`sync --wait-for-copy` started before `copy`: it waits without the work directory's lock,
    copy runs and finishes, then sync applies what came after (it held the lock: copy refused)."""
    from plan_helpers import drop_dbs, make_db, url

    db = unique_db("wfc")
    make_db(source, db, ["CREATE TABLE a (id INT PRIMARY KEY, v INT)", "INSERT INTO a VALUES (1, 1), (2, 2)"])
    plan_path, work = tmp_path / "p.yaml", tmp_path / "work"
    try:
        done = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                       "--out", str(plan_path))
        assert done.returncode == 0, done.stdout + done.stderr
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        syncing = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir",
                                    str(work), "--wait-for-copy", "--until-caught-up"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(3)  # sync is waiting now
        copied = run_cli("copy", str(plan_path), "--workdir", str(work), timeout=120)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        _sql(source, "source", f"INSERT INTO {qualified(db, 'a')} VALUES (3, 3)")
        _, err = syncing.communicate(timeout=120)
        assert syncing.returncode == 0, err
        assert "waiting for copy to finish" in err
        res = run_cli("sync", str(plan_path), "--workdir", str(work), "--until-caught-up")
        assert res.returncode == 0, res.stderr
        assert _sql(target, "target", f"SELECT COUNT(*) FROM {qualified(db, 'a')}")[0][0] == 3
    finally:
        drop_dbs(source, [db])
