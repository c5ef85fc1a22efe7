"""sync against the real servers: workload on MariaDB, binlog replayed into seekdb."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from migrator.db import connect, qualified, query
from migrator.errors import StateError
from migrator.sync.runner import run_sync, sync_status
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir
from sync_helpers import (
    LEDGER_DDL,
    WALLET_DDL,
    copy_done,
    create_both,
    make_plan,
    mark_copied,
    naive_copy,
    record_copy_end,
    record_copy_start,
    rows_of,
    run_cli,
    wallet_workload,
    write_plan,
)

WALLET_COLS = "id, owner, email, balance, updated_at, flags + 0"


def assert_same(source, target, db, tdb):
    for table, cols in (("wallet", WALLET_COLS), ("ledger", "*")):
        src = rows_of(source, "source", db, table, cols)
        tgt = rows_of(target, "target", tdb, table, cols)
        assert len(src) == len(tgt), f"{table}: {len(src)} source rows vs {len(tgt)} target rows"
        assert src == tgt, f"{table}: rows differ"
    total = "SUM(balance)"
    assert rows_of(source, "source", db, "wallet", total) == rows_of(target, "target", tdb, "wallet", total)


@pytest.fixture
def wallet_setup(source, target, unique_db, tmp_path):
    db = unique_db("w")
    tdb = db + "_t"
    create_both(source, target, db, tdb, [("wallet", WALLET_DDL), ("ledger", LEDGER_DDL)])
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t in ("wallet", "ledger")])
    return db, tdb, wd, plan


def test_workload_with_copy_in_the_middle_converges(source, target, wallet_setup, tmp_path):
    db, tdb, wd, plan = wallet_setup
    record_copy_start(wd, source)
    wallet_workload(source, db, n_wallets=40, n_ops=150, seed=1)
    for t in ("wallet", "ledger"):  # the copy reads rows newer than the start position
        naive_copy(source, target, db, t, tdb, t)
    wallet_workload(source, db, n_wallets=5, n_ops=150, seed=2)
    record_copy_end(wd, source)
    mark_copied(wd, plan)
    wallet_workload(source, db, n_wallets=5, n_ops=50, seed=3)

    result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=3, batch_rows=200))
    assert result.sources[source.name].caught_up
    assert_same(source, target, db, tdb)
    rows = result.sources[source.name].rows
    assert rows["update"] > 300 and rows["insert"] > 300 and rows["delete"] > 0

    # a second run has nothing new to apply and changes nothing
    again = run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert again.sources[source.name].rows == rows
    assert_same(source, target, db, tdb)
    status = sync_status(wd, plan, live=False)  # the shared sandbox source keeps moving
    assert status[0].lag_seconds == 0 and status[0].lag_transactions == 0


def test_values_survive_exactly(source, target, unique_db, tmp_path):
    db = unique_db("v")
    tdb = db + "_t"
    src_ddl = """CREATE TABLE {name} (
      id INT UNSIGNED PRIMARY KEY, u8 TINYINT UNSIGNED, big BIGINT UNSIGNED, neg INT,
      d DECIMAL(30,10), f FLOAT, dbl DOUBLE, dt DATETIME(6), ts TIMESTAMP(3) NULL, dd DATE, tm TIME(2), y YEAR,
      b BIT(10), j LONGTEXT CHECK (json_valid(j)), bin VARBINARY(20), blb BLOB, l1 VARCHAR(20) CHARACTER SET latin1,
      e ENUM('red','green','blue'), s SET('a','b','c'), zd DATE, zdt DATETIME
    )"""
    tgt_ddl = src_ddl.replace(" CHARACTER SET latin1", "")
    with connect(source, "source") as s, connect(target, "target") as t:
        query(s, f"CREATE DATABASE {db}")
        query(t, f"CREATE DATABASE {tdb}")
        query(s, "SET SESSION sql_mode = ''")
        query(s, src_ddl.format(name=qualified(db, "v")))
        query(t, tgt_ddl.format(name=qualified(tdb, "v")))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, "v", tdb, "v", None)])
    record_copy_start(wd, source)
    with connect(source, "source") as s:
        query(s, "SET SESSION sql_mode = ''")
        query(s, f"""INSERT INTO {qualified(db, 'v')} VALUES
          (1, 255, 18446744073709551615, -2147483648, '-12345678901234567890.0123456789', 1.5, 0.1,
           '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '1000-01-01', '-838:59:59.00', 2155,
           b'1010101010', '{{"a": [1, 2.5, "x"], "b": null}}', x'00ff10', x'deadbeef00', 'caf\xe9 \u20ac',
           'blue', 'a,c', '0000-00-00', '0000-00-00 00:00:00'),
          (2, 0, 0, 0, 0, -0.0, -1e300, '1970-01-01 00:00:01', NULL, '9999-12-31', '00:00:00.01', 0,
           b'0', '[]', '', NULL, '', 'red', '', NULL, NULL)""")
        query(s, f"UPDATE {qualified(db, 'v')} SET y = 1901, s = 'b' WHERE id = 2")
    mark_copied(wd, plan)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    cols = "id,u8,big,neg,d,f,dbl,dt,ts,dd,tm,y,b+0,j,hex(bin),hex(blb),l1,e,s,zd,zdt"
    with connect(source, "source") as s:
        query(s, "SET SESSION sql_mode = ''")
        want = query(s, f"SELECT {cols} FROM {qualified(db, 'v')} ORDER BY id")
    got = rows_of(target, "target", tdb, "v", cols)
    assert got == want
    assert got[0][4] == Decimal("-12345678901234567890.0123456789") and got[0][16] == "café €"


def test_refuses_while_copy_unfinished(source, target, wallet_setup):
    db, tdb, wd, plan = wallet_setup
    record_copy_start(wd, source)  # no end: copy still running
    with pytest.raises(StateError, match="copy has not finished table"):
        run_sync(plan, wd, SyncOptions(until_caught_up=True))


def test_cli_sync_until_caught_up(source, target, wallet_setup, tmp_path):
    db, tdb, wd, plan = wallet_setup
    copy_done(wd, plan, source)
    wallet_workload(source, db, n_wallets=10, n_ops=30, seed=5)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["sources"][source.name]["caught_up"] is True
    assert_same(source, target, db, tdb)


def test_metrics_endpoint_reports_rows_and_lag(source, target, wallet_setup, tmp_path):
    import time
    import urllib.request

    from migrator.sandbox import free_port
    from sync_helpers import start_cli

    db, tdb, wd, plan = wallet_setup
    copy_done(wd, plan, source)
    wallet_workload(source, db, n_wallets=10, n_ops=20, seed=8)
    port = free_port()
    proc = start_cli("sync", str(write_plan(plan, tmp_path / "plan.yaml")), "--workdir", str(wd.root),
                     "--metrics-port", str(port), "--duration", "30")
    try:
        text, deadline = "", time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                text = ""
            if f'migrator_sync_caught_up{{source="{source.name}"}} 1.0' in text:
                break
            time.sleep(0.5)
        assert f'migrator_sync_rows_applied_total{{kind="insert",source="{source.name}"}} 30.0' in text, text[-2000:]
        assert f'migrator_sync_lag_seconds{{source="{source.name}"}} 0.0' in text
        assert "migrator_sync_retries_total" in text and "migrator_sync_errors_total" in text
        assert f'migrator_sync_xa_prepared{{source="{source.name}"}} 0.0' in text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_target_outage_is_retried_with_backoff_never_skipped():
    from migrator.endpoint import parse_url
    from migrator.errors import TargetError
    from migrator.sandbox import free_port
    from migrator.sync.apply import Applier, Route, RowChange

    down = parse_url(f"oceanbase://root@127.0.0.1:{free_port()}", "target")  # nothing listens there
    retries: list[BaseException] = []
    applier = Applier(down, workers=1, stop=lambda: len(retries) >= 3, on_retry=retries.append)
    route = Route(table_id="s/db.t", target_database="db", target_table="t", key=["id"], columns=["id"])
    with pytest.raises(TargetError, match="stopped while retrying"):
        applier.apply([RowChange("insert", route, None, {"id": 1})])
    applier.close()
    assert len(retries) == 3  # it kept trying until told to stop; the change was never dropped silently


def test_statement_format_event_stops_the_source_clearly(source, target, wallet_setup):
    from migrator.errors import SourceError

    db, tdb, wd, plan = wallet_setup
    copy_done(wd, plan, source)
    with connect(source, "source") as c:
        query(c, "SET SESSION binlog_format = 'STATEMENT'")  # this session only: the shared sandbox stays ROW
        query(c, f"INSERT INTO {qualified(db, 'ledger')} VALUES (1, 1, 1.0, 'statement-logged')")
    with pytest.raises(SourceError, match="binlog_format switched away from ROW") as err:
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert f"{db}.ledger" in str(err.value) and "re-copy" in str(err.value)
