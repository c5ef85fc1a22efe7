"""--max-replica-lag on a fleet copy and a fleet verify: a source whose real MariaDB replica lags
waits; the other source is read on; when the replica catches up the waiting source is read too."""

from __future__ import annotations

import json
import time

import pymysql
import pytest
from click.testing import CliRunner
from conftest import drop_databases
from copy_helpers import execute
from sync_helpers import start_cli

from migrator.cli import main
from migrator.db import connect, quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.throttle import discover_replicas


def count(ep, role: str, db: str) -> int:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {quote_ident(db)}.t")
            return int(cur.fetchone()[0])
    except pymysql.err.MySQLError:
        return 0
    finally:
        conn.close()


def replica_lag(replica) -> float | None:
    conn = connect(replica, "source")
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            row = cur.fetchone()
            return None if not row else row["Seconds_Behind_Master"]
    finally:
        conn.close()


def wait_for(what, predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def replicated(mariadb_factory):
    """A MariaDB primary (plan name rprim) and its real replica (started with report_host)."""
    primary = mariadb_factory(name="rprim")
    replica = mariadb_factory({"report-host": "127.0.0.1"}, name="rrep")
    execute(replica, "source", f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
                               "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos", "START SLAVE")
    return primary, replica


def make_replica_lag(primary, replica, db: str) -> None:
    """The replica applies events 10 minutes late from now on; one write starts the clock."""
    execute(replica, "source", "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=600", "START SLAVE")
    execute(primary, "source", f"USE {quote_ident(db)}", "CREATE TABLE IF NOT EXISTS beat (id INT PRIMARY KEY)",
            "REPLACE INTO beat VALUES (1)")
    wait_for("the replica to lag", lambda: (replica_lag(replica) or 0) >= 2)


def end_replica_lag(replica) -> None:
    execute(replica, "source", "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")


def test_only_the_source_with_a_lagging_replica_waits(replicated, source2, target, unique_db, tmp_path):
    primary, replica = replicated
    db1, db2 = unique_db("lagp"), unique_db("lago")
    for ep, db in ((primary, db1), (source2, db2)):
        execute(ep, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
                "INSERT INTO t SELECT seq, CONCAT('value ', seq) FROM seq_1_to_2000")
    try:
        wait_for("the replica to have the rows", lambda: count(replica, "source", db1) == 2000)
        found = discover_replicas(primary)  # SHOW SLAVE HOSTS names it (report_host)
        assert [(r.host, r.port) for r in found] == [("127.0.0.1", replica.port)]
        make_replica_lag(primary, replica, db1)
        plan = build_plan([primary, source2], target, includes=[f"{db1}.t", f"{db2}.t"], chunk_rows=1000)
        path = tmp_path / "plan.yaml"
        save_plan(plan, path)
        proc = start_cli("copy", str(path), "--workdir", str(tmp_path / "work"), "--page-rows", "50",
                         "--max-replica-lag", "1", "--replica", f"rprim=mysql://root@127.0.0.1:{replica.port}",
                         "--progress-interval", "0.5")
        try:
            wait_for("the other source's copy", lambda: count(target, "target", db2) == 2000, timeout=120)
            assert count(target, "target", db1) == 0, "the source whose replica lags was read"
            time.sleep(1.0)
            assert count(target, "target", db1) == 0
            end_replica_lag(replica)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert count(target, "target", db1) == 2000
        assert f"throttling: source rprim: replica 127.0.0.1:{replica.port} lags" in err
        assert "(--max-replica-lag 1s)" in err
        assert "src2" not in err.split("throttling:", 1)[1].split("\n", 1)[0]
    finally:
        end_replica_lag(replica)
        drop_databases(primary, "source", [db1])
        drop_databases(source2, "source", [db2])
        drop_databases(target, "target", [db1, db2])


def live_verify(work) -> dict:
    try:
        return json.loads((work / "live" / "verify.json").read_text())
    except (OSError, ValueError):
        return {}


def test_verify_reads_a_source_only_while_its_replica_keeps_up(replicated, source2, target, unique_db, tmp_path):
    """verify reads every source row, so it lags replicas as copy does: the same option, the same wait."""
    primary, replica = replicated
    db1, db2 = unique_db("vlagp"), unique_db("vlago")
    try:
        for ep, db in ((primary, db1), (source2, db2)):
            for side, role in ((ep, "source"), (target, "target")):  # the same rows on both sides
                execute(side, role, f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
                        "INSERT INTO t VALUES " + ", ".join(f"({i}, 'value {i}')" for i in range(1, 2001)))
        wait_for("the replica to have the rows", lambda: count(replica, "source", db1) == 2000)
        make_replica_lag(primary, replica, db1)
        plan = build_plan([primary, source2], target, includes=[f"{db1}.t", f"{db2}.t"], chunk_rows=1000)
        path, work = tmp_path / "plan.yaml", tmp_path / "work"
        save_plan(plan, path)
        proc = start_cli("verify", str(path), "--workdir", str(work), "--max-replica-lag", "1",
                         "--replica", f"rprim=mysql://root@127.0.0.1:{replica.port}", "--progress-interval", "0.3")
        try:
            # the other source's chunks are verified; the lagging source's wait, with the reason shown
            try:
                wait_for("the other source's chunks", lambda: live_verify(work).get("rows") == 2000
                         and "rprim" in (live_verify(work).get("throttled") or ""), timeout=60)
            except AssertionError:
                proc.kill()
                out, err = proc.communicate()
                raise AssertionError(f"live: {live_verify(work)}\n{out}\n{err}") from None
            time.sleep(1.0)
            live = live_verify(work)
            assert live["rows"] == 2000 and live["chunks_done"] * 2 == live["chunks_total"], live
            assert proc.poll() is None, "verify ended while the replica lagged"
            end_replica_lag(replica)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out + err
        report = json.loads((work / "verify" / "report.json").read_text())
        assert report["identical"] and sum(t["rows_source"] for t in report["tables"]) == 4000
        assert f"throttling: source rprim: replica 127.0.0.1:{replica.port} lags" in err
        assert "(--max-replica-lag 1s)" in err and "src2" not in err.split("throttling:", 1)[1].split("\n", 1)[0]
    finally:
        end_replica_lag(replica)
        drop_databases(primary, "source", [db1])
        drop_databases(source2, "source", [db2])
        drop_databases(target, "target", [db1, db2])


def test_max_replica_lag_is_refused_with_a_remote_executor(source, target, tmp_path):
    """Dask workers read the sources and watch no replica: say so instead of not throttling."""
    path = tmp_path / "plan.yaml"
    save_plan(build_plan([source], target, includes=["nothing_here.*"]), path)
    for command in ("copy", "verify"):
        res = CliRunner().invoke(main, [command, str(path), "--workdir", str(tmp_path / "w"), "--max-replica-lag", "5",
                                        "--replica", "src1=mysql://root@127.0.0.1:1", "--executor",
                                        "dask://127.0.0.1:1"])
        assert res.exit_code == 2, res.output
        assert "--max-replica-lag works with local reads only" in res.output
