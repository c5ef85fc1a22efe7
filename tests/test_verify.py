"""verify against the real servers: identical data passes; missing, extra, changed rows are named by key."""

from __future__ import annotations

import json

import pytest

from migrator.plan.model import Plan
from migrator.verify import bisect as bisect_mod
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir

from verify_helpers import create_both, diff_keys, drop, make_plan, run_sql, run_verify_cli, table_plan

ACCT = ("CREATE TABLE acct (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, bal DECIMAL(18,2), "
        "note TEXT NULL, created DATETIME(6) NOT NULL)")


def acct_rows(n: int, start: int = 1) -> str:
    vals = ", ".join(f"({i}, 'owner{i}', {i}.25, {'NULL' if i % 7 == 0 else repr('n' + str(i))}, "
                     f"'2024-01-01 00:00:00.{i:06d}')" for i in range(start, start + n))
    return f"INSERT INTO acct VALUES {vals}"


@pytest.fixture
def acct(source, target, src_conn, tgt_conn, unique_db):
    db = unique_db("acct")
    create_both(src_conn, tgt_conn, db, ACCT, [acct_rows(30)])
    yield db
    drop(source, "source", db)
    drop(target, "target", db)


def acct_plan(src_conn, source, target, db, chunk_rows=10) -> Plan:
    return make_plan([source], target, [table_plan(src_conn, source.label, db, "acct", chunk_rows=chunk_rows)])


def test_identical_exit_0(acct, source, target, src_conn, tmp_path):
    plan = acct_plan(src_conn, source, target, acct)
    code, out = run_verify_cli(plan, tmp_path, "--report", str(tmp_path / "r.json"))
    assert code == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["identical"] is True
    t = report["tables"][0]
    assert (t["rows_source"], t["rows_target"], t["chunks"], t["differences"]) == (30, 30, 4, 0)
    assert (tmp_path / "work" / "verify" / "report.json").exists()


def test_missing_extra_changed_then_fix(acct, source, target, src_conn, tgt_conn, tmp_path):
    run_sql(tgt_conn, f"USE `{acct}`", "DELETE FROM acct WHERE id = 15",
            "INSERT INTO acct VALUES (100, 'ghost', 1.00, NULL, '2024-01-01')",
            "UPDATE acct SET bal = 25.26 WHERE id = 25")
    plan = acct_plan(src_conn, source, target, acct)
    fix = tmp_path / "fix.sql"
    code, out = run_verify_cli(plan, tmp_path, "--fix-sql", str(fix), "--report", str(tmp_path / "r.json"))
    assert code == 1, out
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {(r["kind"], tuple(r["key"])) for r in rows} == {("missing", (15,)), ("extra", (100,)), ("changed", (25,))}
    changed = next(r for r in rows if r["kind"] == "changed")
    assert changed["columns"] == ["bal"] and changed["present_on"] == ["source", "target"]
    sql = fix.read_text()
    assert "DELETE FROM" in sql and sql.count("REPLACE INTO") == 2
    # nothing applied yet: still different
    assert run_verify_cli(plan, tmp_path)[0] == 1
    code, out = run_verify_cli(plan, tmp_path, "--fix-sql", str(fix), "--apply-fix")
    assert code == 0, out
    assert run_verify_cli(plan, tmp_path)[0] == 0


def test_bisect_narrows_large_chunk(acct, source, target, src_conn, tgt_conn, tmp_path, monkeypatch):
    monkeypatch.setattr(bisect_mod, "ROWS_AT_ONCE", 3)  # force several splits on 30 rows
    run_sql(tgt_conn, f"USE `{acct}`", "UPDATE acct SET note = 'x' WHERE id IN (2, 17)",
            "DELETE FROM acct WHERE id = 30", "INSERT INTO acct VALUES (0, 'z', 0, NULL, '2024-01-01')")
    plan = acct_plan(src_conn, source, target, acct, chunk_rows=0)
    report = verify_plan(plan, tmp_path / "w")
    assert report.exit_code == 1
    assert diff_keys(report, "changed") == {(2,), (17,)}
    assert diff_keys(report, "missing") == {(30,)}
    assert diff_keys(report, "extra") == {(0,)}
