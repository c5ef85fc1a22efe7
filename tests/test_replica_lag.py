"""--max-replica-lag on a fleet copy: a source whose real MariaDB replica lags waits; the other
source copies on; when the replica catches up the waiting source copies too."""

from __future__ import annotations

import time

import pymysql

from migrator.db import connect, quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.throttle import discover_replicas

from conftest import drop_databases
from copy_helpers import execute
from sync_helpers import start_cli


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


def test_only_the_source_with_a_lagging_replica_waits(mariadb_factory, source2, target, unique_db, tmp_path):
    primary = mariadb_factory(name="rprim")
    replica = mariadb_factory({"report-host": "127.0.0.1"}, name="rrep")
    execute(replica, "source", f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
                               "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos", "START SLAVE")
    db1, db2 = unique_db("lagp"), unique_db("lago")
    for ep, db in ((primary, db1), (source2, db2)):
        execute(ep, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
                "INSERT INTO t SELECT seq, CONCAT('value ', seq) FROM seq_1_to_2000")
    try:
        wait_for("the replica to have the rows", lambda: count(replica, "source", db1) == 2000)
        found = discover_replicas(primary)  # SHOW SLAVE HOSTS names it (report_host)
        assert [(r.host, r.port) for r in found] == [("127.0.0.1", replica.port)]
        # make the replica lag: it applies events 10 minutes late; one write starts the clock
        execute(replica, "source", "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=600", "START SLAVE")
        execute(primary, "source", f"USE {quote_ident(db1)}", "CREATE TABLE beat (id INT PRIMARY KEY)",
                "INSERT INTO beat VALUES (1)")
        wait_for("the replica to lag", lambda: (replica_lag(replica) or 0) >= 2)
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
            execute(replica, "source", "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE")
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
        drop_databases(source2, "source", [db2])
        drop_databases(target, "target", [db1, db2])
