"""sync under failure: kill -9 at random points, a purged binlog, a source restart, SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from migrator.db import connect, query
from migrator.errors import SourceError
from migrator.endpoint import parse_url
from migrator.sandbox import free_port, start_mariadb, stop_pid
from migrator.state import read_json
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from sync_helpers import (
    rows_of,
    setup_wallets,
    start_cli,
    sync_killed_while,
    wallet_workload,
)
from test_sync import assert_same


def test_kill_9_at_random_points_then_resume(source, target, unique_db, tmp_path):
    db = unique_db("k")
    tdb = db + "_t"
    wd, plan, plan_path = setup_wallets(source, target, db, tdb, tmp_path)
    rnd = random.Random(7)
    writer = threading.Thread(target=wallet_workload, args=(source, db), kwargs=dict(n_wallets=60, n_ops=1500, seed=9))
    assert sync_killed_while(writer, plan_path, wd, rnd, batch_rows=50, longest=2.5) >= 2
    assert_same(source, target, db, tdb)
    assert read_json(wd.sync_checkpoint(source.name))["position"]["gtid"]  # every resume above went by GTID


def _descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc (parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def test_kill_9_of_sync_leaves_no_source_process_writing(source, target, unique_db, tmp_path):
    """A source process outliving `migrator sync` would keep writing beside the next run."""
    db = unique_db("orph")
    wd, plan, plan_path = setup_wallets(source, target, db, db + "_t", tmp_path)
    proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--duration", "60")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (read_json(wd.sync_checkpoint(source.name)) or {}).get("updated_at"):
        time.sleep(0.2)  # the source process is up once it wrote its first checkpoint
    below = _descendants(proc.pid)
    assert below, "sync started no process of its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in below):
        time.sleep(0.2)
    left = [p for p in below if os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]]
    assert not left, f"processes left running after kill -9 of sync: {left}"


def test_a_source_has_one_sync_writer_at_a_time(source, target, unique_db, tmp_path):
    """The process of a killed sync can outlive it for a moment (it flushes and checkpoints when it
    sees its parent gone); a new run's process waits for it instead of writing beside it."""
    from migrator.sync.runner import hold_source_lock

    db = unique_db("one")
    wd, plan, plan_path = setup_wallets(source, target, db, db + "_t", tmp_path)
    wallet_workload(source, db, n_wallets=10, n_ops=30, seed=5)
    held = hold_source_lock(wd, source.name)  # stands in for the previous run's process
    proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    try:
        deadline = time.monotonic() + 30  # the source process opens its log just before it asks for the lock
        while not wd.sync_log(source.name).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        assert proc.poll() is None and not rows_of(target, "target", db + "_t", "ledger")  # waiting, not writing
    finally:
        os.close(held)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "waiting for the previous sync process" in err
    assert_same(source, target, db, db + "_t")


def test_sigterm_stops_cleanly_and_source_restart_is_survived(target, unique_db, tmp_path):
    port = free_port()
    proc = start_mariadb(tmp_path / "restart", port, server_id=4242)
    try:
        ep = parse_url(f"mysql://root@127.0.0.1:{port}?name=restarting", "source")
        db = unique_db("r")
        tdb = db + "_t"
        wd, plan, plan_path = setup_wallets(ep, target, db, tdb, tmp_path)
        sync = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--duration", "90")
        wallet_workload(ep, db, n_wallets=20, n_ops=100, seed=1)
        time.sleep(1.5)
        stop_pid(proc.pid)  # the source goes away under the stream ...
        time.sleep(1.0)
        proc = start_mariadb(tmp_path / "restart", port, server_id=4242)  # ... and comes back
        wallet_workload(ep, db, n_wallets=5, n_ops=100, seed=2)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if rows_of(ep, "source", db, "ledger") == rows_of(target, "target", tdb, "ledger") and \
                    rows_of(ep, "source", db, "wallet", "SUM(balance)") == rows_of(target, "target", tdb, "wallet", "SUM(balance)"):
                break
            time.sleep(1.0)
        sync.send_signal(signal.SIGTERM)
        _out, err = sync.communicate(timeout=30)
        assert sync.returncode == 0, err
        assert_same(ep, target, db, tdb)
    finally:
        stop_pid(proc.pid)


def test_purged_binlog_is_detected_with_recovery_advice(target, mariadb_factory, unique_db, tmp_path):
    ep = mariadb_factory(options={"max-binlog-size": "4096"}, name="purgy")
    db = unique_db("p")
    tdb = db + "_t"
    wd, plan, _ = setup_wallets(ep, target, db, tdb, tmp_path)
    wallet_workload(ep, db, n_wallets=20, n_ops=60, seed=3)
    with connect(ep, "source") as c:
        query(c, "FLUSH BINARY LOGS")
        last = query(c, "SHOW BINARY LOGS")[-1][0]
        query(c, f"PURGE BINARY LOGS TO '{last}'")
    with pytest.raises(SourceError) as err:
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
    msg = str(err.value)
    assert "purged" in msg and "re-copy" in msg and f"{db}.wallet" in msg
