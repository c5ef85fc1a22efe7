"""A fleet of 30 real MariaDB instances (tiny sharded wallet schemas) merged into the seekdb target
through plan, copy and verify: connection caps, a crash and resume of the whole fleet's checkpoint,
a dead instance that does not stall the others, and throttling on a busy source."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from fleet_helpers import (SOURCE_COLUMN, drop_target_database, fleet_endpoints, flush_status, max_used_connections,
                           populate_fleet, target_counts)

from migrator.copy.runner import FAULT_ENV, CopyOptions, CopyRunner, run_copy
from migrator.copy.state import CopyState
from migrator.progress import Throttled
from migrator.db import connect
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import Sandbox
from migrator.throttle import Throttle, ThrottleOptions
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir

FLEET = 30
SHARDS = 2
ROWS = 120
PER_SOURCE = 2
TARGET_CONNECTIONS = 3
VERIFY_PARALLEL = 4


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    sandbox = Sandbox(tmp_path_factory.mktemp("fleet") / "sbx")
    info, _ = sandbox.up(FLEET, target=False)
    try:
        yield sandbox, info
    finally:
        sandbox.down()


@pytest.mark.slow
def test_fleet_of_30_instances_plan_copy_verify(fleet, target, unique_db, tmp_path: Path):
    sandbox, info = fleet
    eps = fleet_endpoints(info)
    prefix, tdb = unique_db("shard"), unique_db("wallet")
    expected = populate_fleet(eps, prefix, shards=SHARDS, rows=ROWS)
    flush_status(eps)
    plan = build_plan(eps, target, includes=[f"{prefix}_*.*"], routes=[f"{prefix}_*.*={tdb}.*"],
                      source_column=SOURCE_COLUMN, chunk_rows=50)
    assert len(plan.tables) == FLEET * SHARDS * 2
    plan_path = save_plan_file(plan, tmp_path)
    wd = WorkDir(tmp_path / "work")
    try:
        # 1. The copy process is killed (SIGKILL) after its 40th committed page, mid-fleet.
        from copy_helpers import run_cli
        proc = run_cli("copy", str(plan_path), "--workdir", str(wd.root), "--parallel", "8", "--per-source",
                       str(PER_SOURCE), "--target-connections", str(TARGET_CONNECTIONS),
                       env={FAULT_ENV: "after_commit:40"})
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        partial = CopyState.load(wd, plan)
        done_before = sum(p.chunks_done for p in partial.progress())
        assert 0 < done_before < sum(p.chunks_total for p in partial.progress())

        # 2. One instance dies: the others finish, the error names it, its slots are not waited on.
        dead = info.sources[7]
        os.kill(dead.pid, signal.SIGKILL)
        runner = CopyRunner(plan, wd, CopyOptions(parallel=8, per_source=PER_SOURCE, retries=2, retry_delay=0.2,
                                                  target_connections=TARGET_CONNECTIONS))
        started = time.monotonic()
        result = runner.run()
        assert time.monotonic() - started < 60
        failed = {t.table.source for t in result.tables if t.status != "done"}
        assert failed == {eps[7].label}
        state = CopyState.load(wd, plan)
        assert all(state.source_complete(ep.label) for i, ep in enumerate(eps) if i != 7)
        assert all(n <= PER_SOURCE for name, n in runner.conns.peak.items() if name != "\0target")
        assert runner.conns.peak["\0target"] <= TARGET_CONNECTIONS

        # 3. The instance comes back: a rerun resumes the fleet's checkpoint and copies only its chunks.
        sandbox.restart(info)
        result = run_copy(plan, wd, CopyOptions(parallel=8, per_source=PER_SOURCE,
                                                target_connections=TARGET_CONNECTIONS))
        assert result.ok
        assert 0 < result.rows_this_run < expected
        for ep in eps:  # the server's own count of connections at once: per-source cap (+1: the prepare session)
            assert max_used_connections(ep) <= PER_SOURCE + 1, ep.label

        counts = target_counts(target, tdb)
        assert sum(counts.values()) == expected
        assert len(counts) == FLEET * SHARDS * 2

        # 4. verify: one scheduler for the fleet; a source's connections live only while its chunks run
        flush_status(eps)
        stats: dict = {}
        report = verify_plan(plan, wd, parallel=VERIFY_PARALLEL, per_source=PER_SOURCE,
                             target_connections=TARGET_CONNECTIONS, connection_stats=stats)
        assert report.identical, report.errors or [t for t in report.tables if t.status != "identical"][:3]
        assert sum(t.rows_source for t in report.tables) == expected
        assert stats["peak"]["target"] <= TARGET_CONNECTIONS
        assert all(n <= PER_SOURCE for name, n in stats["peak"].items() if name != "target"), stats["peak"]
        assert len(stats["peak"]) == FLEET + 1  # every source was read ...
        assert stats["peak_sources"] <= VERIFY_PARALLEL  # ... but only a few at a time, not all 30
        assert stats["open_after_checksums"] == 0  # each closed after its last chunk
        for ep in eps:  # the servers agree: never more than --per-source verify connections
            assert max_used_connections(ep) <= PER_SOURCE, ep.label
    finally:
        drop_target_database(target, tdb)


def save_plan_file(plan, tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    save_plan(plan, path)
    return path


@pytest.mark.slow
def test_busy_source_throttles_only_itself(fleet, target, unique_db, tmp_path: Path):
    """Threads_running above the limit on one source: its reads wait (reason reported) until the
    load ends; the other sources copy meanwhile."""
    _, info = fleet
    eps = fleet_endpoints(info)[:3]
    prefix, tdb = unique_db("busy"), unique_db("busyw")
    expected = populate_fleet(eps, prefix, shards=1, rows=60)
    plan = build_plan(eps, target, includes=[f"{prefix}_*.*"], routes=[f"{prefix}_*.*={tdb}.*"],
                      source_column=SOURCE_COLUMN, chunk_rows=30)
    busy = eps[0]
    sleepers = [connect(busy, "source") for _ in range(3)]
    load = [threading.Thread(target=lambda c=c: c.cursor().execute("SELECT SLEEP(3)")) for c in sleepers]
    reasons: list[str | None] = []

    class Reporter:  # a progress sink: copy's Throttled events
        def emit(self, event):
            if isinstance(event, Throttled):
                reasons.append(event.reason)

    try:
        for t in load:
            t.start()
        time.sleep(0.3)
        started = time.monotonic()
        result = run_copy(plan, WorkDir(tmp_path / "work"),
                          CopyOptions(parallel=4, per_source=1, max_source_threads_running=2), Reporter())
        took = time.monotonic() - started
        assert result.ok
        assert any(r and f"source {busy.label} busy" in r for r in reasons), reasons
        assert reasons[-1] is None  # the throttling ended and said so
        assert took >= 2.0  # the busy source waited for its load to drop
        assert sum(target_counts(target, tdb).values()) == expected
    finally:
        for t in load:
            t.join()
        for c in sleepers:
            c.close()
        drop_target_database(target, tdb)


def test_target_stall_pauses_writers():
    """A commit far slower than the running median starts a pause that every writer waits out."""
    events: list[str | None] = []
    th = Throttle(ThrottleOptions(stall_factor=5, stall_floor=0.05, min_samples=5, max_pause=0.2), notify=events.append)
    for _ in range(10):
        th.commit_took(0.01)
    assert th.target_wait() == 0.0
    th.commit_took(0.3)  # 30x the median
    assert events and "target write stall" in str(events[0])
    waited = th.target_wait()
    assert 0.1 < waited <= 0.31
    th.target_wait()
    assert events[-1] is None


@pytest.mark.slow
def test_fleet_copy_progress_shows_overall_and_busiest_sources(fleet, target, unique_db, tmp_path: Path):
    """A terminal copy of 30 sources draws the overall bar plus FLEET_BARS bars of the busiest
    sources, not one bar per source; the overall bar counts every row."""
    import io

    from rich.console import Console

    from migrator.copy.progress import FLEET_BARS, RichReporter

    _, info = fleet
    eps = fleet_endpoints(info)
    prefix, tdb = unique_db("bars"), unique_db("barsw")
    expected = populate_fleet(eps, prefix, shards=1, rows=200)
    plan = build_plan(eps, target, includes=[f"{prefix}_*.*"], routes=[f"{prefix}_*.*={tdb}.*"],
                      source_column=SOURCE_COLUMN, chunk_rows=50)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140)
    reporter = RichReporter(console, console, live=True)
    try:
        opts = CopyOptions(parallel=4, per_source=1, initial_page_rows=50, min_page_rows=50, max_page_rows=50)
        result = run_copy(plan, WorkDir(tmp_path / "work"), opts, reporter)
        assert result.ok
        assert reporter.progress is not None
        tasks = reporter.progress.tasks
        assert len(tasks) == FLEET_BARS + 1  # not 31
        overall = reporter.progress._tasks[reporter.tasks["\0all"]]
        assert overall.completed == expected
        out = screen.getvalue()
        assert f"all {FLEET} sources" in out
        assert any(f"  {ep.label}" in out for ep in eps)  # some source had a bar of its own meanwhile
        assert sum(target_counts(target, tdb).values()) == expected
    finally:
        drop_target_database(target, tdb)
