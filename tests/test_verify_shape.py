"""Verify compares the table's shape now, not the plan's: a column added on the source and replayed
by sync is compared and written back by fix SQL (issue 13 item 6); a column on one side only is a
difference."""

from __future__ import annotations

import json
from pathlib import Path

from plan_helpers import drop_dbs, url
from sync_helpers import run_cli

from migrator.db import connect, qualified, query, quote_ident


def _verify(plan: Path, wd: Path, tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    report = tmp_path / f"report{len(list(tmp_path.glob('report*')))}.json"
    res = run_cli("verify", str(plan), "--workdir", str(wd), "--report", str(report), *args)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    return res.returncode, json.loads(report.read_text()), res.stdout


def test_column_added_during_sync_is_verified_and_fixed(source, target, unique_db, tmp_path):
    db = unique_db("vs")
    t_name = qualified(db, "acct")
    try:
        with connect(source, "source") as c:
            query(c, f"CREATE DATABASE {quote_ident(db)}")
            query(c, f"CREATE TABLE {t_name} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
            query(c, f"INSERT INTO {t_name} VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 51)))
        plan, wd = tmp_path / "p.yaml", tmp_path / "work"
        made = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                       "--out", str(plan))
        assert made.returncode == 0, made.stdout + made.stderr
        copied = run_cli("copy", str(plan), "--workdir", str(wd))
        assert copied.returncode == 0, copied.stdout + copied.stderr

        with connect(source, "source") as c:  # sync replays the ADD COLUMN and the values written into it
            query(c, f"ALTER TABLE {t_name} ADD COLUMN c VARCHAR(20) NOT NULL DEFAULT 'dflt'")
            query(c, f"UPDATE {t_name} SET c = CONCAT('c', id) WHERE id <= 10")
        synced = run_cli("sync", str(plan), "--workdir", str(wd), "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 0, out

        with connect(target, "target") as t:  # a wrong value in the new column; another row's plan column
            query(t, f"UPDATE {t_name} SET c = 'wrong' WHERE id = 3")
            query(t, f"UPDATE {t_name} SET v = 'drift' WHERE id = 5")
        fix = tmp_path / "fix.sql"
        code, report, out = _verify(plan, wd, tmp_path, "--fix-sql", str(fix), "--apply-fix")
        # before the fix: the plan's columns only, so id 3 passed as identical (exit 0 without --apply-fix)
        assert sorted((r["key"], r["columns"]) for r in report["rows"]) == [([3], ["c"]), ([5], ["v"])], out
        assert report["fixes_applied"] and code == 0, out
        assert "`c`" in fix.read_text()
        with connect(target, "target") as t:  # restored, and the REPLACE of id 5 kept its c
            assert query(t, f"SELECT id, v, c FROM {t_name} WHERE id IN (3, 5) ORDER BY id") == [
                (3, "v3", "c3"), (5, "v5", "c5")]

        # a planned column dropped on the source, replayed by sync: compared as the table is now
        # (before: "target table has no column 'v'", exit 2)
        with connect(source, "source") as c:
            query(c, f"ALTER TABLE {t_name} DROP COLUMN v")
        synced = run_cli("sync", str(plan), "--workdir", str(wd), "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 0, out

        # a column on one side only is a difference, not skipped
        with connect(target, "target") as t:
            query(t, f"ALTER TABLE {t_name} ADD COLUMN only_here INT NULL")
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 1, out
        assert any("only_here is on the target table only" in n for n in report["tables"][0]["notes"]), out
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")
