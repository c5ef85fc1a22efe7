"""Benchmark: `migrator copy` against mydumper + myloader, same table, same run, same target.

    .venv/bin/python benchmarks/copy_vs_mydumper.py [--rows 2000000] [--target oceanbase://root@127.0.0.1:PORT]

Starts its own MariaDB source in a temp dir (stopped at the end), generates an e-wallet
transaction table (BIGINT key, DECIMAL, CHAR, ENUM, DATETIME(6), utf8mb4 VARCHAR with emoji,
DOUBLE, JSON, a secondary index; ~100 bytes of data per row), then times into the target:
  (1) mydumper + myloader end to end, (2) myloader alone from that dump, (3) migrator copy.
Prints rows/s, the ratios and the copy's peak RSS. Never fails on time. Target: its own seekdb
in the temp dir (so a shared dev target is not filled), or --target URL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from cpu import children_cpu, process_cpu  # noqa: E402
from migrator.db import connect, query, quote_ident  # noqa: E402
from migrator.endpoint import Endpoint, parse_url  # noqa: E402
from migrator.plan.model import save_plan  # noqa: E402
from migrator.sandbox import free_port, start_mariadb, start_seekdb, stop_pid  # noqa: E402

DDL = """CREATE TABLE wallet_tx (
  id BIGINT NOT NULL PRIMARY KEY,
  account_id BIGINT NOT NULL,
  amount DECIMAL(18,2) NOT NULL,
  currency CHAR(3) NOT NULL,
  kind ENUM('topup','payment','transfer','refund','withdrawal') NOT NULL,
  created_at DATETIME(6) NOT NULL,
  memo VARCHAR(64) NOT NULL,
  fx_rate DOUBLE NOT NULL,
  meta JSON,
  KEY idx_account_created (account_id, created_at)
) DEFAULT CHARSET=utf8mb4"""

FILL = """INSERT INTO wallet_tx
SELECT seq, seq MOD 100003, ROUND((seq * 7919 MOD 1000000) / 100, 2), ELT(1 + seq MOD 3, 'IDR','USD','SGD'),
       1 + seq MOD 5, TIMESTAMPADD(MICROSECOND, seq * 1234567, '2024-01-01 00:00:00'),
       CONCAT('pay ', seq, ' \U0001F4B8 kopi ☕ ', LEFT(MD5(seq), 8)), (seq MOD 9973) / 3.7,
       CONCAT('{"ip": "10.', seq MOD 256, '.', seq DIV 256 MOD 256, '.1", "ok": true, "n": ', seq, '}')
FROM seq_%d_to_%d"""


def sh(args: list[str], what: str) -> float:
    t0 = time.monotonic()
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{what} failed ({res.returncode}): {res.stderr[-2000:]}")
    return time.monotonic() - t0


class CpuMeter:
    """CPU seconds spent by the source server, the target server and the tool during one method."""

    def __init__(self, source_pid: int | None, target_pid: int | None):
        self.pids = {"source": source_pid, "target": target_pid}
        self.spent: dict[str, dict[str, float]] = {}

    def measure(self, name: str, fn):
        before = {k: process_cpu(p) for k, p in self.pids.items()}
        tool0 = children_cpu()
        out = fn()
        self.spent[name] = {k: process_cpu(p) - before[k] for k, p in self.pids.items()}
        self.spent[name]["tool"] = children_cpu() - tool0
        return out


def target_endpoint(url: str | None, tmp: Path, started: list[int]) -> Endpoint:
    if url:
        return parse_url(url, "target")
    port = free_port()
    started.append(start_seekdb(tmp / "target", port).pid)
    return parse_url(f"oceanbase://root@127.0.0.1:{port}", "target")


def drop(ep: Endpoint, db: str) -> None:
    conn = connect(ep, "target")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        if ep.engine == "oceanbase":
            cur.execute("PURGE RECYCLEBIN")  # dropped data would otherwise stay in memory
    conn.close()


def count_and_sum(ep: Endpoint, role: str, db: str) -> tuple:
    conn = connect(ep, role)
    try:
        return tuple(query(conn, f"SELECT COUNT(*), SUM(amount), SUM(LENGTH(memo)) FROM {quote_ident(db)}.wallet_tx")[0])
    finally:
        conn.close()


def generate(src: Endpoint, db: str, rows: int) -> float:
    t0 = time.monotonic()
    conn = connect(src, "source")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(db)}")
        cur.execute(f"USE {quote_ident(db)}")
        cur.execute(DDL)
        step = 200_000
        for lo in range(1, rows + 1, step):
            cur.execute(FILL.replace("seq_%d_to_%d", f"seq_{lo}_to_{min(rows, lo + step - 1)}"))
    conn.close()
    return time.monotonic() - t0


def build(src: Endpoint, tgt: Endpoint, db: str, tdb: str, rows: int, chunks: int):
    """The plan: build_plan when available, else the test helper with even id boundaries."""
    try:
        from migrator.plan.build import build_plan

        plan = build_plan([src], tgt, includes=[f"{db}.*"], chunk_rows=max(1000, rows // chunks))
        for t in plan.tables:
            t.target_database = tdb
        if plan.tables:
            return plan, "build_plan"
    except Exception as exc:  # noqa: BLE001 - benchmark falls back to the helper
        print(f"  (build_plan unavailable: {type(exc).__name__}: {exc}; using the test helper)")
    from copy_helpers import make_plan, table_plan

    conn = connect(src, "source")
    bounds = [[rows * i // chunks] for i in range(1, chunks)]
    tp = table_plan(conn, src.label, db, "wallet_tx", tdb, boundaries=bounds)
    conn.close()
    return make_plan([src], tgt, [tp]), "helper"


def run_copy_process(plan_path: Path, workdir: Path, parallel: int, per_source: int) -> tuple[float, int]:
    """Seconds and peak RSS (KB) of `migrator copy` as its own process."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "copy", str(plan_path), "--workdir",
                             str(workdir), "--parallel", str(parallel), "--per-source", str(per_source)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"migrator copy failed: {out[-3000:]}")
    print(f"  migrator copy: {seconds:.1f}s, CPU user {usage.ru_utime:.1f}s + system {usage.ru_stime:.1f}s")
    return seconds, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--target", help="target URL (default: the dev sandbox seekdb)")
    ap.add_argument("--threads", type=int, default=4, help="mydumper/myloader threads")
    ap.add_argument("--parallel", type=int, default=4, help="migrator copy --parallel (and --per-source)")
    ap.add_argument("--chunks", type=int, default=16, help="plan chunks of the table")
    ap.add_argument("--skip-mydumper", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="copybench-"))
    started: list[int] = []
    port = free_port()
    started.append(start_mariadb(tmp / "src", port, server_id=77).pid)
    tgt = target_endpoint(args.target, tmp, started)
    src = parse_url(f"mysql://root@127.0.0.1:{port}?name=bench", "source")
    db = "bench_wallet"
    tdbs = {k: f"bench_{k}_{os.getpid()}" for k in ("e2e", "load", "copy", "copy2")}
    try:
        secs = generate(src, db, args.rows)
        conn = connect(src, "source")
        query(conn, f"ANALYZE TABLE {quote_ident(db)}.wallet_tx")
        size = query(conn, "SELECT DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                           "AND TABLE_NAME='wallet_tx'", (db,))[0]
        conn.close()
        print(f"source: {args.rows:,} rows generated in {secs:.1f}s (data {size[0] / 2**20:.0f} MB, "
              f"index {size[1] / 2**20:.0f} MB); target {tgt.display()}")
        expected = count_and_sum(src, "source", db)
        results: dict[str, float] = {}
        # copy first: later loads on the same target run beside the compaction of earlier ones
        plan, how = build(src, tgt, db, tdbs["copy"], args.rows, args.chunks)
        plan_path = tmp / "plan.yaml"
        save_plan(plan, plan_path)
        meter = CpuMeter(started[0], started[1] if len(started) > 1 else None)
        t_copy, rss_kb = meter.measure("migrator copy", lambda: run_copy_process(plan_path, tmp / "work", args.parallel, args.parallel))
        results["migrator copy"] = t_copy
        assert count_and_sum(tgt, "target", tdbs["copy"]) == expected, "migrator copy result differs"
        drop(tgt, tdbs["copy"])
        if not args.skip_mydumper:
            dump = tmp / "dump"
            t_dump = meter.measure("mydumper", lambda: sh(["mydumper", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "-B", db, "-T", "wallet_tx",
                         "-o", str(dump), "-t", str(args.threads), "-r", str(max(10000, args.rows // args.chunks)),
                         "--trx-consistency-only"], "mydumper"))
            loader = ["myloader", "-h", tgt.host, "-P", str(tgt.port), "-u", tgt.user, "-d", str(dump),
                      "-t", str(args.threads), "-o"]
            t_load = meter.measure("myloader", lambda: sh(loader + ["-B", tdbs["e2e"]], "myloader"))
            results["mydumper+myloader"] = t_dump + t_load
            assert count_and_sum(tgt, "target", tdbs["e2e"]) == expected, "myloader result differs"
            drop(tgt, tdbs["e2e"])
            results["myloader alone"] = meter.measure("myloader alone", lambda: sh(loader + ["-B", tdbs["load"]], "myloader (2nd)"))
            assert count_and_sum(tgt, "target", tdbs["load"]) == expected, "myloader result differs"
            drop(tgt, tdbs["load"])
            print(f"  mydumper {t_dump:.1f}s, myloader {t_load:.1f}s")
            # copy again after the loads: the same conditions as the second myloader run
            for t in plan.tables:
                t.target_database = tdbs["copy2"]
            save_plan(plan, plan_path)
            t2, rss2 = meter.measure("migrator copy (2nd)", lambda: run_copy_process(plan_path, tmp / "work2", args.parallel, args.parallel))
            assert count_and_sum(tgt, "target", tdbs["copy2"]) == expected, "migrator copy result differs"
            drop(tgt, tdbs["copy2"])
            results["migrator copy (2nd)"] = t2
            rss_kb = max(rss_kb, rss2)
        print(f"\n{'method':<20} {'seconds':>8} {'rows/s':>10}")
        for name, s in sorted(results.items()):
            print(f"{name:<20} {s:8.1f} {args.rows / s:10,.0f}")
        print(f"\nCPU seconds spent ({os.cpu_count()} cores; target known only when the benchmark started it):")
        print(f"{'method':<20} {'source':>8} {'target':>8} {'tool':>8}")
        for name, spent in meter.spent.items():
            print(f"{name:<20} {spent['source']:8.1f} {spent['target']:8.1f} {spent['tool']:8.1f}")
        print(f"\nmigrator copy peak RSS: {rss_kb / 1024:.0f} MB (bar < 500 MB); plan from {how}, "
              f"{len(plan.tables[0].chunks)} chunks, parallel {args.parallel}")
        if "mydumper+myloader" in results:
            t_copy = min(t_copy, results["migrator copy (2nd)"])
            e2e = results["mydumper+myloader"] / t_copy
            alone = t_copy / results["myloader alone"]
            print("(ratios use the faster of the two copy runs)")
            print(f"copy is {e2e:.2f}x faster than mydumper+myloader end to end (bar >= 1.25x)")
            print(f"copy takes {alone:.2f}x the time of myloader alone (bar <= 1.15x)")
    finally:
        if args.target:
            for name in tdbs.values():
                drop(tgt, name)
        for pid in started:
            stop_pid(pid)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
