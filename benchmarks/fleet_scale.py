"""Benchmark: plan + copy + verify of fleets of 10, 30 and 100 real MariaDB instances.

For each size N: starts N sources in a temporary sandbox (fleet-sized memory settings), fills
each with sharded wallet schemas (--shards databases of `ledger` + `accounts`), then runs the whole
job (plan, copy, verify) in ONE child process and reports, per stage, the wall time, and for the
job the peak resident memory of that migrator process (ru_maxrss via wait4), the most
connections it held at once per source and to the target, and the sources' own memory. Merged
into one target database with a source column, as a sharded wallet would be. Never fails on time.

    .venv/bin/python benchmarks/fleet_scale.py --sandbox /work/sbx            # that sandbox's target
    .venv/bin/python benchmarks/fleet_scale.py --target oceanbase://root@127.0.0.1:PORT --sizes 10,30
    .venv/bin/python benchmarks/fleet_scale.py --sizes 30 --trace    # where the memory goes, over time
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import yaml  # noqa: E402
from fleet_helpers import SOURCE_COLUMN, drop_target_database, fleet_endpoints, populate_fleet, target_counts  # noqa: E402

from migrator.endpoint import parse_url  # noqa: E402
from migrator.sandbox import Sandbox  # noqa: E402


def job(spec: dict) -> dict:
    """The migrator side, in its own process: plan, copy, verify; stage times and connection peaks."""
    from migrator.copy.runner import CopyOptions, CopyRunner
    from migrator.plan.build import build_plan
    from migrator.verify.compare import verify_plan
    from migrator.workdir import WorkDir

    eps = [parse_url(u, "source") for u in spec["sources"]]
    target = parse_url(spec["target"], "target")
    out: dict = {}
    t0 = time.monotonic()
    plan = build_plan(eps, target, includes=[f"{spec['prefix']}_*.*"],
                      routes=[f"{spec['prefix']}_*.*={spec['tdb']}.*"], source_column=SOURCE_COLUMN,
                      chunk_rows=spec["chunk_rows"], parallel=spec["parallel"])
    out["plan"] = time.monotonic() - t0
    out["rss_after_plan_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["tables"] = len(plan.tables)
    out["chunks"] = sum(max(1, len(t.chunks)) for t in plan.tables)
    wd = WorkDir(spec["workdir"])
    if spec.get("trace"):
        tracemalloc.start(8)
        before = tracemalloc.take_snapshot()
        threading.Thread(target=sample_memory, daemon=True).start()
    t0 = time.monotonic()
    runner = CopyRunner(plan, wd, CopyOptions(parallel=spec["parallel"], per_source=spec["per_source"],
                                              target_connections=spec["target_connections"]))
    result = runner.run()
    out["copy"] = time.monotonic() - t0
    out["copy_ok"] = result.ok
    out["copy_prepare"] = runner.timing["prepare"]  # shapes, target tables, start positions
    out["rows"] = result.rows
    out["peak_source_conns"] = max(n for k, n in runner.conns.peak.items() if k != "\0target")
    out["peak_target_conns"] = runner.conns.peak.get("\0target", 0)
    out["rss_after_copy_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if spec.get("trace"):
        print_growth(before, tracemalloc.take_snapshot(), "held at the end of copy")
        before = tracemalloc.take_snapshot()
    t0 = time.monotonic()
    stats: dict = {}
    report = verify_plan(plan, wd, parallel=spec["parallel"], per_source=spec["per_source"],
                         target_connections=spec["target_connections"], connection_stats=stats)
    out["verify"] = time.monotonic() - t0
    out["verify_peak_sources"] = stats["peak_sources"]  # sources with connections open at once
    out["rss_after_verify_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["identical"] = report.identical
    out["journal_bytes"] = wd.copy_journal.stat().st_size
    if spec.get("trace"):
        print_growth(before, tracemalloc.take_snapshot(), "held at the end of verify")
    return out


def sample_memory(every: float = 0.5) -> None:
    """--trace: resident memory, Python objects and threads of this process over time (to stderr)."""
    t0 = time.monotonic()
    while True:
        status = Path("/proc/self/status").read_text().splitlines()
        rss = next(int(x.split()[1]) for x in status if x.startswith("VmRSS:")) / 1024
        py = tracemalloc.get_traced_memory()[0] / 2**20
        print(f"t={time.monotonic() - t0:5.1f}s rss={rss:6.1f} MB python={py:5.1f} MB threads={threading.active_count()}",
              file=sys.stderr, flush=True)
        time.sleep(every)


def print_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, title: str) -> None:
    """--trace: the Python allocations that grew the most over a stage, by call site (to stderr)."""
    stats = after.compare_to(before, "traceback")
    grown = sum(st.size_diff for st in stats)
    print(f"--- {title}: {grown / 2**20:+.1f} MB of Python objects", file=sys.stderr)
    for st in stats[:8]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in st.traceback if "migrator" in f.filename][-4:]
        print(f"{st.size_diff / 2**20:+7.2f} MB {st.count_diff:+8d} objs  {' < '.join(reversed(frames)) or st.traceback[0]}",
              file=sys.stderr)


def run_job(spec: dict) -> tuple[dict, float]:
    """The job in a child process; (its result, its peak RSS in MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--job", json.dumps(spec)], stdout=subprocess.PIPE,
                            cwd=ROOT)
    assert proc.stdout is not None
    data = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"job failed with exit code {proc.returncode}")
    return json.loads(data.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def rss_mb(pids: list[int]) -> float:
    out = subprocess.run(["ps", "-o", "rss=", "-p", ",".join(map(str, pids))], capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split()) / 1024


def one_size(n: int, args: argparse.Namespace, target_url: str, base: Path) -> dict:
    sandbox = Sandbox(base / f"fleet{n}")
    t0 = time.monotonic()
    info, _ = sandbox.up(n, target=False)
    up = time.monotonic() - t0
    target = parse_url(target_url, "target")
    prefix, tdb = f"fs{n}_{os.getpid()}", f"bench_fleet{n}_{os.getpid()}"
    try:
        eps = fleet_endpoints(info)
        expected = populate_fleet(eps, prefix, shards=args.shards, rows=args.rows)
        spec = {"sources": [s.url for s in info.sources], "target": target_url, "prefix": prefix, "tdb": tdb,
                "chunk_rows": args.chunk_rows, "parallel": args.parallel, "per_source": args.per_source,
                "target_connections": args.target_connections, "workdir": str(base / f"work{n}"),
                "trace": args.trace}
        res, peak = run_job(spec)
        res.update(n=n, up=up, expected=expected, peak_rss_mb=peak, sources_rss_mb=rss_mb([s.pid for s in info.sources]))
        res["target_rows"] = sum(target_counts(target, tdb).values())
        return res
    finally:
        drop_target_database(target, tdb)
        if not os.environ.get("FLEET_BENCH_KEEP"):
            sandbox.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--target", help="Target URL (default: --sandbox's target).")
    ap.add_argument("--sandbox", default=os.environ.get("MIGRATOR_TEST_SANDBOX", "/work/sbx"))
    ap.add_argument("--sizes", default="10,30,100")
    ap.add_argument("--shards", type=int, default=2, help="Shard databases per instance.")
    ap.add_argument("--rows", type=int, default=500, help="ledger rows per shard (accounts: 17).")
    ap.add_argument("--chunk-rows", type=int, default=250)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--per-source", type=int, default=2)
    ap.add_argument("--target-connections", type=int, default=4)
    ap.add_argument("--trace", action="store_true",
                    help="Print the Python allocations each stage kept (tracemalloc; slower, RSS not comparable).")
    args = ap.parse_args()
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    target_url = args.target or yaml.safe_load((Path(args.sandbox) / "sandbox.yaml").read_text())["target"]["url"]
    results = []
    with tempfile.TemporaryDirectory(prefix="fleet-bench-", dir=os.environ.get("FLEET_BENCH_DIR")) as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            r = one_size(n, args, target_url, Path(tmp))
            results.append(r)
            print(f"N={n}: {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()})}",
                  flush=True)
    print()
    print(f"{'N':>4} {'tables':>6} {'chunks':>6} {'rows':>8} {'up s':>6} {'plan s':>7} {'copy s':>7} {'verify s':>8} "
          f"{'job s':>6} {'rows/s':>7} {'peak RSS':>9} {'src conns':>9} {'tgt conns':>9} {'sources RSS':>11} ok")
    for r in results:
        total = r["plan"] + r["copy"] + r["verify"]
        ok = r["copy_ok"] and r["identical"] and r["target_rows"] == r["expected"]
        print(f"{r['n']:>4} {r['tables']:>6} {r['chunks']:>6} {r['rows']:>8} {r['up']:>6.1f} {r['plan']:>7.1f} "
              f"{r['copy']:>7.1f} {r['verify']:>8.1f} {total:>6.1f} {r['rows'] / r['copy']:>7.0f} "
              f"{r['peak_rss_mb']:>7.0f}MB {r['peak_source_conns']:>9} {r['peak_target_conns']:>9} "
              f"{r['sources_rss_mb']:>9.0f}MB {'yes' if ok else 'NO'}")
    if len(results) > 1:
        a, b = results[0], results[-1]
        ta, tb = (x["plan"] + x["copy"] + x["verify"] for x in (a, b))
        print(f"\n{a['n']} -> {b['n']} instances ({b['n'] / a['n']:.0f}x): job time x{tb / ta:.1f}, "
              f"peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
