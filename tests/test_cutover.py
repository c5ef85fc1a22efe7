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
    assert report.ok, report
    assert report.verify.identical is True
    assert report.write_downtime_seconds > 0
    src = report.sources[ep.name]
    assert src.applied_position.key() >= src.final_position.key()
    on_disk = json.loads(wd.cutover_report.read_text())
    assert on_disk["ok"] is True and on_disk["sources"][ep.name]["final_position"]["pos"] > 0
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


def _read_only(ep) -> int:
    with connect(ep, "source") as c:
        return query(c, "SELECT @@global.read_only")[0][0]


def test_read_only_is_all_or_nothing_and_rollback_restores_previous_values(target, mariadb_factory, unique_db,
                                                                           tmp_path):
    from migrator.errors import SourceError
    from migrator.cutover import set_read_only
    from migrator.sandbox import free_port

    ep = mariadb_factory(name="cutro")
    db = unique_db("c")
    wd, plan, plan_path = setup_wallets(ep, target, db, db + "_t", tmp_path)
    # a second source that went away between the lag check and read_only: the first must not be
    # left read-only without a word
    dead = free_port()
    two = plan.model_copy(deep=True)
    two.sources.append(two.sources[0].model_copy(update={"name": "gone", "port": dead,
                                                         "url": two.sources[0].url.replace(f":{ep.port}", f":{dead}")}))
    with pytest.raises(SourceError) as err:
        set_read_only(two, True)
    assert str(dead) in str(err.value)
    assert _read_only(ep) == 0

    # a source that was read-only before cutover is read-only again after rollback, even when
    # cutover ran twice (the second run saw read_only=ON set by the first)
    with connect(ep, "source") as c:
        query(c, "SET GLOBAL read_only = ON")
    try:
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        assert cutover(plan, wd, max_lag=300, verify=False).ok
        assert cutover(plan, wd, max_lag=300, verify=False).ok
        rollback(plan, wd)
        assert _read_only(ep) == 1
        # a source writable before cutover is writable after rollback, even after a rerun
        with connect(ep, "source") as c:
            query(c, "SET GLOBAL read_only = OFF")
        assert cutover(plan, wd, max_lag=300, verify=False).ok
        assert cutover(plan, wd, max_lag=300, verify=False).ok
        rollback(plan, wd)
        assert _read_only(ep) == 0
    finally:
        with connect(ep, "source") as c:
            query(c, "SET GLOBAL read_only = OFF")


def test_cutover_verify_does_not_reuse_chunks_an_interrupted_verify_found_identical(target, mariadb_factory,
                                                                                   unique_db, tmp_path):
    from migrator.verify.compare import VerifyJournal

    ep = mariadb_factory(name="cutjr")
    db = unique_db("c")
    tdb = db + "_t"
    wd, plan, plan_path = setup_wallets(ep, target, db, tdb, tmp_path)
    wallet_workload(ep, db, n_wallets=10, n_ops=20, seed=7)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    # an earlier `migrator verify` found every chunk identical, then was interrupted (no "done")
    journal = VerifyJournal(wd, plan.fingerprint(), restart=True)
    for tp in plan.tables:
        journal.record(tp.id, 0, True, (10, 10))
    journal.close()
    with connect(target, "target") as t:  # the target changed since
        query(t, f"UPDATE {qualified(tdb, 'wallet')} SET balance = balance + 1 WHERE id = 1")
    report = cutover(plan, wd, max_lag=300)
    assert report.verify.identical is False, report
    assert not report.ok
    rollback(plan, wd)


def test_write_downtime_counts_the_wait_for_read_only(target, mariadb_factory, unique_db, tmp_path):
    # SET GLOBAL read_only waits for a running write; writes are already stalled while it waits
    import threading
    import time

    ep = mariadb_factory(name="cutdt")
    db = unique_db("c")
    wd, plan, plan_path = setup_wallets(ep, target, db, db + "_t", tmp_path)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))

    def slow_write() -> None:
        with connect(ep, "source") as c:
            query(c, f"INSERT INTO {qualified(db, 'ledger')} SELECT 999998, 1, 1.0, 'slow' FROM DUAL "
                     "WHERE SLEEP(3) = 0")

    writer = threading.Thread(target=slow_write)
    writer.start()
    time.sleep(0.3)
    try:
        report = cutover(plan, wd, max_lag=300, verify=False)
    finally:
        writer.join()
        rollback(plan, wd)
    assert report.ok, report
    assert report.write_downtime_seconds >= 2.5, report


def test_a_killed_cutovers_partial_report_is_honoured_and_a_corrupt_one_stops_cutover(target, mariadb_factory,
                                                                                       unique_db, tmp_path):
    """report.json as a cutover killed while making the sources read-only leaves it (no verify,
    no downtime, no positions yet): rollback and a rerun restore the read_only value recorded
    there. A corrupt report.json stops cutover and rollback with an error naming the file, before
    any source is changed."""
    from migrator.errors import StateError

    ep = mariadb_factory(name="cutpart")
    db = unique_db("c")
    wd, plan, plan_path = setup_wallets(ep, target, db, db + "_t", tmp_path)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    partial = {"started_at": "2026-01-01T00:00:00+00:00", "ok": False, "sources": {}, "lag_before": {ep.name: 0.0},
               "read_only_at": "2026-01-01T00:00:01+00:00", "read_only_before": {ep.name: {"read_only": 1}},
               "next_step": "cutover making the sources read-only, or killed: rerun `migrator cutover PLAN`, or "
                            "roll back with --rollback"}
    try:
        wd.cutover_report.parent.mkdir(parents=True, exist_ok=True)
        wd.cutover_report.write_text(json.dumps(partial))
        assert "read-only again" in rollback(plan, wd)[0]  # the value recorded before the killed cutover
        assert _read_only(ep) == 1
        assert json.loads(wd.cutover_report.read_text())["rolled_back_at"]

        wd.cutover_report.write_text(json.dumps(partial))
        with connect(ep, "source") as c:
            query(c, "SET GLOBAL read_only = OFF")  # as if the killed run had got no further than this source
        assert cutover(plan, wd, max_lag=300, verify=False).ok  # the rerun keeps the value from before
        assert json.loads(wd.cutover_report.read_text())["read_only_before"] == {ep.name: {"read_only": 1}}
        rollback(plan, wd)
        assert _read_only(ep) == 1

        with connect(ep, "source") as c:
            query(c, "SET GLOBAL read_only = OFF")
        for bad in ('{"read_only_before": {', json.dumps({"read_only_before": {ep.name: "ON"}})):  # cut, edited
            wd.cutover_report.write_text(bad)
            for run in (lambda: cutover(plan, wd, max_lag=300, verify=False), lambda: rollback(plan, wd)):
                with pytest.raises(StateError) as err:
                    run()
                assert str(wd.cutover_report) in str(err.value) and "corrupt" in str(err.value)
                assert "move the file aside" in str(err.value)
                assert _read_only(ep) == 0  # nothing changed on the source
        res = run_cli("cutover", str(plan_path), "--workdir", str(wd.root), "--rollback")
        assert res.returncode == 3 and "is corrupt" in res.stderr, (res.returncode, res.stderr)
    finally:
        with connect(ep, "source") as c:
            query(c, "SET GLOBAL read_only = OFF")
