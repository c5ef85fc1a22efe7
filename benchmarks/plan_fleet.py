"""Benchmark: plan a fleet of real MariaDB instances (default 20 x 50 tables), or write and load
the plan file of a generated fleet (--synthetic, default 300 x 100 = 30,000 tables).

Real mode starts the sources in a temporary sandbox (no target there), fills each with tables of
mixed shapes (integer PK, composite PK, string PK, unique key only, no key, a trigger), plans them
against a target, prints total / per-instance / per-table cost for each --parallel value, and
stops the sources.

--synthetic needs no server: it builds a plan of INSTANCES x TABLES tables as a sharded fleet has
them (~10 columns, 4 chunks, source and rewritten DDL and a change per table; one schema shared by
the shards), writes it with save_plan, loads it with load_plan (best of --repeat, wall and CPU
seconds: CPU is what other processes on a busy machine do not inflate), loads it once more as a
hand-edited plan (YAML parsed, no cache), and prints the YAML size, the catalog size and the
reviewed bytes per table. The goal: 30,000 tables load in <= 2 s. Never fails on time.

    .venv/bin/python benchmarks/plan_fleet.py --target oceanbase://root@127.0.0.1:PORT
    .venv/bin/python benchmarks/plan_fleet.py --sandbox /work/sbx      # use that sandbox's target
    .venv/bin/python benchmarks/plan_fleet.py --synthetic [--instances 300 --tables 100]
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


COLUMNS = [  # name, data_type, column_type, nullable, charset, collation, extra
    ("id", "bigint", "bigint(20) unsigned", False, None, None, "auto_increment"),
    ("tenant_id", "int", "int(11)", False, None, None, ""),
    ("name", "varchar", "varchar(64)", True, "utf8mb4", "utf8mb4_general_ci", ""),
    ("amount", "decimal", "decimal(12,2)", True, None, None, ""),
    ("status", "enum", "enum('new','paid','void')", False, "utf8mb4", "utf8mb4_general_ci", ""),
    ("note", "text", "text", True, "utf8mb4", "utf8mb4_general_ci", ""),
    ("flag", "tinyint", "tinyint(1)", False, None, None, ""),
    ("ref", "char", "char(36)", True, "latin1", "latin1_swedish_ci", ""),
    ("created_at", "datetime", "datetime", False, None, None, ""),
    ("updated_at", "timestamp", "timestamp", False, None, None, "on update current_timestamp()"),
]


def synthetic_plan(instances: int, tables: int):  # -> Plan
    from migrator.plan.model import Plan

    def ddl(name: str, charset: str) -> str:
        cols = ",\n".join(f"  `{c[0]}` {c[2]}{'' if c[3] else ' NOT NULL'}"
                          + (" CHARACTER SET latin1" if c[4] == "latin1" and charset == "latin1" else "") for c in COLUMNS)
        return (f"CREATE TABLE `{name}` (\n{cols},\n  PRIMARY KEY (`id`),\n  KEY `k_tenant` (`tenant_id`),\n"
                f"  KEY `k_created` (`created_at`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci")

    columns = [dict(name=f"{c[0]}", data_type=c[1], column_type=c[2], nullable=c[3], charset=c[4], collation=c[5],
                    extra=c[6]) for c in COLUMNS]
    sources, rows = [], []
    for i in range(instances):
        src = f"db-{i:03d}"
        sources.append(dict(name=src, url=f"mysql://migrator@{src}.prod:3306?name={src}", host=f"{src}.prod",
                            port=3306, version="10.11.6-MariaDB-log", flavor="mariadb", server_id=i + 1,
                            gtid_mode=True))
        for t in range(tables):
            name = f"t{t:03d}"
            step = 25_000 + t
            rows.append(dict(
                source=src, database=f"shop_{i:03d}", table=name, target_database="shop", target_table=name,
                columns=columns, key=["id"], key_kind="primary", estimated_rows=4 * step, estimated_bytes=400 * step,
                chunks=[dict(id=j, lower=[j * step + i] if j else None, upper=[(j + 1) * step + i] if j < 3 else None,
                             estimated_rows=step) for j in range(4)],
                source_ddl=ddl(name, "latin1"), target_ddl=ddl(name, "utf8mb4"), source_column="__source",
                changes=[dict(rule="charset.latin1-to-utf8mb4", severity="rewrite",
                              reason="latin1 column converted to utf8mb4 (the target stores every text as utf8mb4)",
                              before="`ref` char(36) CHARACTER SET latin1", after="`ref` char(36)")],
                shape_fingerprint=f"{t:016x}"))
    return Plan.model_validate(dict(
        name="fleet", created_at="2026-11-29T00:00:00+00:00", migrator_version="bench",
        target=dict(url="oceanbase://root@ob.prod:2881", engine="oceanbase",
                    version="5.7.25-OceanBase seekdb-v1.4.0.0"),
        sources=sources, includes=["shop_*.*"], routes=[dict(source_pattern="shop_*.*", target_database="shop",
                                                             target_table="*", source_column="__source")],
        tables=rows, findings=[], foreign_keys=[]))


def timed(fn):  # -> (result, wall seconds, CPU seconds of this process)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_synthetic(instances: int, tables: int, repeat: int) -> None:
    from migrator.plan.model import catalog_path, load_plan, save_plan

    plan, wall, cpu = timed(lambda: synthetic_plan(instances, tables))
    n = len(plan.tables)
    print(f"generated {instances} x {tables} = {n} tables in {wall:.1f}s")
    with tempfile.TemporaryDirectory(prefix="plan-file-bench-") as d:
        path = Path(d) / "fleet.yaml"
        _, wall, cpu = timed(lambda: save_plan(plan, path))
        size, csize = path.stat().st_size, catalog_path(path).stat().st_size
        print(f"plan write: {n} tables in {wall:.2f}s wall, {cpu:.2f}s CPU")
        print(f"plan size: reviewed YAML {size / 1e6:.2f} MB ({size / n:.0f} bytes per table), "
              f"catalog {csize / 1e6:.2f} MB ({csize / n:.0f} bytes per table)")
        best = None
        for _ in range(repeat):
            loaded, wall, cpu = timed(lambda: load_plan(path))
            best = (wall, cpu) if best is None or cpu < best[1] else best
        assert loaded.fingerprint() == plan.fingerprint() and len(loaded.tables) == n
        per_30k = best[1] * 30_000 / n
        print(f"plan load: {n} tables in {best[0]:.2f}s wall, {best[1]:.2f}s CPU (best of {repeat}); "
              f"{per_30k:.2f}s CPU per 30,000 tables (goal <= 2 s: {'met' if per_30k <= 2 else 'NOT met'})")
        _, wall, cpu = timed(loaded.fingerprint)
        print(f"plan fingerprint: {wall:.2f}s wall, {cpu:.2f}s CPU")
        path.write_text(path.read_text() + "# reviewed\n")  # a hand edit: the YAML is parsed again
        edited, wall, cpu = timed(lambda: load_plan(path))
        assert edited.fingerprint() == plan.fingerprint()
        print(f"plan load after a hand edit (YAML parsed): {wall:.2f}s wall, {cpu:.2f}s CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", action="store_true", help="write and load a generated plan (no servers)")
    ap.add_argument("--repeat", type=int, default=3, help="--synthetic: loads to time (best is printed)")
    ap.add_argument("--instances", type=int, help="default 20 (real) / 300 (--synthetic)")
    ap.add_argument("--tables", type=int, help="tables per instance, default 50 (real) / 100 (--synthetic)")
    ap.add_argument("--rows", type=int, default=2000, help="rows per table")
    ap.add_argument("--chunk-rows", type=int, default=500)
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--target", help="target URL")
    ap.add_argument("--sandbox", help="take the target URL from DIR/sandbox.yaml")
    args = ap.parse_args()
    if args.synthetic:
        run_synthetic(args.instances or 300, args.tables or 100, args.repeat)
        return
    args.instances, args.tables = args.instances or 20, args.tables or 50
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
