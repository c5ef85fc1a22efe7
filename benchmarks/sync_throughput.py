"""Sync throughput: binlog row changes applied to seekdb end to end, next to the bare parsing
rate of mysql-replication over the same binlog, with 1 source and with 4 sources.

    .venv/bin/python benchmarks/sync_throughput.py [--changes 200000] [--target oceanbase://root@127.0.0.1:PORT]
        [--rows-per-tx N] [--sources 1|4|both] [--reader packets|library|both] [--profile]

--rows-per-tx N writes the same mix as small OLTP transactions of N row changes each (default:
1,000-row statements), where per-transaction costs (positions, GTID state) show. --reader: sync
reading the binlog's packets itself (packets.py, the default) or through mysql-replication's
classes (the reader before it), or both in turn in the same run (default) for the ratio.
--profile runs one source's stream in this process under cProfile and prints its top entries
instead of figures.

Starts 4 private MariaDB instances (127.0.0.1, temp dirs, stopped at the end); the target is the
sandbox seekdb (/work/sbx/sandbox.yaml or .migrator-sandbox) unless --target is given. Prints
figures; never fails on time. Bars from the issue: end-to-end >= 0.8x bare parsing; 4 sources
>= 2x one source.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pymysqlreplication import BinLogStreamReader  # noqa: E402
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent  # noqa: E402

from cpu import TreeCpu, busy_cpu_seconds, process_cpu  # noqa: E402
from migrator.db import connect, qualified, query, quote_ident  # noqa: E402
from migrator.endpoint import Endpoint, parse_url  # noqa: E402
from migrator.plan.model import Plan, SourcePlan, TablePlan, TargetPlan  # noqa: E402
from migrator.positions import BinlogPosition, read_position  # noqa: E402
from migrator.sandbox import free_port, start_mariadb, stop_pid  # noqa: E402
from migrator.state import atomic_write_json  # noqa: E402
from migrator.sync.runner import run_sync  # noqa: E402
from migrator.schema.catalog import read_columns  # noqa: E402
from migrator.sync.stream import SyncOptions  # noqa: E402
from migrator.workdir import WorkDir  # noqa: E402

WALLET = """CREATE TABLE {name} (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY, user_id BIGINT NOT NULL, currency CHAR(3) NOT NULL,
  balance DECIMAL(20,4) NOT NULL, status TINYINT NOT NULL, updated_at DATETIME(6) NOT NULL,
  note VARCHAR(64) NULL, KEY (user_id)
)"""
BATCH = 1000


SANDBOX_FILES = (Path("/work/sbx/sandbox.yaml"), Path(".migrator-sandbox/sandbox.yaml"))


def sandbox_target() -> dict:
    for f in SANDBOX_FILES:
        if f.exists():
            return yaml.safe_load(f.read_text())["target"]
    raise SystemExit("no sandbox found: pass --target oceanbase://root@127.0.0.1:PORT")


def workload(ep: Endpoint, db: str, changes: int, rows_per_tx: int = BATCH) -> None:
    """Mixed e-wallet changes: 50% inserts, 40% balance updates, 10% deletes (row changes), in
    autocommitted statements of `rows_per_tx` row changes each (one transaction per statement)."""
    n_ins, n_upd, n_del = changes // 2, changes * 2 // 5, changes - changes // 2 - changes * 2 // 5
    step = max(1, rows_per_tx)
    with connect(ep, "source") as c, c.cursor() as cur:
        w = qualified(db, "wallet")
        for start in range(0, n_ins, step):
            rows = [(i, i % 997, "IDR", i * 3 % 100000, 1, "2024-01-01 00:00:00.123456", f"w{i}")
                    for i in range(start, min(n_ins, start + step))]
            cur.executemany(f"INSERT INTO {w} VALUES (%s,%s,%s,%s,%s,%s,%s)", rows)
        for start in range(0, n_upd, step):  # one statement, `step` row changes (row-based binlog)
            cur.execute(f"UPDATE {w} SET balance = balance + 1.5, updated_at = NOW(6) WHERE id >= %s AND id < %s",
                        (start % n_ins, min(start % n_ins + step, n_ins)))
        for start in range(n_ins - n_del, n_ins, step):
            cur.execute(f"DELETE FROM {w} WHERE id >= %s AND id < %s", (start, min(start + step, n_ins)))


def bare_parse(ep: Endpoint, start: BinlogPosition, end: BinlogPosition, db: str) -> tuple[int, float]:
    """mysql-replication alone: decode every row of every row event between the positions."""
    t0 = time.monotonic()
    stream = BinLogStreamReader(
        connection_settings={"host": ep.host, "port": ep.port, "user": ep.user, "passwd": ""},
        server_id=0x50000000 + ep.port, blocking=False, resume_stream=True, log_file=start.file, log_pos=start.pos,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], enable_logging=False)
    n = 0
    try:
        for ev in stream:
            if ev.schema == db:
                n += len(ev.rows)
            if (stream.log_file, stream.log_pos) >= (end.file, end.pos):
                break
    finally:
        stream.close()
    return n, time.monotonic() - t0


def prepare(sources: list[Endpoint], target: Endpoint, changes_each: int, work: Path, tag: str, rows_per_tx: int = BATCH):
    tables, splans = [], []
    positions = {}
    for i, ep in enumerate(sources):
        db, tdb = f"bench_{tag}_{i}", f"bench_{tag}_{i}_t"
        with connect(ep, "source") as s, connect(target, "target") as t:
            for conn, name in ((s, db), (t, tdb)):
                query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
                query(conn, f"CREATE DATABASE {quote_ident(name)}")
                query(conn, WALLET.format(name=qualified(name, "wallet")))
            start = read_position(s)
            cols = read_columns(s, db, "wallet")
        workload(ep, db, changes_each, rows_per_tx)
        with connect(ep, "source") as s:
            end = read_position(s)
        positions[ep.name] = (start, end, db)
        splans.append(SourcePlan(name=ep.name, url=ep.safe_url(), host=ep.host, port=ep.port))
        tables.append(TablePlan(source=ep.name, database=db, table="wallet", target_database=tdb,
                                target_table="wallet", columns=cols, key=["id"], key_kind="primary"))
    plan = Plan(target=TargetPlan(url=target.safe_url(), engine=target.engine), sources=splans, tables=tables)
    wd = WorkDir(work / tag)
    from migrator.copy.state import CopyJournal

    journal = CopyJournal(wd)
    for ep in sources:
        start, end, _ = positions[ep.name]
        atomic_write_json(wd.copy_position(ep.name), {"start": start.model_dump(mode="json"),
                                                       "end": end.model_dump(mode="json")})
    for t in tables:
        journal.page(t.id, 0, None, 0, 0, True)
    journal.close()
    return plan, wd, positions


def measure(sources: list[Endpoint], target: Endpoint, total: int, work: Path, tag: str, workers: int,
            pids: dict[str, list[int]], rows_per_tx: int = BATCH, packet_reader: bool = True) -> dict:
    each = total // len(sources)
    plan, wd, positions = prepare(sources, target, each, work, tag, rows_per_tx)
    parsed, parse_s = 0, 0.0
    for ep in sources:  # bare parsing, one source after the other: the single-core parsing rate
        start, end, db = positions[ep.name]
        n, s = bare_parse(ep, start, end, db)
        parsed, parse_s = parsed + n, parse_s + s
    def split() -> dict[str, float]:  # processes whose pid is unknown (a --target server) stay in "the rest"
        return {k: sum(process_cpu(p) for p in ps) for k, ps in pids.items() if ps}

    t0, busy0, split0 = time.monotonic(), busy_cpu_seconds(), split()
    with TreeCpu(exclude=[p for ps in pids.values() for p in ps]) as sync_cpu:  # this process (the coordinator) and the sync processes it starts
        result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=workers, batch_rows=5000,
                                                packet_reader=packet_reader))
    e2e_s = time.monotonic() - t0
    busy = busy_cpu_seconds() - busy0
    cores_busy = busy / e2e_s
    spent = {k: v - split0[k] for k, v in split().items()}
    spent["sync and the rest"] = busy - sum(spent.values())
    applied = sum(sum(r.rows.values()) for r in result.sources.values())
    return {"sources": len(sources), "reader": "packets" if packet_reader else "library", "changes": applied, "sync_us": 1e6 * sync_cpu.seconds / max(1, applied),
            "sync_s": sync_cpu.seconds,
            "parsed": parsed, "parse_rate": parsed / parse_s,
            "e2e_s": e2e_s, "e2e_rate": applied / e2e_s, "cores_busy": cores_busy, "spent": spent}


def profile_one(source: Endpoint, target: Endpoint, total: int, work: Path, workers: int, rows_per_tx: int,
                packet_reader: bool = True) -> None:
    """One source's stream in this process under cProfile (no fork server): where its CPU goes."""
    import cProfile
    import pstats

    from migrator.sync.stream import SourceSync

    plan, wd, _ = prepare([source], target, total, work, "profile", rows_per_tx)
    opts = SyncOptions(until_caught_up=True, workers=workers, batch_rows=5000, packet_reader=packet_reader)
    sync = SourceSync(plan, source.name, wd, opts, stop=lambda: False, report=lambda msg: None)
    prof = cProfile.Profile()
    t0 = time.process_time()
    prof.runcall(sync.run)
    print(f"{total} row changes, {rows_per_tx} per transaction: {1e6 * (time.process_time() - t0) / max(1, total):.1f} "
          f"µs CPU per change in this process (under cProfile)")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(r"sync/|binlogstream|packet|fetchone", 25)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=200_000)
    ap.add_argument("--target", default=None)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rows-per-tx", type=int, default=BATCH, help="row changes per source transaction")
    ap.add_argument("--sources", choices=["1", "4", "both"], default="both")
    ap.add_argument("--reader", choices=["packets", "library", "both"], default="both",
                    help="sync's packet reader, the library's, or both in turn (default)")
    ap.add_argument("--profile", action="store_true", help="profile one source in this process instead")
    args = ap.parse_args()
    sandbox = None if args.target else sandbox_target()
    target = parse_url(args.target or sandbox["url"], "target")
    target_pids = [sandbox["pid"]] if sandbox else []  # known only for the sandbox target
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    procs, sources = [], []
    try:
        for i in range(1 if args.profile or args.sources == "1" else 4):
            port = free_port()
            procs.append(start_mariadb(work / f"m{i}", port, server_id=900 + i,
                                       options={"innodb-buffer-pool-size": "128M"}))
            sources.append(parse_url(f"mysql://root@127.0.0.1:{port}?name=bench{i}", "source"))
        if args.profile:
            profile_one(sources[0], target, args.changes, work, args.workers, args.rows_per_tx, args.reader != "library")
            return
        counts = {"1": (1,), "4": (4,), "both": (1, 4)}[args.sources]
        readers = {"packets": (True,), "library": (False,), "both": (False, True)}[args.reader]
        print(f"row changes per source transaction: {args.rows_per_tx}; load average {os.getloadavg()[0]:.1f}")
        # the same run over an empty binlog range: what a sync run costs before its first change
        # (fork server, imports, setup queries, checkpoints), paid once per run, not per change
        empty = [measure(sources[:n], target, 0, work, f"empty{n}{r}", args.workers,
                         {"target": target_pids, "sources": [p.pid for p in procs[:n]]}, packet_reader=r)
                 for n in counts for r in readers]
        runs = [measure(sources[:n], target, args.changes, work, f"run{n}{r}", args.workers,
                        {"target": target_pids, "sources": [p.pid for p in procs[:n]]}, args.rows_per_tx, r)
                for n in counts for r in readers]
        for r in runs:
            print(f"{r['sources']} source(s), {r['reader']} reader: {r['changes']} row changes applied in {r['e2e_s']:.1f}s = "
                  f"{r['e2e_rate']:,.0f} changes/s end to end; bare mysql-replication parsing "
                  f"{r['parse_rate']:,.0f} rows/s ({r['e2e_rate'] / r['parse_rate']:.2f}x); machine busy "
                  f"{r['cores_busy']:.2f} of {os.cpu_count()} cores")
        for r, e in zip(runs, empty):
            print(f"  sync's own CPU with {r['sources']} source(s), {r['reader']} reader: {r['sync_us']:.1f} µs per applied row change "
                  f"(goal from issue 16: <= 15); {e['sync_s']:.2f} s of it is the run's start (a run with no "
                  f"changes), {1e6 * (r['sync_s'] - e['sync_s']) / max(1, r['changes']):.1f} µs per change beyond it")
        for r in runs:
            print(f"  CPU seconds with {r['sources']} source(s), {r['reader']} reader: " + ", ".join(f"{k} {v:.1f}" for k, v in r["spent"].items()))
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        if len(counts) < 2:
            return
        one, four = runs[len(readers) - 1], runs[-1]
        print(f"4 sources vs 1: {four['e2e_rate'] / one['e2e_rate']:.2f}x (bar 2x; at most "
              f"{os.cpu_count() / one['cores_busy']:.2f}x is possible here: one source already keeps "
              f"{one['cores_busy']:.2f} of {os.cpu_count()} cores busy)")
    finally:
        for p in procs:
            stop_pid(p.pid)


if __name__ == "__main__":
    main()
