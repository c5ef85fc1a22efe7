"""Task files: what `migrator plan` takes as flags in one YAML; `migrator check` lists every
problem at once; `plan --task` makes the same plan as the flags on a real source."""

from __future__ import annotations

import json

import pytest

from migrator.errors import ConfigError
from migrator.inventory import load_fleet_config
from migrator.plan.model import load_plan

from plan_helpers import drop_dbs, make_db, run_cli, url

BAD_TASK = """\
version: 1
target: postgres://x@h
sources:
  - mysql://u:Qj#Vk@db-[1-3]:3306
  - url: mysql://u@legacy:3307
    name: legacy
    pasword_file: /x
  - mysql://u@legacy:3307?name=legacy
include: wallet_*.*
routes: ["bad", "a.b=c.d"]
chunk_rows: 0
parallel: 1000
extra_key: 1
"""


def test_check_lists_every_problem_at_once(tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text(BAD_TASK)
    res = run_cli("check", str(task))
    assert res.exit_code == 2
    out = res.output
    assert "problem(s)" in out
    for needle in ("sources.1.pasword_file: Extra inputs", "include: Input should be a valid list",
                   "chunk_rows: Input should be greater than or equal to 1", "parallel: Input should be less",
                   "extra_key: Extra inputs", "target: bad target URL", "scheme 'postgres'",
                   "sources.0: bad source URL", "percent-encode", "and 2 more host(s) of the range",
                   "source 'legacy' is listed twice", "routes.0: bad --route 'bad'"):
        assert needle in out, (needle, out)
    assert "Qj" not in out and "Vk" not in out  # the password in sources.0


def test_fleet_config_lists_every_schema_error(tmp_path):
    # before: only the first pydantic error was reported
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text("version: 1\nsources:\n  - url: mysql://u@h\n    nam: x\nextra: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_fleet_config(cfg)
    assert "2 problems" in str(exc.value) and "'sources.0.nam'" in str(exc.value) and "'extra'" in str(exc.value)


def test_schema_for_editors():
    res = run_cli("check", "--schema")
    schema = json.loads(res.output)
    assert {"target", "sources", "include", "routes", "source_column", "chunk_rows", "parallel"} <= set(
        schema["properties"])
    assert schema["additionalProperties"] is False


def test_plan_from_a_task_file_matches_the_flags(source, target, unique_db, tmp_path):
    db = unique_db("task")
    make_db(source, db, ["CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'a')",
                         "CREATE TABLE audit (id INT PRIMARY KEY)", "CREATE TABLE tmp_x (id INT PRIMARY KEY)"])
    try:
        task = tmp_path / "task.yaml"
        task.write_text(f"version: 1\nname: from-task\nout: {tmp_path / 'task-plan.yaml'}\n"
                        f"target: {url(target)}\nsources:\n  - {url(source)}\n"
                        f"include: ['{db}.*']\nexclude: ['{db}.tmp_*']\ncopy_only: ['{db}.audit']\n"
                        f"routes: ['{db}.t={db}_merged.t']\nchunk_rows: 500\nparallel: 2\n")
        ok = run_cli("check", str(task))
        assert ok.exit_code == 0 and "ok" in ok.output and "1 source(s)" in ok.output, ok.output
        by_task = run_cli("plan", "--task", str(task))
        assert by_task.exit_code == 0, by_task.output
        flags = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                        "--exclude", f"{db}.tmp_*", "--copy-only", f"{db}.audit", "--route", f"{db}.t={db}_merged.t",
                        "--chunk-rows", "500", "--parallel", "2", "--name", "from-task",
                        "--out", str(tmp_path / "flag-plan.yaml"))
        assert flags.exit_code == 0, flags.output
        a, b = load_plan(tmp_path / "task-plan.yaml"), load_plan(tmp_path / "flag-plan.yaml")
        assert a.name == "from-task"
        shape = lambda p: sorted((t.id, t.target_name, t.mode) for t in p.tables)  # noqa: E731
        assert shape(a) == shape(b) and (f"{db}.t" in str(shape(a)))
        assert [r.model_dump() for r in a.routes] == [r.model_dump() for r in b.routes]
        # flags beside --task are refused, naming them
        mixed = run_cli("plan", "--task", str(task), "--include", "x.*", "--chunk-rows", "7")
        assert mixed.exit_code == 2 and "--include" in mixed.output and "--chunk-rows" in mixed.output
    finally:
        drop_dbs(source, [db])


def test_example_task_checks_and_files_of_entries_are_read(tmp_path):
    from copy_helpers import REPO

    ok = run_cli("check", str(REPO / "examples" / "task.yaml"))
    assert ok.exit_code == 0 and "129 source(s)" in ok.output, ok.output
    task = tmp_path / "t.yaml"
    task.write_text(f"target: tidb://r@t\nsources:\n  - url: mysql://u@h\n    defaults_file: {tmp_path / 'no.cnf'}\n")
    bad = run_cli("check", str(task))
    assert bad.exit_code == 2 and "sources.0: source defaults_file" in bad.output and "cannot be read" in bad.output
