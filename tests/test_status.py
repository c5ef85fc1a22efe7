"""`migrator status`: one view of copy, sync, verify and cutover, from the work directory."""

from __future__ import annotations

import json

import pytest

from conftest import drop_databases
from copy_helpers import execute, run_cli

from migrator.db import quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan


def test_status_follows_copy_and_verify(source, target, unique_db, tmp_path):
    db = unique_db("st")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO a SELECT seq, 'x' FROM seq_1_to_120",
            "CREATE TABLE b (id INT PRIMARY KEY)", "INSERT INTO b SELECT seq FROM seq_1_to_30")
    try:
        plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=50)
        path = tmp_path / "p.yaml"
        save_plan(plan, path)
        work = str(tmp_path / "work")

        before = json.loads(run_cli("status", str(path), "--workdir", work, "--json").stdout)
        (src,) = before["sources"]
        assert src["copy"]["tables_complete"] == 0 and src["copy"]["tables"] == 2
        assert src["verify"] is None and before["cutover"] is None

        assert run_cli("copy", str(path), "--workdir", work).returncode == 0
        assert run_cli("verify", str(path), "--workdir", work).returncode == 0
        after = json.loads(run_cli("status", str(path), "--workdir", work, "--json").stdout)
        (src,) = after["sources"]
        assert src["copy"]["tables_complete"] == 2 and src["copy"]["rows"] == 150
        assert src["copy"]["start"] is not None
        assert src["sync"]["state"] == "not started"
        assert src["verify"]["identical"] == 2
        assert after["verify"]["identical"] is True

        human = run_cli("status", str(path), "--workdir", work, "--tables")
        assert human.returncode == 0
        assert "2/2 tables, 150 rows" in human.stdout and "2 identical" in human.stdout
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])


def test_a_corrupt_verify_report_is_named_not_a_traceback(tmp_path):
    """status reads the last verify's report as the typed VerifyReport: a damaged file is a clear
    error naming it, and no report is just "not verified"."""
    from migrator.errors import StateError
    from migrator.verify.report import VerifyReport

    path = tmp_path / "report.json"
    assert VerifyReport.load(path) is None
    path.write_text('{"plan_fingerprint": "x", "started_at": "t", "tables": [{"table": 1}]')
    with pytest.raises(StateError, match=f"verify report '{path}' is not valid .*rerun `migrator verify PLAN`"):
        VerifyReport.load(path)
