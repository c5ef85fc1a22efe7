"""What reproducing foreign-key cascades costs sync: the same parent/child rows and deletes,
three ways, end to end into the target.

    .venv/bin/python benchmarks/sync_cascade.py [--parents 5000] [--target oceanbase://root@127.0.0.1:PORT]

- churn-plain / churn-fk: parents and children inserted, parents updated (not their keys),
             children deleted; without and with ON DELETE CASCADE foreign keys. Nothing cascades:
             the batches take the usual parallel path; the FK run adds only the check per change
- delete-plain: no foreign keys; every parent deleted with its children, the workload deletes the
             children itself (all in the binlog)
- delete-cascade: ON DELETE CASCADE; the workload deletes parents only, the binlog holds only
             their rows, and sync deletes the children itself (batches holding such deletes are
             applied in order, one transaction each)

Starts one private MariaDB (temp dir, stopped at the end); the target is the sandbox seekdb
unless --target is given. Prints figures (wall clock, and CPU seconds of sync and of the target,
steadier on a shared machine); never fails on time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu import children_cpu, process_cpu  # noqa: E402
from migrator.db import connect, qualified, query, quote_ident  # noqa: E402
from migrator.endpoint import Endpoint, parse_url  # noqa: E402
from migrator.plan.model import Plan, SourcePlan, TablePlan, TargetPlan  # noqa: E402
from migrator.positions import read_position  # noqa: E402
from migrator.sandbox import free_port, start_mariadb, stop_pid  # noqa: E402
from migrator.state import atomic_write_json  # noqa: E402
from migrator.sync.runner import run_sync  # noqa: E402
from migrator.schema.catalog import read_columns  # noqa: E402
from migrator.sync.stream import SyncOptions  # noqa: E402
from migrator.workdir import WorkDir  # noqa: E402
from sync_throughput import sandbox_target  # noqa: E402

PARENT = "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, name VARCHAR(32) NOT NULL, balance DECIMAL(20,4))"
CHILD = """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NOT NULL, amount DECIMAL(20,4), note VARCHAR(64),
  KEY (pid){fk})"""
FK = ", CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES {parent} (id) ON DELETE CASCADE"
CHILDREN = 4  # per parent
PER_TXN = 10  # parents deleted per transaction


def workload(ep: Endpoint, db: str, parents: int, mode: str) -> None:
    """Parents and their children inserted; then churn (parents updated, children deleted) or every
    parent deleted, PER_TXN parents per transaction."""
    with connect(ep, "source", database=db, autocommit=False) as c, c.cursor() as cur:
        for start in range(0, parents, 1000):
            ids = range(start, min(parents, start + 1000))
            cur.executemany("INSERT INTO parent VALUES (%s,%s,%s)", [(i, f"p{i}", i % 1000) for i in ids])
            cur.executemany("INSERT INTO child VALUES (%s,%s,%s,%s)",
                            [(i * CHILDREN + k, i, k, f"child {k} of {i}") for i in ids for k in range(CHILDREN)])
            c.commit()
        for start in range(0, parents, PER_TXN):
            bounds = (start, start + PER_TXN)
            if mode != "delete-cascade":
                cur.execute("DELETE FROM child WHERE pid >= %s AND pid < %s", bounds)
            if mode.startswith("churn"):
                cur.execute("UPDATE parent SET balance = balance + 1 WHERE id >= %s AND id < %s", bounds)
            else:
                cur.execute("DELETE FROM parent WHERE id >= %s AND id < %s", bounds)
            c.commit()


def measure(ep: Endpoint, target: Endpoint, parents: int, mode: str, work: Path, workers: int,
            target_pid: int | None) -> dict:
    db, tdb = f"bench_casc_{mode.replace('-', '_')}", f"bench_casc_{mode.replace('-', '_')}_t"
    for e, role, name in ((ep, "source", db), (target, "target", tdb)):
        with connect(e, role) as conn:
            query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
            query(conn, f"CREATE DATABASE {quote_ident(name)}")
            query(conn, PARENT.format(name=qualified(name, "parent")))
            fk = FK.format(parent=qualified(name, "parent")) if not mode.endswith("plain") else ""
            query(conn, CHILD.format(name=qualified(name, "child"), fk=fk))
    with connect(ep, "source") as s:
        start = read_position(s)
        shapes = {t: read_columns(s, db, t) for t in ("parent", "child")}
    workload(ep, db, parents, mode)
    with connect(ep, "source") as s:
        end = read_position(s)
    plan = Plan(target=TargetPlan(url=target.safe_url(), engine=target.engine),
                sources=[SourcePlan(name=ep.name, url=ep.safe_url(), host=ep.host, port=ep.port)],
                tables=[TablePlan(source=ep.name, database=db, table=t, target_database=tdb, target_table=t,
                                  columns=shapes[t], key=["id"], key_kind="primary") for t in ("parent", "child")])
    wd = WorkDir(work / f"{mode}-{time.monotonic_ns()}")  # a mode run twice starts afresh
    from migrator.copy.state import CopyJournal

    atomic_write_json(wd.copy_position(ep.name), {"start": start.model_dump(mode="json"),
                                                   "end": end.model_dump(mode="json")})
    journal = CopyJournal(wd)
    for t in plan.tables:
        journal.page(t.id, 0, None, 0, 0, True)
    journal.close()
    t0, cpu0, target0 = time.monotonic(), children_cpu() + time.process_time(), process_cpu(target_pid)
    result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=workers, batch_rows=5000))
    seconds = time.monotonic() - t0
    sync_cpu = children_cpu() + time.process_time() - cpu0  # the source process, reaped with the fork server
    target_cpu = process_cpu(target_pid) - target0
    with connect(target, "target") as t:
        left = query(t, f"SELECT (SELECT COUNT(*) FROM {qualified(tdb, 'parent')}) + "
                        f"(SELECT COUNT(*) FROM {qualified(tdb, 'child')})")[0][0]
    binlog_rows = sum(sum(r.rows.values()) for r in result.sources.values())
    # every row inserted, then deleted (children; parents too, or updated)
    target_rows = parents * (1 + CHILDREN) * 2
    return {"mode": mode, "seconds": seconds, "binlog_rows": binlog_rows, "target_rows": target_rows, "left": left,
            "sync_cpu": sync_cpu, "target_cpu": target_cpu,
            "expected_left": parents if mode.startswith("churn") else 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parents", type=int, default=5000)
    ap.add_argument("--target", default=None)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--modes", default="churn-plain,churn-fk,delete-plain,delete-cascade")
    args = ap.parse_args()
    sandbox = None if args.target else sandbox_target()
    target = parse_url(args.target or sandbox["url"], "target")
    target_pid = sandbox["pid"] if sandbox else None  # its CPU: shared with anything else using it
    work = Path(tempfile.mkdtemp(prefix="sync-cascade-bench-"))
    port = free_port()
    proc = start_mariadb(work / "m", port, server_id=990, options={"innodb-buffer-pool-size": "128M"})
    try:
        ep = parse_url(f"mysql://root@127.0.0.1:{port}?name=benchfk", "source")
        for mode in args.modes.split(","):
            r = measure(ep, target, args.parents, mode, work, args.workers, target_pid)
            print(f"{r['mode']:14s}: {r['binlog_rows']:7d} binlog row changes, {r['target_rows']:7d} target row "
                  f"changes in {r['seconds']:5.1f}s = {r['target_rows'] / r['seconds']:8,.0f} target rows/s "
                  f"({r['left']} rows left on the target, {r['expected_left']} expected); CPU s: sync "
                  f"{r['sync_cpu']:.1f}, target {r['target_cpu']:.1f}")
    finally:
        stop_pid(proc.pid)


if __name__ == "__main__":
    main()
