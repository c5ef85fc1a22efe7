"""Benchmark: plan a fleet of real MariaDB instances (default 20 x 50 tables).

Starts the sources in a temporary sandbox (no target there), fills each with tables of mixed
shapes (integer PK, composite PK, string PK, unique key only, no key, a trigger), plans them
against a target, prints total / per-instance / per-table cost for each --parallel value, and
stops the sources. Never fails on time.

    .venv/bin/python benchmarks/plan_fleet.py --target oceanbase://root@127.0.0.1:PORT
    .venv/bin/python benchmarks/plan_fleet.py --sandbox /work/sbx      # use that sandbox's target
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from migrator.db import query, quote_ident, session  # noqa: E402
from migrator.endpoint import Endpoint, parse_url  # noqa: E402
from migrator.plan.build import build_plan  # noqa: E402
from migrator.sandbox import Sandbox  # noqa: E402

SHAPES = [
    "CREATE TABLE {t} (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), n INT, "
    "KEY k_n (n))",
    "CREATE TABLE {t} (tenant INT NOT NULL, seq INT NOT NULL, amount DECIMAL(12,2), PRIMARY KEY (tenant, seq))",
    "CREATE TABLE {t} (code VARCHAR(36) NOT NULL PRIMARY KEY, body TEXT) DEFAULT CHARSET=latin1",
    "CREATE TABLE {t} (a INT NOT NULL, b VARCHAR(10) NOT NULL, UNIQUE KEY uk (a, b))",
    "CREATE TABLE {t} (at DATETIME NOT NULL, what VARCHAR(64))",
]
INSERTS = [
    "INSERT INTO {t} (v, n) SELECT CONCAT('v', seq), seq % 97 FROM seq_1_to_{rows}",
    "INSERT INTO {t} SELECT seq % 13, seq, seq / 7 FROM seq_1_to_{rows}",
    "INSERT INTO {t} SELECT LPAD(seq, 36, '0'), 'text' FROM seq_1_to_{rows}",
    "INSERT INTO {t} SELECT seq, 'x' FROM seq_1_to_{rows}",
    "INSERT INTO {t} SELECT NOW(), 'x' FROM seq_1_to_{rows}",
]


def fill(ep: Endpoint, tables: int, rows: int) -> None:
    db = quote_ident(f"bench_{ep.name}")  # one shard database per instance, as in a real fleet
    with session(ep, "source") as conn:
        query(conn, f"CREATE DATABASE IF NOT EXISTS {db}")
        query(conn, f"USE {db}")
        for i in range(tables):
            t = quote_ident(f"t{i:03d}")
            query(conn, f"DROP TABLE IF EXISTS {t}")
            query(conn, SHAPES[i % len(SHAPES)].format(t=t))
            query(conn, INSERTS[i % len(INSERTS)].format(t=t, rows=rows))
        query(conn, "CREATE TRIGGER trg_t000 AFTER INSERT ON t000 FOR EACH ROW SET @x = NEW.id")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--tables", type=int, default=50)
    ap.add_argument("--rows", type=int, default=2000, help="rows per table")
    ap.add_argument("--chunk-rows", type=int, default=500)
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--target", help="target URL")
    ap.add_argument("--sandbox", help="take the target URL from DIR/sandbox.yaml")
    args = ap.parse_args()
    if args.target:
        target = parse_url(args.target, "target")
    elif args.sandbox:
        info = yaml.safe_load((Path(args.sandbox) / "sandbox.yaml").read_text())
        target = parse_url(info["target"]["url"], "target")
    else:
        ap.error("give --target URL or --sandbox DIR (a running seekdb/MySQL target)")

    with tempfile.TemporaryDirectory(prefix="plan-bench-") as d:
        sb = Sandbox(Path(d) / "sb")
        t0 = time.monotonic()
        try:
            info, _ = sb.up(args.instances, target=False)
            print(f"started {args.instances} MariaDB instances in {time.monotonic() - t0:.1f}s")
            sources = [parse_url(f"{s.url}?name={s.name}", "source") for s in info.sources]
            t0 = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda ep: fill(ep, args.tables, args.rows), sources))
            print(f"filled {args.instances} x {args.tables} tables x {args.rows} rows in "
                  f"{time.monotonic() - t0:.1f}s")
            for parallel in args.parallel:
                per_source: dict[str, float] = {}
                t0 = time.monotonic()
                plan = build_plan(sources, target, includes=["bench_*.*"], chunk_rows=args.chunk_rows,
                                  parallel=parallel, on_source_done=lambda s, secs: per_source.__setitem__(s, secs))
                total = time.monotonic() - t0
                n_tables = len(plan.tables)
                times = sorted(per_source.values())
                print(f"--parallel {parallel}: planned {n_tables} tables, {sum(len(t.chunks) for t in plan.tables)} "
                      f"chunks, {len(plan.findings)} findings in {total:.2f}s = "
                      f"{1000 * total / max(1, n_tables):.1f} ms/table wall; per instance "
                      f"min {times[0]:.2f}s median {times[len(times) // 2]:.2f}s max {times[-1]:.2f}s "
                      f"({1000 * sum(times) / max(1, n_tables):.1f} ms/table of instance time)")
        finally:
            stopped = sb.down()
            print(f"stopped {stopped} instance(s)")


if __name__ == "__main__":
    main()
