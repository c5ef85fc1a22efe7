"""Sync on a real Dask cluster (LocalCluster, worker processes): a source's stream is a long-lived
task; its worker is killed mid-stream under a write load, the source resumes on another worker
from the checkpoint the target holds, and a row oracle finds source and target equal."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from sync_helpers import ROOT, rows_of, run_cli, setup_tables, write_plan
from test_sync_xa import wait_for

from migrator.db import connect, qualified, query
from migrator.positions import BinlogPosition
from migrator.state import read_json
from migrator.sync.targetstate import NOW, TABLE, copy_start_key

distributed = pytest.importorskip("distributed")

T = [("t", "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(40))")]
LEASE = "6"


@pytest.fixture(scope="module")
def cluster():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=40)
    try:
        yield cluster
    finally:
        cluster.close()


def workload(source, db: str, stop: threading.Event, seed: int) -> None:
    """Small transactions until stopped: inserts, updates (some of the key), deletes."""
    rnd = random.Random(seed)
    t = qualified(db, "t")
    live: list[int] = []
    next_id = 1
    with connect(source, "source") as c:
        while not stop.is_set():
            op = rnd.random()
            if op < 0.5 or len(live) < 5:
                query(c, f"INSERT INTO {t} VALUES (%s, %s, %s)", (next_id, rnd.randrange(1000), f"n{next_id}"))
                live.append(next_id)
                next_id += 1
            elif op < 0.8:
                query(c, f"UPDATE {t} SET v = v + 1, note = %s WHERE id = %s", (f"u{op:.3f}", rnd.choice(live)))
            elif op < 0.9:
                old = live.pop(rnd.randrange(len(live)))
                query(c, f"UPDATE {t} SET id = %s WHERE id = %s", (next_id, old))
                live.append(next_id)
                next_id += 1
            else:
                query(c, f"DELETE FROM {t} WHERE id = %s", (live.pop(rnd.randrange(len(live))),))
            time.sleep(0.01)


def holder(target, wd, source: str) -> tuple[int, float, int] | None:
    """(pid of the process holding the source's lease, seconds left on it, rows applied)."""
    start = BinlogPosition.model_validate(read_json(wd.copy_position(source))["start"])
    with connect(target, "target") as t:
        rows = query(t, f"SELECT `owner_note`, `lease_expires` - {NOW}, `checkpoint` FROM {TABLE} WHERE `source` = %s "
                        "AND `copy_start` = %s", (source, copy_start_key(start)))
    if not rows or not rows[0][0]:
        return None
    applied = sum(json.loads(rows[0][2])["rows"].values()) if rows[0][2] else 0
    return int(json.loads(rows[0][0])["pid"]), float(rows[0][1]), applied


def test_sync_on_dask_moves_a_source_when_its_worker_is_killed(cluster, source, target, unique_db, tmp_path):
    db = unique_db("dsy")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    stop = threading.Event()
    writer = threading.Thread(target=workload, args=(source, db, stop, 7))
    writer.start()
    err = open(tmp_path / "sync.stderr", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root),
                             "--executor", url, "--lease-seconds", LEASE, "--batch-rows", "50"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        first = wait_for("a worker syncing the source", lambda: (h := holder(target, wd, source.name)) and h[1] > 0
                         and h[2] > 20 and h, timeout=90)
        workers = client.run(os.getpid)
        assert first[0] in workers.values()  # the stream runs in a Dask worker process, not the coordinator
        os.kill(first[0], signal.SIGKILL)
        moved = wait_for("the source on another worker", lambda: (h := holder(target, wd, source.name))
                         and h[0] != first[0] and h[1] > 0 and h[2] > first[2] and h, timeout=120)
        assert moved[0] in client.run(os.getpid).values()
        time.sleep(2)  # more changes land through the new worker
        stop.set()
        writer.join()
        wait_for("target equal to source", lambda: rows_of(target, "target", tdb, "t") == rows_of(source, "source", db,
                                                                                                    "t"), timeout=120)
        assert proc.poll() is None, (tmp_path / "sync.stderr").read_text()
        wait_for("the work directory's view", lambda: str(moved[0]) in read_json(wd.sync_checkpoint(source.name))
                 .get("runs_on", ""), timeout=30)
        status = run_cli("status", str(plan_path), "--workdir", str(wd.root), "--json")
        assert f"pid {moved[0]}" in status.stdout, status.stdout  # where the source runs now
    finally:
        stop.set()
        writer.join()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
        client.close()
        err.close()
    assert code == 0, (tmp_path / "sync.stderr").read_text()
    assert rows_of(target, "target", tdb, "t") == rows_of(source, "source", db, "t")
    h = holder(target, wd, source.name)
    assert h is not None and h[1] <= 0  # a clean stop released the lease


def test_sync_on_dask_survives_a_kill_9_of_the_coordinator(cluster, source, target, unique_db, tmp_path):
    """The coordinator's process group is killed: its tasks stop once its heartbeat is gone
    (releasing their leases); a new coordinator's tasks resume from the target's checkpoint."""
    db = unique_db("dsc")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, T)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    stop = threading.Event()
    writer = threading.Thread(target=workload, args=(source, db, stop, 11))
    writer.start()
    args = [sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", str(wd.root), "--executor", url,
            "--lease-seconds", LEASE, "--batch-rows", "50"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        first = wait_for("a worker syncing the source", lambda: (h := holder(target, wd, source.name)) and h[1] > 0
                         and h[2] > 20 and h, timeout=90)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # the orphaned task stops and releases the lease (no stray writer left behind)
        wait_for("the orphan's lease released", lambda: holder(target, wd, source.name)[1] <= 0, timeout=60)
        stop.set()
        writer.join()
        res = run_cli("sync", *args[4:], "--until-caught-up", timeout=180)
        assert res.returncode == 0, res.stderr
        assert rows_of(target, "target", tdb, "t") == rows_of(source, "source", db, "t")
        assert holder(target, wd, source.name)[2] > first[2]
    finally:
        stop.set()
        writer.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
