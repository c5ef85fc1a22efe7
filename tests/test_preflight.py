"""Preflight on real MariaDB instances configured the wrong way, and on real grants."""

from __future__ import annotations

import uuid

import pytest
from plan_helpers import checks, drop_dbs, make_db, run_cli, url

from migrator.db import query, session
from migrator.endpoint import parse_url
from migrator.plan.build import build_plan
from migrator.plan.model import load_plan
from migrator.plan.preflight import like_match, parse_grant

KEYED = "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))"


def by_check(findings, check):
    return [f for f in findings if f.check == check]


def test_binlog_off_blocks_sync_but_not_copy_only(mariadb_factory, target):
    ep = mariadb_factory(options={"log-bin": ""}, name="nobinlog")
    make_db(ep, "shop", [KEYED])
    plan = build_plan([ep], target, includes=["shop.*"])
    [off] = by_check(plan.findings, "binlog.off")
    assert off.severity == "blocking" and off.instance == "nobinlog"
    assert "log-bin" in off.fix and "--copy-only" in off.fix
    # the DBA's way out: copy-only tables need no binlog
    plan = build_plan([ep], target, includes=["shop.*"], copy_only=["shop.*"])
    assert by_check(plan.findings, "binlog.off")[0].severity == "info"
    assert plan.tables[0].mode == "copy-only"
    assert not [f for f in plan.blocking() if f.check.startswith("binlog")]


def test_statement_format_and_minimal_row_image(mariadb_factory, target):
    ep = mariadb_factory(options={"binlog-format": "STATEMENT", "binlog-row-image": "MINIMAL"}, name="stmt")
    make_db(ep, "shop", [KEYED])
    plan = build_plan([ep], target, includes=["shop.*"])
    blocking = checks(plan.findings, "blocking")
    assert {"binlog.format", "binlog.row-image"} <= blocking, [f.message for f in plan.findings]
    assert "STATEMENT" in by_check(plan.findings, "binlog.format")[0].message
    assert "binlog_row_image=FULL" in by_check(plan.findings, "binlog.row-image")[0].fix
    assert "binlog.off" not in blocking


def test_select_only_user_lacks_replication_privileges_and_password_stays_out(source, target, unique_db,
                                                                               tmp_path):
    db = unique_db("priv")
    make_db(source, db, [KEYED, "INSERT INTO t VALUES (1, 'a')"])
    user, password = f"sel_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    with session(source, "source") as conn:
        query(conn, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        query(conn, f"GRANT SELECT ON `{db}`.* TO '{user}'@'%'")
    try:
        ep = parse_url(f"mysql://{user}:{password}@{source.host}:{source.port}?name=limited", "source")
        out = tmp_path / "plan.yaml"
        result = run_cli("plan", "--source", url(ep), "--target", url(target), "--include", f"{db}.*",
                         "--out", str(out))
        assert result.exit_code == 1, result.output
        text = out.read_text()
        assert password not in text and password not in result.output
        plan = load_plan(out)
        blocking = checks(plan.findings, "blocking")
        assert {"privilege.replication-client", "privilege.replication-slave"} <= blocking
        assert "privilege.select" not in blocking  # SELECT on the database was granted
        assert "GRANT REPLICATION SLAVE" in by_check(plan.findings, "privilege.replication-slave")[0].fix
        assert by_check(plan.findings, "privilege.read-only")[0].severity == "warning"
        assert [t.table for t in plan.tables] == ["t"]
    finally:
        with session(source, "source") as conn:
            query(conn, f"DROP USER '{user}'@'%'")
        drop_dbs(source, [db])


def test_table_without_key_is_blocking_and_copy_only_is_offered(source, target, unique_db):
    db = unique_db("nokey")
    make_db(source, db, [KEYED, "CREATE TABLE audit (at DATETIME NOT NULL, what VARCHAR(20))",
                         "CREATE TABLE nullable_uk (a INT NULL, UNIQUE KEY (a))"])
    try:
        plan = build_plan([source], target, includes=[f"{db}.*"])
        nokey = {f.table: f for f in by_check(plan.findings, "table.no-key")}
        assert set(nokey) == {"audit", "nullable_uk"}  # a unique key over a NULLable column does not count
        assert nokey["audit"].severity == "blocking" and nokey["audit"].database == db
        assert "--copy-only" in nokey["audit"].fix and "--skip" in nokey["audit"].fix
        plan = build_plan([source], target, includes=[f"{db}.*"], copy_only=[f"{db}.audit"], skip=[f"{db}.nullable_uk"])
        modes = {t.table: t.mode for t in plan.tables}
        assert modes == {"t": "copy+sync", "audit": "copy-only", "nullable_uk": "skip"}
        assert not [f for f in plan.blocking() if f.check == "table.no-key"]
    finally:
        drop_dbs(source, [db])


def test_triggers_procedures_and_latin1_reported(source, target, unique_db):
    db = unique_db("objs")
    make_db(source, db, [
        KEYED,
        "CREATE TABLE legacy (id INT PRIMARY KEY, note VARCHAR(20)) DEFAULT CHARSET=latin1",
        "CREATE TRIGGER trg_t AFTER INSERT ON t FOR EACH ROW SET @x = NEW.id",
        "CREATE PROCEDURE p_fix(IN n INT) BEGIN SELECT n; END",
        "CREATE FUNCTION f_one() RETURNS INT DETERMINISTIC RETURN 1",
        "CREATE VIEW v_t AS SELECT id FROM t",
    ])
    try:
        plan = build_plan([source], target, includes=[f"{db}.*"])
        found = {f.check: f for f in plan.findings if f.check.startswith("object.")}
        assert set(found) == {"object.trigger", "object.procedure", "object.function", "object.view"}
        assert "not migrated" in found["object.trigger"].message and found["object.trigger"].table == "t"
        assert "second time" in found["object.trigger"].fix
        assert all(f.severity == "warning" and f.instance == "src1" for f in found.values())
        [latin] = by_check(plan.findings, "charset.unsupported")
        assert latin.table == "legacy" and "latin1" in latin.message
    finally:
        drop_dbs(source, [db])


@pytest.mark.parametrize("line, privileges, scope", [
    ("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", {"ALL"}, (None, None)),
    ("GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `m`@`%` IDENTIFIED BY PASSWORD '*AB'",
     {"SELECT", "REPLICATION SLAVE", "BINLOG MONITOR"}, (None, None)),
    ("GRANT SELECT ON `wallet\\_%`.* TO `m`@`%`", {"SELECT"}, ("wallet\\_%", None)),
    ("GRANT SELECT (a), INSERT ON `d`.`t` TO `m`@`%`", {"INSERT"}, ("d", "t")),
])
def test_parse_grant(line, privileges, scope):
    grant = parse_grant(line)
    assert grant is not None and grant.privileges == privileges and (grant.database, grant.table) == scope


def test_role_and_routine_grants_and_like_wildcards():
    assert parse_grant("GRANT `app_role` TO `m`@`%`") is None
    assert parse_grant("GRANT EXECUTE ON PROCEDURE `d`.`p` TO `m`@`%`") is None
    assert like_match("wallet\\_%", "wallet_07") and not like_match("wallet\\_%", "walletx07")
    assert like_match("w_llet%", "wallet_00") and not like_match("w_llet", "wallet_00")


def test_compressed_binlog_is_synced_exactly(mariadb_factory, target, tmp_path):
    """log_bin_compress=ON: MariaDB compresses row events in the binlog and decompresses them for a
    reader that does not announce it reads them, so nothing is blocked and every row arrives."""
    from migrator.sync.runner import run_sync
    from migrator.sync.stream import SyncOptions
    from sync_helpers import rows_of, setup_tables

    ep = mariadb_factory(options={"log-bin-compress": "ON"}, name="zipped")
    make_db(ep, "shop", [KEYED])
    plan = build_plan([ep], target, includes=["shop.*"])
    assert not plan.blocking(), [f.message for f in plan.blocking()]
    db, tdb = f"z_{uuid.uuid4().hex[:6]}", f"zt_{uuid.uuid4().hex[:6]}"
    wd, splan = setup_tables(ep, target, db, tdb, tmp_path, [("t", KEYED.replace("CREATE TABLE t", "CREATE TABLE {name}"))])
    with session(ep, "source") as conn:
        assert query(conn, "SELECT @@global.log_bin_compress")[0][0] in (1, "1", "ON")
        query(conn, f"INSERT INTO {db}.t VALUES " + ",".join(f"({i}, 'r{i}')" for i in range(200)))
        query(conn, f"UPDATE {db}.t SET v = CONCAT(v, '+') WHERE id % 3 = 0")
        query(conn, f"DELETE FROM {db}.t WHERE id % 7 = 0")
    run_sync(splan, wd, SyncOptions(until_caught_up=True))
    assert rows_of(target, "target", tdb, "t") == rows_of(ep, "source", db, "t")
    assert len(rows_of(target, "target", tdb, "t")) == 200 - 29


def test_partial_json_binlog_blocks_sync():
    """MySQL 8's binlog_row_value_options=PARTIAL_JSON logs JSON updates as diffs sync cannot
    replay (no MySQL server here: the finding is checked on the facts plan reads)."""
    from migrator.plan.introspect import InstanceFacts
    from migrator.plan.preflight import binlog_findings

    facts = InstanceFacts(variables={"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL",
                                     "server_id": "1", "binlog_row_value_options": "PARTIAL_JSON"}, flavor="mysql")
    [partial] = by_check(binlog_findings("m8", facts, needs_sync=True), "binlog.partial-json")
    assert partial.severity == "blocking" and "binlog_row_value_options=''" in partial.fix
    facts.variables["binlog_row_value_options"] = ""
    assert not by_check(binlog_findings("m8", facts, needs_sync=True), "binlog.partial-json")
