"""Test helpers for sync: plans built from information_schema, copy positions, a naive copy,
table comparisons. (Until plan/copy land these stand in for `migrator plan` / `migrator copy`.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from migrator.db import connect, qualified, query, quote_ident
from migrator.endpoint import Endpoint
from migrator.plan.model import Plan, SourcePlan, TablePlan, TargetPlan, save_plan
from migrator.positions import read_position
from migrator.state import atomic_write_json
from migrator.schema.catalog import read_columns
from migrator.workdir import WorkDir

ROOT = Path(__file__).resolve().parents[1]

WALLET_DDL = """CREATE TABLE {name} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner VARCHAR(64) NOT NULL,
  email VARCHAR(128) NULL,
  balance DECIMAL(20,4) NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NULL,
  flags BIT(5) NOT NULL DEFAULT b'0',
  UNIQUE KEY uk_email (email)
) ENGINE=InnoDB"""

LEDGER_DDL = """CREATE TABLE {name} (
  wallet_id BIGINT UNSIGNED NOT NULL,
  seq INT NOT NULL,
  amount DECIMAL(20,4) NOT NULL,
  note TEXT,
  PRIMARY KEY (wallet_id, seq)
) ENGINE=InnoDB"""


def table_key(conn, db: str, table: str) -> list[str]:
    rows = query(conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                       "AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX", (db, table))
    return [r[0] for r in rows]


def make_plan(sources: list[Endpoint], target: Endpoint,
              tables: list[tuple[str, str, str, str, str, str | None]]) -> Plan:
    """tables: (source name, db, table, target db, target table, source_column)."""
    splans, tplans = [], []
    for ep in sources:
        with connect(ep, "source") as c:
            version = query(c, "SELECT VERSION()")[0][0]
        splans.append(SourcePlan(name=ep.name, url=ep.safe_url(), host=ep.host, port=ep.port, version=version,
                                 flavor="mariadb" if "mariadb" in version.lower() else "mysql", gtid_mode=True))
    by_name = {ep.name: ep for ep in sources}
    for src, db, table, tdb, ttable, scol in tables:
        with connect(by_name[src], "source") as c:
            cols = read_columns(c, db, table)
            key = table_key(c, db, table)
        tplans.append(TablePlan(source=src, database=db, table=table, target_database=tdb, target_table=ttable,
                                columns=cols, key=key, key_kind="primary", source_column=scol))
    return Plan(target=TargetPlan(url=target.safe_url(), engine=target.engine), sources=splans, tables=tplans)


def write_plan(plan: Plan, path: Path) -> Path:
    save_plan(plan, path)
    return path


def record_copy_start(workdir: WorkDir, ep: Endpoint) -> None:
    with connect(ep, "source") as c:
        pos = read_position(c)
    atomic_write_json(workdir.copy_position(ep.name), {"start": pos.model_dump(mode="json"), "end": None})


def record_copy_end(workdir: WorkDir, ep: Endpoint) -> None:
    from migrator.state import read_json

    raw = read_json(workdir.copy_position(ep.name))
    with connect(ep, "source") as c:
        pos = read_position(c)
    raw["end"] = pos.model_dump(mode="json")
    atomic_write_json(workdir.copy_position(ep.name), raw)


def mark_copied(workdir: WorkDir, plan: Plan) -> None:
    """Record every chunk of every table as copied (the copy journal, as `migrator copy` writes it)."""
    from migrator.copy.state import CopyJournal, chunk_ids

    journal = CopyJournal(workdir)
    for t in plan.tables:
        for c in chunk_ids(t):
            journal.page(t.id, c, None, 0, 0, True)
    journal.close()


def naive_copy(src: Endpoint, tgt: Endpoint, db: str, table: str, tdb: str, ttable: str,
               source_column: str | None = None, source_value: str | None = None) -> int:
    """SELECT everything, REPLACE it on the target (what a chunk copy does, in one chunk)."""
    with connect(src, "source") as s, connect(tgt, "target") as t:
        cols = [c.name for c in read_columns(s, db, table) if not c.generated]
        rows = query(s, f"SELECT {','.join(quote_ident(c) for c in cols)} FROM {qualified(db, table)}")
        if source_column:
            cols = cols + [source_column]
            rows = [tuple(r) + (source_value,) for r in rows]
        if rows:
            with t.cursor() as cur:
                cur.executemany(f"REPLACE INTO {qualified(tdb, ttable)} ({','.join(quote_ident(c) for c in cols)}) "
                                f"VALUES ({','.join(['%s'] * len(cols))})", rows)
        return len(rows)


def create_both(src: Endpoint, tgt: Endpoint, db: str, tdb: str, ddls: list[tuple[str, str]]) -> None:
    """Create db on the source and tdb on the target with the same tables (ddls: (table, DDL template))."""
    with connect(src, "source") as s, connect(tgt, "target") as t:
        query(s, f"CREATE DATABASE IF NOT EXISTS {quote_ident(db)}")
        query(t, f"CREATE DATABASE IF NOT EXISTS {quote_ident(tdb)}")
        for table, ddl in ddls:
            query(s, ddl.format(name=qualified(db, table)))
            query(t, ddl.format(name=qualified(tdb, table)))


def create_plain_both(src: Endpoint, tgt: Endpoint, db: str, tdb: str, ddls: list[tuple[str, str]]) -> None:
    """Create db on the source and tdb on the target, each with the same tables (ddls: (table,
    plain CREATE TABLE run inside the database))."""
    for ep, role, name in ((src, "source", db), (tgt, "target", tdb)):
        with connect(ep, role) as c:
            query(c, f"CREATE DATABASE {quote_ident(name)}")
        with connect(ep, role, database=name) as c:
            for _, ddl in ddls:
                query(c, ddl)


def rows_of(ep: Endpoint, role: str, db: str, table: str, columns: str = "*", order: str = "1") -> list[tuple]:
    with connect(ep, role) as c:
        return query(c, f"SELECT {columns} FROM {qualified(db, table)} ORDER BY {order}")


def wallet_workload(ep: Endpoint, db: str, n_wallets: int = 50, n_ops: int = 300, seed: int = 1) -> None:
    """Wallets created, transfers between them inside transactions (sum of balances constant),
    ledger rows inserted and deleted, an email moved between wallets (unique key), a key change."""
    rnd = random.Random(seed)
    with connect(ep, "source", autocommit=False) as c, c.cursor() as cur:
        w = qualified(db, "wallet")
        l = qualified(db, "ledger")
        cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {w}")
        base = cur.fetchone()[0]
        for i in range(n_wallets):
            cur.execute(f"INSERT INTO {w} (owner, email, balance, updated_at, flags) VALUES (%s,%s,%s,NOW(6),%s)",
                        (f"o{base + i}", f"u{base + i}@x.id", Decimal("1000.0000"), rnd.randrange(32)))
        c.commit()
        cur.execute(f"SELECT id FROM {w}")
        ids = [r[0] for r in cur.fetchall()]
        seq = rnd.randrange(1_000_000)
        for op in range(n_ops):
            a, b = rnd.sample(ids, 2)
            amt = Decimal(rnd.randrange(1, 10000)) / 100
            cur.execute(f"UPDATE {w} SET balance = balance - %s, updated_at = NOW(6) WHERE id = %s", (amt, a))
            cur.execute(f"UPDATE {w} SET balance = balance + %s, updated_at = NOW(6) WHERE id = %s", (amt, b))
            seq += 1
            cur.execute(f"INSERT INTO {l} VALUES (%s,%s,%s,%s)", (a, seq, -amt, f"to {b} ünïcode ✓"))
            if op % 7 == 0:
                cur.execute(f"DELETE FROM {l} WHERE wallet_id = %s ORDER BY seq LIMIT 1", (b,))
            if op % 11 == 0:  # the email moves: unique-key conflict if replayed in the wrong order
                cur.execute(f"UPDATE {w} SET email = NULL WHERE id = %s", (a,))
                cur.execute(f"UPDATE {w} SET email = %s WHERE id = %s", (f"moved{seed}_{op}@x.id", b))
            if op % 13 == 0:  # a primary key change
                cur.execute(f"UPDATE {l} SET seq = seq + 5000000 WHERE wallet_id = %s AND seq = %s", (a, seq))
            c.commit()


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrator.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrator.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def copy_done(wd: WorkDir, plan: Plan, *sources: Endpoint) -> None:
    """Record the copy as finished with nothing between its start and end positions."""
    for ep in sources:
        record_copy_start(wd, ep)
        record_copy_end(wd, ep)
    mark_copied(wd, plan)


def setup_tables(source: Endpoint, target: Endpoint, db: str, tdb: str, tmp_path: Path,
                 ddls: list[tuple[str, str]]) -> tuple[WorkDir, Plan]:
    """Tables created on both sides, planned one to one, and marked copied."""
    create_both(source, target, db, tdb, ddls)
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddls])
    copy_done(wd, plan, source)
    return wd, plan


def setup_wallets(source: Endpoint, target: Endpoint, db: str, tdb: str, tmp_path: Path):
    """Two tables (wallet, ledger) created on both sides, planned, and marked copied."""
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("wallet", WALLET_DDL), ("ledger", LEDGER_DDL)])
    return wd, plan, write_plan(plan, tmp_path / "plan.yaml")


def merged_shards(target: Endpoint, shards: list[tuple[Endpoint, str]], tdb: str, shard_ddl: str, merged_ddl: str,
                  tmp_path: Path) -> tuple[WorkDir, Plan]:
    """Shard databases (one `wallet` table each, on their instances) merged into tdb.wallet with a
    `shard` source column; planned and marked copied."""
    with connect(target, "target") as t:
        query(t, f"CREATE DATABASE {quote_ident(tdb)}")
        query(t, merged_ddl.format(name=qualified(tdb, "wallet")))
    for ep, db in shards:
        with connect(ep, "source") as c:
            query(c, f"CREATE DATABASE {quote_ident(db)}")
            query(c, shard_ddl.format(name=qualified(db, "wallet")))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan(list({ep.name: ep for ep, _ in shards}.values()), target,
                     [(ep.name, db, "wallet", tdb, "wallet", "shard") for ep, db in shards])
    copy_done(wd, plan, *{ep.name: ep for ep, _ in shards}.values())
    return wd, plan


def sync_killed_while(writer, plan_path: Path, wd: WorkDir, rnd: random.Random, batch_rows: int,
                      longest: float) -> int:
    """Start the writer thread; meanwhile start `migrator sync` and kill -9 it after 1..longest s
    (process start-up is ~1 s: kills land mid-apply), at least twice, at most four times; then
    resume with --until-caught-up. Returns how many kills there were."""
    writer.start()
    kills = 0
    while (writer.is_alive() or kills < 2) and kills < 4:
        proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--batch-rows", str(batch_rows))
        time.sleep(rnd.uniform(1.0, longest))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    writer.join()
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    return kills


def forget_target_checkpoint(target: Endpoint, wd: WorkDir, source: str) -> None:
    """Delete the sync checkpoint the target holds for this work directory's copy of `source`: a
    test that rewinds the work directory's checkpoint file then resumes from that file alone."""
    from migrator.positions import BinlogPosition
    from migrator.state import read_json
    from migrator.sync.targetstate import TABLE, copy_start_key

    start = BinlogPosition.model_validate(read_json(wd.copy_position(source))["start"])
    with connect(target, "target") as t:
        query(t, f"DELETE FROM {TABLE} WHERE `source` = %s AND `copy_start` = %s", (source, copy_start_key(start)))
