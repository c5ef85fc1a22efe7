"""Copy and verify on a real Dask cluster (LocalCluster, worker processes): a worker process is
killed mid-copy and the job still finishes with equal rows; the coordinator alone journals."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from copy_helpers import run_cli
from fleet_helpers import SOURCE_COLUMN, drop_target_database, populate_fleet, target_counts

from migrator.copy.runner import FAULT_ENV, CopyOptions, CopyRunner
from migrator.copy.state import CopyState
from migrator.executor import ExecutorUnavailable, make_executor
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import free_port
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    # Worker processes inherit this: each committed page pauses 0.25 s, so the copy lasts long
    # enough to kill a worker in the middle of it. The coordinating process does not see it.
    os.environ[FAULT_ENV] = "after_commit:*:0.25"
    try:
        cluster = distributed.LocalCluster(n_workers=3, threads_per_worker=2, processes=True, host="127.0.0.1",
                                           dashboard_address=None, silence_logs=40)
    finally:
        del os.environ[FAULT_ENV]
    try:
        yield cluster
    finally:
        cluster.close()


def _busiest_worker_pid(client) -> int:
    processing = client.processing()
    pids = client.run(os.getpid)
    addr = max(processing, key=lambda a: len(processing[a]))
    assert processing[addr], "no task running: the copy ended before the kill"
    return pids[addr]


@pytest.mark.slow
def test_dask_copy_survives_a_killed_worker(cluster, source, source2, target, unique_db, tmp_path: Path):
    prefix, tdb = unique_db("dsk"), unique_db("dskw")
    expected = populate_fleet([source, source2], prefix, shards=2, rows=300)
    plan = build_plan([source, source2], target, includes=[f"{prefix}_*.*"], routes=[f"{prefix}_*.*={tdb}.*"],
                      source_column=SOURCE_COLUMN, chunk_rows=25)
    url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
    wd = WorkDir(tmp_path / "work")
    runner = CopyRunner(plan, wd, CopyOptions(parallel=4, per_source=2, executor=url))
    outcome: dict = {}
    job = threading.Thread(target=lambda: outcome.setdefault("result", runner.run()))
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    try:
        job.start()
        deadline = time.monotonic() + 60
        while _journal_lines(wd) < 8 and job.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = _busiest_worker_pid(client)
        os.kill(killed, signal.SIGKILL)
        job.join(timeout=180)
        assert not job.is_alive()
        result = outcome["result"]
        assert result.ok
        assert killed not in client.run(os.getpid).values()  # the nanny replaced the dead worker
        state = CopyState.load(wd, plan)
        assert state.incomplete_tables() == []
        assert sum(p.rows for p in state.progress()) == expected  # each committed page journaled once
        counts = target_counts(target, tdb)
        assert sum(counts.values()) == expected
        report = verify_plan(plan, wd, parallel=2, executor=url)
        assert report.identical, report.errors
        assert sum(t.rows_target for t in report.tables) == expected
    finally:
        client.close()
        drop_target_database(target, tdb)


def _journal_lines(wd: WorkDir) -> int:
    try:
        return len(wd.copy_journal.read_bytes().splitlines())
    except FileNotFoundError:
        return 0


def test_unreachable_scheduler_is_a_clear_error(source, target, unique_db, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MIGRATOR_DASK_TIMEOUT", "1")
    port = free_port()
    with pytest.raises(ExecutorUnavailable, match=f"Dask scheduler tcp://127.0.0.1:{port} is unreachable"):
        make_executor(f"dask://127.0.0.1:{port}", 2)
    prefix = unique_db("dun")
    populate_fleet([source], prefix, shards=1, rows=5)
    plan = build_plan([source], target, includes=[f"{prefix}_*.*"])
    save_plan(plan, tmp_path / "p.yaml")
    for stage in ("copy", "verify"):
        proc = run_cli(stage, str(tmp_path / "p.yaml"), "--workdir", str(tmp_path / "w"), "--executor",
                       f"dask://127.0.0.1:{port}", env={"MIGRATOR_DASK_TIMEOUT": "1"})
        assert proc.returncode == 2, proc.stderr
        assert f"Dask scheduler tcp://127.0.0.1:{port} is unreachable" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "w" / "copy" / "positions").exists()  # refused before anything was recorded
