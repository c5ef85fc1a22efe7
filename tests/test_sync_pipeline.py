"""The whole pipeline on real servers: plan -> schema -> copy (while writes go on) -> sync -> verify."""

from __future__ import annotations

import threading

from migrator.copy.runner import run_copy
from migrator.db import connect, qualified, query, quote_ident
from migrator.plan.build import build_plan
from migrator.schema.apply import apply_schema
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir
from sync_helpers import LEDGER_DDL, WALLET_DDL, wallet_workload
from test_sync import assert_same


def test_plan_schema_copy_during_writes_then_sync_verifies_identical(source, target, unique_db, tmp_path):
    db = unique_db("pipe")
    with connect(source, "source") as c:
        query(c, f"CREATE DATABASE {quote_ident(db)}")
        query(c, WALLET_DDL.format(name=qualified(db, "wallet")))
        query(c, LEDGER_DDL.format(name=qualified(db, "ledger")))
    wallet_workload(source, db, n_wallets=50, n_ops=100, seed=11)
    plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=40)
    assert {t.table for t in plan.tables} == {"wallet", "ledger"}
    tdb = plan.tables[0].target_database
    apply_schema(plan, target)
    wd = WorkDir(tmp_path / "work")
    writer = threading.Thread(target=wallet_workload, args=(source, db), kwargs=dict(n_wallets=5, n_ops=300, seed=12))
    writer.start()  # rows change while chunks are read: sync's replay from the start position fixes them
    run_copy(plan, wd)
    writer.join()
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert_same(source, target, db, tdb)
    report = verify_plan(plan, wd)
    assert report.identical, report.model_dump()
