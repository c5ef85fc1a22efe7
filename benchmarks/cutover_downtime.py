"""Write downtime of cutover at 1x and 4x the data, same write rate: full verify vs dirty chunks.

    .venv/bin/python benchmarks/cutover_downtime.py [--accounts 5000] [--rate 25] [--sandbox /work/sbx]

The e-wallet fleet of the demo (8 shards, `--accounts` per shard; the demo has 40000) on two
private MariaDB sources (cutover makes them read-only: never the shared ones), merged into a
target database of its own on the sandbox's seekdb target. For each size (1x, 4x accounts):
plan, schema, copy; sync runs while transfers run at `--rate` per source per second; then,
with the transfers still running:
  1. a dirty-chunk cutover (the default: chunks not clean are checked before read-only, the
     window re-verifies only what changed since), rollback;
  2. a `--full-verify` cutover (every chunk checksummed in the window), rollback.
Prints each cutover's write downtime and its parts (read-only, drain, verify), the chunks
verified in the window (how many by key, and the keys compared), what was checked before
read-only, where the window's verify time went, and the load average. Never fails on time.
Takes a few minutes at the default size.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migrator.copy.runner import CopyOptions, run_copy
from migrator.cutover import cutover, rollback
from migrator.cutover_report import CutoverVerify, DowntimeParts
from migrator.db import connect, quote_ident
from migrator.demo import PLAN_ARGS, SyncThread, load_example
from migrator.endpoint import parse_url
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import free_port, start_mariadb, stop_pid
from migrator.schema.apply import apply_schema
from migrator.verify.report import TableResult, VerifyReport
from migrator.workdir import WorkDir


class Transfers(threading.Thread):
    """Transfers at `rate` per second on each source; waits out read-only (cutover) and goes on."""

    def __init__(self, ewallet, placement: dict, accounts: int, rate: float):
        super().__init__(daemon=True)
        self.ewallet, self.placement, self.accounts, self.rate = ewallet, placement, accounts, rate
        self.stop = threading.Event()
        self.done = 0

    def run(self) -> None:
        rnd = random.Random(7)
        by_ep: dict[str, list[str]] = {}
        for db, ep in self.placement.items():
            by_ep.setdefault(ep.label, []).append(db)
        conns = {db: pymysql.connect(host=ep.host, port=ep.port, user="app", password="app-pw", database=db,
                                     autocommit=False) for db, ep in self.placement.items()}
        n = 0
        try:
            while not self.stop.is_set():
                for dbs in by_ep.values():  # one transfer per source per tick
                    try:
                        self.ewallet.transfer(conns[dbs[n % len(dbs)]], rnd, self.accounts)
                        self.done += 1
                    except pymysql.err.MySQLError:
                        pass  # read-only during cutover: the application's writes fail meanwhile
                n += 1
                self.stop.wait(1.0 / self.rate)
        finally:
            for c in conns.values():
                c.close()


def one_size(sources, target, accounts: int, rate: float, work: Path, tdb: str, parallel: int) -> list[dict]:
    ewallet = load_example("ewallet")
    where = ewallet.generate([(e.host, e.port) for e in sources], accounts)
    by_addr = {f"{e.host}:{e.port}": e for e in sources}
    placement = {db: by_addr[addr] for db, addr in where.items()}
    with connect(target, "target") as t, t.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
    args = {**PLAN_ARGS, "routes": [f"wallet_*.*={tdb}.*"]}
    plan = build_plan(sources, target, name="bench", **args)
    plan_path = work / f"plan-{accounts}.yaml"
    save_plan(plan, plan_path)
    if not apply_schema(plan, target).ok:
        raise SystemExit("schema apply failed")
    wd = WorkDir(work / f"wd-{accounts}")
    t0 = time.monotonic()
    copied = run_copy(plan, wd, CopyOptions(), None, plan_path=plan_path)
    chunks = sum(len(t.chunks) or 1 for t in plan.active_tables())
    print(f"  {accounts} accounts/shard: {copied.rows:,} rows, {chunks} chunks, copied in {time.monotonic() - t0:.1f}s",
          flush=True)
    sync = SyncThread(plan, wd)
    sync.start()
    load = Transfers(ewallet, placement, accounts, rate)
    load.start()
    out = []
    try:
        sync.wait_caught_up(time.monotonic())
        time.sleep(3.0)  # transfers flowing, sync applying
        for full in (False, True):
            sync.wait_caught_up(time.monotonic())
            t1 = time.monotonic()
            rep = cutover(plan, wd, max_lag=60, full_verify=full, parallel=parallel)
            rollback(plan, wd)
            v = rep.verify or CutoverVerify()
            parts = rep.downtime_parts or DowntimeParts()
            row = {"accounts": accounts, "rows": copied.rows, "chunks": chunks, "mode": "full" if full else "dirty",
                   "ok": rep.ok, "downtime": rep.write_downtime_seconds, **parts.model_dump(),
                   "verified_in_window": v.chunks if full else v.reverified,
                   "by_key": v.reverified_by_key, "keys": v.rows_compared_by_key,
                   "checked_before": rep.checked_before_read_only,
                   "keys_before": rep.keys_compared_before_read_only, "cutover_seconds": time.monotonic() - t1,
                   "sync_catch_up": rep.sync_catch_up_seconds}
            if full:
                row["verified_in_window"] = sum(t.chunks for t in _tables(wd)) or chunks
            out.append(row)
            print(f"  {row['mode']:5s} ok={row['ok']} downtime {row['downtime']:.2f}s = read-only "
                  f"{row['read_only_seconds']:.2f} + drain {row['drain_seconds']:.2f} + verify "
                  f"{row['verify_seconds']:.2f}; chunks verified in the window {row['verified_in_window']}"
                  + (f" ({row['by_key']} by {row['keys']} key(s))" if row["by_key"] is not None else "") + " "
                  f"(before read-only: checked {row['checked_before']} whole, {row['keys_before']} keys, waited {row['sync_catch_up']}s for sync)",
                  flush=True)
            if v.seconds is not None:
                print(f"    window verify parts: {v.seconds.model_dump()}", flush=True)
            if not rep.ok:
                print(f"    {rep.next_step}", flush=True)
            time.sleep(3.0)
    finally:
        load.stop.set()
        load.join()
        sync.stop()
        with connect(target, "target") as t, t.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
    return out


def _tables(wd: WorkDir) -> list[TableResult]:
    report = VerifyReport.load(wd.verify_report)
    return report.tables if report else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=5000, help="accounts per shard at 1x (the demo: 40000)")
    ap.add_argument("--rate", type=float, default=25.0, help="transfers per second per source")
    ap.add_argument("--parallel", type=int, default=4, help="chunks re-verified at once in the window")
    ap.add_argument("--sandbox", default="/work/sbx", help="sandbox directory (its seekdb target is used)")
    args = ap.parse_args()
    info = yaml.safe_load((Path(args.sandbox) / "sandbox.yaml").read_text())
    target = parse_url(info["target"]["url"], "target")
    base = Path(tempfile.mkdtemp(prefix="cutover-bench-"))
    procs, sources = [], []
    try:
        for i in range(2):
            port = free_port()
            procs.append(start_mariadb(base / f"src{i}", port, server_id=700 + i))
            sources.append(parse_url(f"mysql://root@127.0.0.1:{port}?name=bsrc{i}", "source"))
            with connect(sources[-1], "source") as c, c.cursor() as cur:  # the application: no SUPER, so
                cur.execute("CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'")  # read_only stops it
                cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON `wallet\\_%`.* TO 'app'@'127.0.0.1'")
        rows = []
        print(f"load average at the start: {os.getloadavg()}")
        for mult in (1, 4):
            print(f"{mult}x: {args.accounts * mult} accounts per shard, {args.rate:.0f} transfers/s per source", flush=True)
            rows += one_size(sources, target, args.accounts * mult, args.rate, base, f"bench_cut_{os.getpid()}",
                             args.parallel)
        print("\nsize  rows       chunks  mode   downtime  read-only  drain  verify  chunks verified in window")
        for r in rows:
            print(f"{r['accounts'] // args.accounts}x    {r['rows']:<10,} {r['chunks']:<7} {r['mode']:6s} "
                  f"{r['downtime']:7.2f}s  {r['read_only_seconds']:8.2f}  {r['drain_seconds']:5.2f}  "
                  f"{r['verify_seconds']:6.2f}  {r['verified_in_window']}"
                  + (f" ({r['by_key']} by {r['keys']} key(s))" if r["by_key"] is not None else ""))
        print(f"load average at the end: {os.getloadavg()}")
    finally:
        for p in procs:
            stop_pid(p.pid)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
