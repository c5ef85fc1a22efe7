"""`migrator schema convert`: real dumps (mariadb-dump of a live MariaDB database, a MySQL 8
mysqldump) converted, applied on the real seekdb target and compared table by table."""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner
from conftest import drop_databases
from schema_helpers import CORPUS, partitions, unexplained_differences

from migrator.cli import main
from migrator.db import connect, query, quote_ident
from migrator.plan.model import Change
from migrator.schema.convert import convert_script

MARIADB_OBJECTS = [
    "CREATE TABLE acct (id int PRIMARY KEY AUTO_INCREMENT, name varchar(20), bal decimal(10,2) DEFAULT 0, "
    "doc json, note text DEFAULT 'n/a', KEY ix_name (name DESC)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
    "CREATE TABLE entry (id bigint NOT NULL, acct_id int NOT NULL, d date NOT NULL, amount decimal(19,4) NOT NULL, "
    "PRIMARY KEY (id, d), KEY ix_acct (acct_id)) PARTITION BY RANGE (year(d)) "
    "(PARTITION p0 VALUES LESS THAN (2024), PARTITION p1 VALUES LESS THAN MAXVALUE)",
    "CREATE TABLE region (id int NOT NULL, code char(2) NOT NULL, PRIMARY KEY (id, code)) "
    "PARTITION BY LIST COLUMNS (code) (PARTITION pa VALUES IN ('ID','MY'), PARTITION pb VALUES IN ('SG'))",
    "CREATE TABLE hashed (id int PRIMARY KEY, ip inet6) PARTITION BY LINEAR HASH (id) PARTITIONS 4",
    "CREATE TABLE keyed (k varchar(20) PRIMARY KEY, body text, FULLTEXT KEY ft (body)) PARTITION BY KEY (k) "
    "PARTITIONS 3",
    "CREATE TABLE sub (id int NOT NULL, d date NOT NULL, PRIMARY KEY (id, d)) PARTITION BY RANGE (year(d)) "
    "SUBPARTITION BY HASH (id) SUBPARTITIONS 2 (PARTITION p0 VALUES LESS THAN (2024), "
    "PARTITION p1 VALUES LESS THAN MAXVALUE)",
    "CREATE TABLE child (id int PRIMARY KEY, acct_id int, total decimal(12,2) AS (id * 2) STORED, "
    "CONSTRAINT fk_acct FOREIGN KEY (acct_id) REFERENCES acct (id) ON DELETE CASCADE, CHECK (id > 0))",
    "CREATE VIEW v_rich AS SELECT id, name FROM acct WHERE bal > 100",
    "CREATE TRIGGER trg_acct BEFORE INSERT ON acct FOR EACH ROW BEGIN IF NEW.name IS NULL THEN "
    "SET NEW.name = 'anon;ymous'; END IF; END",
    "CREATE PROCEDURE add_bal(IN p_id int, IN p_amt decimal(10,2)) BEGIN UPDATE acct SET bal = bal + p_amt "
    "WHERE id = p_id; SELECT bal FROM acct WHERE id = p_id; END",
    "CREATE FUNCTION twice(a int) RETURNS int DETERMINISTIC RETURN a * 2",
    "CREATE EVENT ev_purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM acct WHERE bal < 0",
]
TABLES = ["acct", "entry", "region", "hashed", "keyed", "sub", "child"]


@pytest.fixture
def mariadb_dump(source, tmp_path, unique_db):
    """A real `mariadb-dump --no-data --routines --events --triggers` of a live MariaDB database."""
    db = unique_db("dump")
    conn = connect(source, "source")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(db)}")
        cur.execute(f"USE {quote_ident(db)}")
        for sql in MARIADB_OBJECTS:
            cur.execute(sql)
    path = tmp_path / "dump.sql"
    with path.open("w") as out:
        subprocess.run(["mariadb-dump", "-h", source.host, "-P", str(source.port), "-u", source.user,
                        "--no-data", "--routines", "--events", "--triggers", "--databases", db],
                       stdout=out, check=True, timeout=60)
    yield db, path, conn
    conn.close()
    drop_databases(source, "source", [db])


def _run(args: list[str]):
    return CliRunner().invoke(main, ["schema", "convert", *args], catch_exceptions=False)


def test_mariadb_dump_converted_applied_and_compared(mariadb_dump, target, tmp_path):
    db, dump, src = mariadb_dump
    out, report_path = tmp_path / "out.sql", tmp_path / "report.json"
    try:
        result = _run([str(dump), "--target", "oceanbase", "--out", str(out), "--report", str(report_path),
                       "--apply", target.safe_url()])
        assert result.exit_code == 1, result.output  # the event is blocked
        report = json.loads(report_path.read_text())
        by_name = {(o["kind"], o["name"]): o for o in report["objects"]}
        assert by_name[("event", "ev_purge")]["status"] == "blocked"
        assert report["summary"]["blocked"] == 1
        assert "blocked" in result.output and "ev_purge" in result.output
        assert not [a for a in report["applied"] if not a["ok"]], result.output
        script = out.read_text()
        assert "-- BLOCKED event ev_purge" in script and "DELIMITER ;;" in script
        tgt = connect(target, "target")
        try:
            for table in TABLES:
                changes = [Change(**c) for c in by_name[("table", table)]["changes"]]
                problems = unexplained_differences(src, db, tgt, db, table, changes)
                assert not problems, "\n".join(problems)
            assert partitions(tgt, db, "sub") and all(p[1] for p in partitions(tgt, db, "sub"))
            routines = {r[0] for r in query(tgt, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE "
                                                 "ROUTINE_SCHEMA=%s", (db,))}
            assert routines == {"add_bal", "twice"}
            assert query(tgt, f"SELECT {quote_ident(db)}.twice(21)")[0][0] == 42
            assert query(tgt, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA=%s", (db,)) == \
                [("v_rich",)]
            with tgt.cursor() as cur:  # the trigger body (with a ';' inside a string) works on the target
                cur.execute(f"INSERT INTO {quote_ident(db)}.acct (id, name) VALUES (1, NULL)")
            assert query(tgt, f"SELECT name FROM {quote_ident(db)}.acct")[0][0] == "anon;ymous"
        finally:
            tgt.close()
        rules = {c["rule"] for o in report["objects"] for c in o["changes"]}
        assert {"charset.latin1-to-utf8mb4", "partition.linear", "index.desc", "default.lob", "type.mariadb-inet6",
                "definer.dropped", "event.unsupported"} <= rules
    finally:
        drop_databases(target, "target", [db])


def test_mysql8_dump_applies_cleanly(target, tmp_path, unique_db):
    db = unique_db("shop")
    dump = tmp_path / "shop.sql"
    dump.write_text((CORPUS / "dumps" / "mysql8_shop.sql").read_text().replace("__DB__", db))
    report_path = tmp_path / "report.json"
    try:
        result = _run([str(dump), "--report", str(report_path), "--apply", target.safe_url()])
        assert result.exit_code == 0, result.output
        report = json.loads(report_path.read_text())
        assert report["source_flavor"] == "mysql" and report["summary"]["blocked"] == 0
        assert report["applied"] and all(a["ok"] for a in report["applied"])
        tgt = connect(target, "target")
        try:
            expect_parts = {"orders": 3, "sessions": 8, "regions": 2, "audit": 4, "customers": 0}
            for table, n in expect_parts.items():
                assert len(partitions(tgt, db, table)) == n, table
            cols = query(tgt, "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE "
                              "TABLE_SCHEMA=%s AND TABLE_NAME='customers' ORDER BY ORDINAL_POSITION", (db,))
            assert [c[0] for c in cols] == ["id", "email", "name", "profile", "created_at", "note"]
            assert dict(cols)["email"] == "utf8mb4_general_ci"
            assert query(tgt, "SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                              "TABLE_NAME='customers' AND COLUMN_NAME='note'", (db,))[0][0].upper() == "INVISIBLE"
            assert query(tgt, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s",
                         (db,))[0][0] == 1
            assert float(query(tgt, f"SELECT {quote_ident(db)}.net_total(111)")[0][0]) == 100.0
        finally:
            tgt.close()
        objects = {(o["kind"], o["name"]): o for o in report["objects"]}
        rules = {c["rule"] for c in objects[("table", "customers")]["changes"]}
        assert {"collation.utf8mb4_0900_ai_ci-to-utf8mb4_general_ci", "charset.utf8mb3-to-utf8mb4",
                "index.desc", "ddl.version-comment"} <= rules
    finally:
        drop_databases(target, "target", [db])


def test_tidb_conversion_blocks_what_tidb_lacks():
    text = (CORPUS / "dumps" / "mysql8_shop.sql").read_text().replace("__DB__", "shop")
    report = convert_script(text, "tidb")
    status = {(o["kind"], o["name"]): o["status"] for o in report.objects()}
    assert status[("trigger", "audit_bi")] == "blocked"
    assert status[("procedure", "mark_paid")] == "blocked" and status[("function", "net_total")] == "blocked"
    assert status[("table", "orders")] in ("rewritten", "warning")
    assert report.blocked


def test_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (a varchar(3) DEFAULT 'unterminated);\n")
    result = _run([str(bad)])
    assert result.exit_code == 2 and "unterminated" in result.output
    good = tmp_path / "ok.sql"
    good.write_text("CREATE TABLE t (a int PRIMARY KEY);\n")
    result = _run([str(good), "--apply", "ftp://nowhere"])
    assert result.exit_code == 2


def test_clean_dump_exits_0_and_writes_a_runnable_script(tmp_path):
    dump = tmp_path / "ok.sql"
    dump.write_text("DELIMITER ;;\nCREATE TABLE t (a int PRIMARY KEY) ;;\nDELIMITER ;\nCREATE TABLE u (b int);\n")
    out = tmp_path / "out.sql"
    result = _run([str(dump), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 as-is" in result.output
    assert "CREATE TABLE t (\n  `a` int PRIMARY KEY\n);" in out.read_text()
