"""`migrator plan` exit codes and `migrator schema PLAN [--apply]` on the real target."""

from __future__ import annotations

from plan_helpers import drop_dbs, make_db, run_cli, url

from migrator.db import qualified, query
from migrator.plan.model import load_plan


def test_plan_exit_codes(source, target, unique_db, tmp_path):
    db = unique_db("cli")
    make_db(source, db, ["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'a')"])
    out = tmp_path / "plans" / "ok.yaml"
    try:
        ok = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                     "--out", str(out))
        assert ok.exit_code == 0, ok.output
        assert load_plan(out).tables[0].table == "t" and "plan written" in ok.output
        # a table without a key: exit 1, file still written and listing it
        with_nokey = tmp_path / "nokey.yaml"
        make_db(source, db, ["CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE loose (x INT)"])
        blocked = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                          "--out", str(with_nokey))
        assert blocked.exit_code == 1
        assert "table.no-key" in blocked.output and "blocking" in blocked.output
        assert [f.table for f in load_plan(with_nokey).blocking()] == ["loose"]
        # usage errors: exit 2, one line, nothing written
        for args in (["--source", url(source), "--out", str(tmp_path / "x.yaml")],  # no target
                     ["--source", url(source), "--target", url(target), "--route", "bad", "--out",
                      str(tmp_path / "x.yaml")],
                     ["--target", url(target), "--out", str(tmp_path / "x.yaml")]):  # no source
            bad = run_cli("plan", *args)
            assert bad.exit_code == 2, bad.output
            assert "Traceback" not in bad.output
        assert not (tmp_path / "x.yaml").exists()
        assert run_cli("plan", "--source", url(source)).exit_code == 2  # click: missing --out
    finally:
        drop_dbs(source, [db])


def test_schema_prints_ddl_and_apply_is_idempotent(source, target, tgt_conn, unique_db, tmp_path):
    db = unique_db("sch")
    make_db(source, db, [
        "CREATE TABLE account (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
        "balance DECIMAL(20,4) NOT NULL DEFAULT 0, UNIQUE KEY uk_b (balance))",
        "CREATE TABLE note (id INT PRIMARY KEY, body VARCHAR(50))",
    ])
    path = tmp_path / "s.yaml"
    try:
        assert run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                       "--out", str(path)).exit_code == 0
        shown = run_cli("schema", str(path))  # routed to the default subcommand
        assert shown.exit_code == 0
        assert f"CREATE DATABASE IF NOT EXISTS `{db}`" in shown.output and "account" in shown.output
        assert not query(tgt_conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))

        first = run_cli("schema", str(path), "--apply")
        assert first.exit_code == 0, first.output
        assert "2 table(s) created" in first.output
        query(tgt_conn, f"INSERT INTO {qualified(db, 'note')} VALUES (1, 'kept')")
        second = run_cli("schema", "--apply", str(path))
        assert second.exit_code == 0, second.output
        assert "0 table(s) created, 2 already there" in second.output

        # someone changed a table on the target: reported, exit 1, never dropped
        query(tgt_conn, f"ALTER TABLE {qualified(db, 'note')} ADD COLUMN extra INT")
        third = run_cli("schema", str(path), "--apply")
        assert third.exit_code == 1
        assert "different" in third.output and "extra" in third.output
        assert query(tgt_conn, f"SELECT body FROM {qualified(db, 'note')}") == [("kept",)]
        # no scratch database left behind
        assert not query(tgt_conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                                   "'\\_\\_migrator\\_check%%'")
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")


def test_schema_group_keeps_convert_and_help():
    assert run_cli("schema", "convert", "--help").exit_code == 0
    helped = run_cli("schema", "--help")
    assert helped.exit_code == 0 and "--apply" in helped.output
    assert run_cli("schema", "missing-plan.yaml").exit_code == 2


def test_unreachable_source_is_a_finding_and_the_rest_is_planned(source, target, unique_db, tmp_path):
    from migrator.sandbox import free_port

    db = unique_db("reach")
    make_db(source, db, ["CREATE TABLE t (id INT PRIMARY KEY)"])
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ntarget: {url(target)}\nsources:\n  - {url(source)}\n"
                     f"  - url: mysql://root@127.0.0.1:{free_port()}\n    name: gone\n")
    out = tmp_path / "p.yaml"
    try:
        result = run_cli("plan", "--config", str(fleet), "--include", f"{db}.*", "--out", str(out))
        assert result.exit_code == 1, result.output
        plan = load_plan(out)
        [gone] = [f for f in plan.findings if f.check == "source.unreachable"]
        assert gone.instance == "gone" and gone.severity == "blocking" and "cannot connect" in gone.message
        assert [t.id for t in plan.tables] == [f"src1/{db}.t"]
        assert [s.name for s in plan.sources] == ["src1", "gone"]
    finally:
        drop_dbs(source, [db])


def test_blocked_ddl_is_not_applied_and_the_rest_is(source, target, tgt_conn, unique_db, tmp_path):
    db = unique_db("blk")
    make_db(source, db, ["CREATE TABLE ok (id INT PRIMARY KEY)",
                         "CREATE TABLE hist (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING"])
    path = tmp_path / "b.yaml"
    try:
        planned = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                          "--out", str(path))
        assert planned.exit_code == 1 and "hist" in planned.output
        [hist] = [t for t in load_plan(path).tables if t.table == "hist"]
        assert any(c.severity == "blocking" for c in hist.changes)
        applied = run_cli("schema", str(path), "--apply")
        assert applied.exit_code == 1 and "blocked" in applied.output
        tables = {r[0] for r in query(tgt_conn, "SELECT TABLE_NAME FROM information_schema.TABLES "
                                                "WHERE TABLE_SCHEMA = %s", (db,))}
        assert tables == {"ok"}
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")
