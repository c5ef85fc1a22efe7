"""cutover on a private MariaDB (read-only must never touch the shared sandbox sources)."""

from __future__ import annotations

import json

import pymysql
import pytest

from migrator.cutover import cutover, rollback
from migrator.db import connect, qualified, query
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from sync_helpers import run_cli, wallet_workload
from test_sync_resilience import setup_wallets


def app_insert(port: int, db: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app-pw", database=db, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ledger VALUES (999999, 1, 1.0, 'app write')")
    finally:
        conn.close()


def test_cutover_read_only_drain_verify_report_then_rollback(target, mariadb_factory, unique_db, tmp_path):
    ep = mariadb_factory(name="cutsrc")
    db = unique_db("c")
    tdb = db + "_t"
    wd, plan, plan_path = setup_wallets(ep, target, db, tdb, tmp_path)
    with connect(ep, "source") as c:  # the application's account: no SUPER / READ_ONLY ADMIN
        query(c, "CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw'")
        query(c, f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO 'app'@'127.0.0.1'")
    wallet_workload(ep, db, n_wallets=20, n_ops=80, seed=4)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    wallet_workload(ep, db, n_wallets=2, n_ops=20, seed=5)  # still in flight at cutover: drained by it

    report = cutover(plan, wd, max_lag=300)
    assert report["ok"], report
    assert report["verify"]["identical"] is True
    assert report["write_downtime_seconds"] > 0
    src = report["sources"][ep.name]
    assert src["applied_position"]["pos"] >= src["final_position"]["pos"]
    assert json.loads(wd.cutover_report.read_text())["ok"] is True
    with pytest.raises(pymysql.err.OperationalError) as err:
        app_insert(ep.port, db)
    assert err.value.args[0] == 1290  # --read-only

    rollback(plan, wd)
    app_insert(ep.port, db)  # writable again


def test_cutover_with_differences_leaves_sources_read_only_and_says_how_to_roll_back(target, mariadb_factory,
                                                                                    unique_db, tmp_path):
    ep = mariadb_factory(name="cutbad")
    db = unique_db("c")
    tdb = db + "_t"
    wd, plan, plan_path = setup_wallets(ep, target, db, tdb, tmp_path)
    wallet_workload(ep, db, n_wallets=10, n_ops=20, seed=6)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(target, "target") as t:  # someone wrote to the target behind sync's back
        query(t, f"UPDATE {qualified(tdb, 'wallet')} SET balance = balance + 1 WHERE id = 1")
    res = run_cli("cutover", str(plan_path), "--workdir", str(wd.root), "--yes")
    assert res.returncode == 1, res.stderr
    assert "--rollback" in res.stdout and "read-only" in res.stdout
    with connect(ep, "source") as c:
        assert query(c, "SELECT @@global.read_only")[0][0] == 1
    res = run_cli("cutover", str(plan_path), "--workdir", str(wd.root), "--rollback")
    assert res.returncode == 0, res.stderr
    with connect(ep, "source") as c:
        assert query(c, "SELECT @@global.read_only")[0][0] == 0
