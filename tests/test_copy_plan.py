"""A plan from `build_plan` (the plan stage) copies end to end through the CLI."""

from __future__ import annotations

import json

from migrator.db import quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, run_cli


def test_built_plan_copies_through_cli(source, target, unique_db, tmp_path):
    db = unique_db("bp")
    target_dbs: set[str] = set()
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE acct (id BIGINT PRIMARY KEY, owner VARCHAR(30), balance DECIMAL(20,4)) "
                "DEFAULT CHARSET=utf8mb4",
                "INSERT INTO acct SELECT seq, CONCAT('owner ', seq, ' 😀'), seq / 3 FROM seq_1_to_1200",
                "CREATE TABLE fx (ccy CHAR(3) PRIMARY KEY, rate DOUBLE) DEFAULT CHARSET=utf8mb4",
                "INSERT INTO fx VALUES ('IDR', 0.0000637), ('USD', 1), ('SGD', 0.74)")
        plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=300)
        target_dbs = {t.target_database for t in plan.tables}
        assert {t.table for t in plan.active_tables()} == {"acct", "fx"}
        path = tmp_path / "plan.yaml"
        save_plan(plan, path)
        res = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"))
        assert res.returncode == 0, res.stderr
        assert "copy summary" in res.stdout and "1,200" in res.stdout  # summary even when not a TTY
        for tp in plan.active_tables():
            assert_same_rows(source, target, tp)
        st = json.loads(run_cli("status", str(path), "--workdir", str(tmp_path / "work"), "--json").stdout)
        (src,) = [s for s in st["sources"] if s["source"] == source.label]
        assert all(t["complete"] for t in st["tables"]) and src["copy"]["end"] is not None
        again = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"))  # nothing left: no-op
        assert again.returncode == 0, again.stderr
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", sorted(target_dbs))
