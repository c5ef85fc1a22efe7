"""A fleet of sources syncing at once on one box: start-up, CPU while idle, memory, catch-up.

    .venv/bin/python benchmarks/sync_idle_fleet.py [--sources 100] [--burst 200] [--target URL]

One private MariaDB instance (127.0.0.1, temp dir, stopped at the end) stands in for N source
instances: each source of the plan is that instance under its own name, with its own database
and table, so N source processes each poll and stream a binlog as N real instances would (the
server's own cost is not counted). `migrator sync` runs as a real command; figures come from
/proc for the command's whole process tree (psutil): start-up until every source is caught up,
CPU while every source is idle, RSS and PSS (shared pages counted once), and the time to apply
a burst of `--burst` row changes per source. Prints figures; never fails on time. Goals from
issue 16: under 2 GB and under 5% of one core for 100 idle sources.

`--sources-per-process N` is passed to `migrator sync` (default: its own, one process per core;
1 = the one-process-per-source model). The burst's catch-up time overstates a real fleet's: the
N sources share one binlog here, so every source's stream also reads the other N-1 bursts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from migrator.copy.state import CopyJournal  # noqa: E402
from migrator.db import connect, qualified, query, quote_ident  # noqa: E402
from migrator.endpoint import parse_url  # noqa: E402
from migrator.plan.model import Plan, SourcePlan, TablePlan, TargetPlan, save_plan  # noqa: E402
from migrator.positions import read_position  # noqa: E402
from migrator.sandbox import free_port, start_mariadb, stop_pid  # noqa: E402
from migrator.state import atomic_write_json  # noqa: E402
from migrator.schema.catalog import read_columns  # noqa: E402
from migrator.workdir import WorkDir  # noqa: E402

SANDBOX_FILES = (Path("/work/sbx/sandbox.yaml"), ROOT / ".migrator-sandbox/sandbox.yaml")
TABLE = "CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(32) NOT NULL)"


def target_url(given: str | None) -> str:
    if given:
        return given
    for f in SANDBOX_FILES:
        if f.exists():
            return yaml.safe_load(f.read_text())["target"]["url"]
    raise SystemExit("no sandbox found: pass --target oceanbase://root@127.0.0.1:PORT")


def prepare(port: int, target_url_: str, n: int, work: Path) -> tuple[Path, WorkDir, list[str]]:
    """N named sources over one instance, their tables on both sides, copy recorded as done."""
    target = parse_url(target_url_, "target")
    splans, tables, dbs = [], [], []
    tag = f"idle{port}"
    for i in range(n):
        ep = parse_url(f"mysql://root@127.0.0.1:{port}?name=s{i:03d}", "source")
        db = f"{tag}_{i:03d}"
        with connect(ep, "source") as s, connect(target, "target") as t:
            for conn, name in ((s, db), (t, db)):
                query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
                query(conn, f"CREATE DATABASE {quote_ident(name)}")
                query(conn, TABLE.format(name=qualified(name, "t")))
            cols = read_columns(s, db, "t")
        splans.append(SourcePlan(name=ep.name, url=ep.safe_url(), host=ep.host, port=ep.port, gtid_mode=True))
        tables.append(TablePlan(source=ep.name, database=db, table="t", target_database=db, target_table="t",
                                columns=cols, key=["id"], key_kind="primary"))
        dbs.append(db)
    plan = Plan(target=TargetPlan(url=target.safe_url(), engine=target.engine), sources=splans, tables=tables)
    plan_path = work / "fleet.yaml"
    save_plan(plan, plan_path)
    wd = WorkDir(work / "work")
    with connect(parse_url(f"mysql://root@127.0.0.1:{port}", "source"), "source") as s:
        pos = read_position(s).model_dump(mode="json")
    for sp in splans:
        atomic_write_json(wd.copy_position(sp.name), {"start": pos, "end": pos})
    journal = CopyJournal(wd)
    for t in tables:
        journal.page(t.id, 0, None, 0, 0, True)
    journal.close()
    return plan_path, wd, dbs


def tree(proc: psutil.Process) -> list[psutil.Process]:
    return [proc] + proc.children(recursive=True)


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def memory(procs: list[psutil.Process]) -> tuple[float, float]:
    rss = pss = 0
    for p in procs:
        try:
            m = p.memory_full_info()
            rss, pss = rss + m.rss, pss + m.pss
        except psutil.Error:
            pass
    return rss / 1e6, pss / 1e6


def all_caught_up(wd: WorkDir, names: int, since: float) -> bool:
    done = 0
    for f in (wd.root / "sync").glob("*.json"):
        try:
            cp = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (cp.get("caught_up_at") or 0) >= since and cp.get("head") and \
                (cp["position"]["file"], cp["position"]["pos"]) >= (cp["head"]["file"], cp["head"]["pos"]):
            done += 1
    return done >= names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=30)
    ap.add_argument("--burst", type=int, default=200, help="row changes per source in the burst")
    ap.add_argument("--idle-seconds", type=float, default=20.0)
    ap.add_argument("--target", default=None)
    ap.add_argument("--sources-per-process", type=int, default=None,
                    help="passed to `migrator sync` (default: its own, one process per core)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-idle-"))
    port = free_port()
    server = start_mariadb(work / "m", port, server_id=990, options={"max-connections": str(4 * args.sources + 50)})
    proc, dbs = None, []
    per_process = ["--sources-per-process", str(args.sources_per_process)] if args.sources_per_process else []
    try:
        plan_path, wd, dbs = prepare(port, target_url(args.target), args.sources, work)
        t0 = time.time()
        cmd = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir",
                                str(wd.root), "--workers", "1", *per_process], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
        proc = psutil.Process(cmd.pid)
        while not all_caught_up(wd, args.sources, t0):
            time.sleep(0.5)
            if cmd.poll() is not None:
                raise SystemExit(f"migrator sync exited with {cmd.returncode}")
        startup = time.time() - t0
        time.sleep(5)  # the idle back-off settles
        procs = tree(proc)
        c0, w0 = cpu_seconds(procs), time.time()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(procs) - c0) / (time.time() - w0)
        rss, pss = memory(procs)
        src = parse_url(f"mysql://root@127.0.0.1:{port}", "source")
        with connect(src, "source") as s, s.cursor() as cur:
            t1 = time.time()
            for db in dbs:
                cur.executemany(f"INSERT INTO {qualified(db, 't')} VALUES (%s, %s)",
                                [(i, f"burst {i}") for i in range(args.burst)])
        while not all_caught_up(wd, args.sources, t1):
            time.sleep(0.2)
        catch_up = time.time() - t1
        print(f"{args.sources} sources syncing at once ({len(procs)} processes in all, fork server and coordinator "
              f"included; --sources-per-process {args.sources_per_process or 'default'}): start-up to all caught up "
              f"{startup:.1f} s; idle CPU {100 * idle:.1f}% of one core ({100 * idle / args.sources:.2f}% per source; "
              f"goal for 100 sources: under 5%); memory RSS {rss:,.0f} MB, PSS {pss:,.0f} MB "
              f"({pss / args.sources:.1f} MB per source; goal for 100: under 2 GB); a burst of "
              f"{args.burst} row changes on every source applied in {catch_up:.1f} s")
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
            except (psutil.Error, OSError, subprocess.TimeoutExpired):
                pass
        stop_pid(server.pid)
        drop_target_databases(target_url(args.target), dbs)


def drop_target_databases(url: str, dbs: list[str]) -> None:
    """The benchmark's databases on the (shared) target go with it."""
    with connect(parse_url(url, "target"), "target") as t:
        for db in dbs:
            query(t, f"DROP DATABASE IF EXISTS {quote_ident(db)}")


if __name__ == "__main__":
    main()
