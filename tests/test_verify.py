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


# ---------------------------------------------------------------- shard merge

SHARD = "CREATE TABLE acct (id INT PRIMARY KEY, bal DECIMAL(18,2) NOT NULL, memo VARCHAR(20))"
MERGED = ("CREATE TABLE acct (id INT NOT NULL, bal DECIMAL(18,2) NOT NULL, memo VARCHAR(20), "
          "`__source` VARCHAR(64) NOT NULL, PRIMARY KEY (id, `__source`))")


def test_shard_merge_union_vs_merged_table(source, source2, target, unique_db, tmp_path):
    from migrator.db import connect

    db1, db2, merged = unique_db("shard"), unique_db("shard"), unique_db("merged")
    s1, s2, tgt = connect(source, "source"), connect(source2, "source"), connect(target, "target")
    rows = "INSERT INTO acct VALUES " + ", ".join(f"({i}, {i}.50, 'm{i}')" for i in range(1, 9))
    try:
        for conn, db in ((s1, db1), (s2, db2)):  # the same keys 1..8 on both shards
            run_sql(conn, f"CREATE DATABASE `{db}`", f"USE `{db}`", SHARD, rows)
        ids = {db1: f"{source.label}/{db1}", db2: f"{source2.label}/{db2}"}
        run_sql(tgt, f"CREATE DATABASE `{merged}`", f"USE `{merged}`", MERGED)
        for db, ident in ids.items():
            run_sql(tgt, "INSERT INTO acct SELECT id, bal, memo, %s FROM (SELECT 1) x JOIN ("
                         + " UNION ALL ".join(f"SELECT {i} id, {i}.50 bal, 'm{i}' memo" for i in range(1, 9))
                         + ") r", args=(ident,))
        tables = [table_plan(s1, source.label, db1, "acct", target_db=merged, chunk_rows=3, source_column="__source"),
                  table_plan(s2, source2.label, db2, "acct", target_db=merged, chunk_rows=3, source_column="__source")]
        plan = make_plan([source, source2], target, tables)
        code, out = run_verify_cli(plan, tmp_path)
        assert code == 0, out

        # a row changed on shard 2's part of the merged table only, and a row of no shard
        run_sql(tgt, "UPDATE acct SET memo = 'tampered' WHERE id = 5 AND `__source` = %s", args=(ids[db2],))
        run_sql(tgt, "INSERT INTO acct VALUES (5, 1.00, 'stray', 'nowhere/db')")
        fix = tmp_path / "fix.sql"
        report = verify_plan(plan, tmp_path / "w2", fix_sql=fix)
        assert report.exit_code == 1
        assert {(r.table, r.kind, tuple(r.key)) for r in report.rows} == {
            (tables[1].id, "changed", (5,)), (tables[0].id, "extra", (5,))}
        stray = next(r for r in report.rows if r.kind == "extra")
        assert "nowhere/db" in (stray.detail or "")
        assert f"'{ids[db2]}'" in fix.read_text()

        report = verify_plan(plan, tmp_path / "w3", fix_sql=fix, apply_fix=True)
        assert report.exit_code == 0 and all(r.fixed for r in report.rows)
        assert verify_plan(plan, tmp_path / "w4").exit_code == 0
        assert tgt.cursor().execute(f"SELECT 1 FROM `{merged}`.acct WHERE `__source` = 'nowhere/db'") == 0
    finally:
        for conn in (s1, s2, tgt):
            conn.close()
        drop(source, "source", db1)
        drop(source2, "source", db2)
        drop(target, "target", merged)


# ---------------------------------------------------------------- resume, re-check, errors, filters


def test_interrupted_run_resumes_finished_run_restarts(acct, source, target, src_conn, tmp_path):
    plan = acct_plan(src_conn, source, target, acct)
    wd = WorkDir(tmp_path / "w")
    assert verify_plan(plan, wd).tables[0].chunks_resumed == 0
    lines = wd.verify_journal.read_text().splitlines()
    assert json.loads(lines[-1])["type"] == "done"
    # as if killed before the last two chunks were journaled
    wd.verify_journal.write_text("\n".join(lines[:-3]) + "\n")
    report = verify_plan(plan, wd)
    assert report.exit_code == 0 and report.tables[0].chunks_resumed == 2
    assert report.tables[0].rows_source == 30
    assert verify_plan(plan, wd).tables[0].chunks_resumed == 0  # the previous run finished: start over
    # a changed plan is not resumed
    wd.verify_journal.write_text("\n".join(lines[:-3]) + "\n")
    plan.tables[0].chunks = plan.tables[0].chunks[:2] + [plan.tables[0].chunks[2].model_copy(update={"upper": None})]
    assert verify_plan(plan, wd).tables[0].chunks_resumed == 0


def test_recheck_after_hook_clears_transient_difference(acct, source, target, src_conn, tgt_conn, tmp_path):
    run_sql(tgt_conn, f"UPDATE `{acct}`.acct SET bal = 0 WHERE id = 12")
    calls = []

    def sync_caught_up() -> None:  # what sync does: bring the target up to the source
        calls.append(1)
        run_sql(tgt_conn, f"UPDATE `{acct}`.acct SET bal = 12.25 WHERE id = 12")

    report = verify_plan(acct_plan(src_conn, source, target, acct), tmp_path / "w", recheck_after=sync_caught_up)
    assert calls == [1]
    assert report.exit_code == 0 and not report.rows
    assert any("matched on re-check" in n for n in report.tables[0].notes)


def test_missing_target_table_is_an_error_exit_2(acct, source, target, src_conn, tmp_path):
    plan = acct_plan(src_conn, source, target, acct)
    plan.tables[0].target_table = "no_such_table"
    code, out = run_verify_cli(plan, tmp_path)
    assert code == 2
    assert "no_such_table" in out and "migrator schema" in out


def test_tables_filter(acct, source, target, src_conn, tmp_path):
    plan = acct_plan(src_conn, source, target, acct)
    code, out = run_verify_cli(plan, tmp_path, "--tables", "nomatch.*")
    assert code == 2 and "matches no table" in out
    code, out = run_verify_cli(plan, tmp_path, "--tables", f"{acct}.*", "--json")
    assert code == 0 and json.loads(out)["tables"][0]["rows_source"] == 30


def test_composite_key_chunks_and_bisect(source, target, src_conn, tgt_conn, unique_db, tmp_path, monkeypatch):
    monkeypatch.setattr(bisect_mod, "ROWS_AT_ONCE", 2)
    db = unique_db("comp")
    rows = ", ".join(f"('{g}', {i}, {i * 10})" for g in ("a", "b", "c") for i in range(1, 9))
    try:
        create_both(src_conn, tgt_conn, db, "CREATE TABLE t (g VARCHAR(5), i INT, v INT, PRIMARY KEY (g, i))",
                    [f"INSERT INTO t VALUES {rows}"])
        plan = make_plan([source], target, [table_plan(src_conn, source.label, db, "t", chunk_rows=5)])
        assert len(plan.tables[0].chunks) == 5
        assert verify_plan(plan, tmp_path / "w1").exit_code == 0
        run_sql(tgt_conn, f"USE `{db}`", "UPDATE t SET v = 0 WHERE g = 'b' AND i = 3", "DELETE FROM t WHERE g = 'c' "
                "AND i = 8", "INSERT INTO t VALUES ('b', 100, 1)")
        report = verify_plan(plan, tmp_path / "w2")
        assert {(r.kind, tuple(r.key)) for r in report.rows} == {
            ("changed", ("b", 3)), ("missing", ("c", 8)), ("extra", ("b", 100))}
    finally:
        drop(source, "source", db)
        drop(target, "target", db)


def test_unreachable_source_is_reported_exit_2(acct, source, target, src_conn, tmp_path):
    from migrator.endpoint import parse_url
    from migrator.sandbox import free_port

    plan = acct_plan(src_conn, source, target, acct)
    dead = parse_url(f"mysql://root@127.0.0.1:{free_port()}?name={source.label}", "source")
    report = verify_plan(plan, tmp_path / "w", endpoints={source.label: dead})
    assert report.exit_code == 2 and report.tables[0].status == "error"
    assert "src1" in report.errors[0] and "cannot connect" in report.errors[0]
    # nothing was verified, so nothing is resumed as identical next time
    assert verify_plan(plan, tmp_path / "w").tables[0].chunks_resumed == 0


def test_after_real_plan_and_copy(source, source2, target, unique_db, tmp_path):
    """The plan and copy stages' own output: the merged value corpus verifies identical; a tamper is named."""
    from migrator.copy.runner import run_copy
    from migrator.db import connect
    from migrator.plan.build import build_plan
    from test_verify_canonical import CORPUS, EXTREMES, MUTATIONS, TYPICAL

    prefix = unique_db("e2e")
    dbs, merged = [f"{prefix}_a", f"{prefix}_b"], f"{prefix}_m"
    rows = EXTREMES + [TYPICAL.format(id=10 + n) for n in range(len(MUTATIONS))]
    conns = [connect(source, "source"), connect(source2, "source")]
    try:
        for conn, db in zip(conns, dbs):
            run_sql(conn, f"CREATE DATABASE `{db}`", f"USE `{db}`", CORPUS, f"INSERT INTO corpus VALUES {', '.join(rows)}")
        plan = build_plan([source, source2], target, includes=[f"{prefix}_*.*"],
                          routes=[f"{prefix}_*.corpus={merged}.corpus"], source_column="__source", chunk_rows=5)
        wd = WorkDir(tmp_path / "w")
        run_copy(plan, wd)
        assert verify_plan(plan, wd).exit_code == 0
        with connect(target, "target") as tgt:
            run_sql(tgt, f"UPDATE `{merged}`.corpus SET dm = 0 WHERE id = 2 AND `__source` = %s",
                    args=(f"{source2.label}/{dbs[1]}",))
        report = verify_plan(plan, wd)
        assert [(r.table, r.key, r.columns) for r in report.rows] == [(f"{source2.label}/{dbs[1]}.corpus", [2], ["dm"])]
    finally:
        for conn, db in zip(conns, dbs):
            run_sql(conn, f"DROP DATABASE IF EXISTS `{db}`")
            conn.close()
        drop(target, "target", merged)
