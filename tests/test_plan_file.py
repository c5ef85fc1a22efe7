"""The plan file (format 3): the reviewed YAML plus its catalog of derived data beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from plan_helpers import drop_dbs, make_db, run_cli, url

from migrator.errors import ConfigError
from migrator.plan.model import Chunk, Plan, TablePlan, TargetPlan, catalog_path, load_plan, save_plan

REPO = Path(__file__).resolve().parent.parent


def test_real_plan_round_trips_through_plan_and_catalog(source, target, unique_db, tmp_path):
    db = unique_db("pfile")
    make_db(source, db, [
        "CREATE TABLE acct (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), "
        "note TEXT CHARACTER SET latin1, total DECIMAL(12,2) DEFAULT 0)",
        "INSERT INTO acct (name) SELECT CONCAT('n', seq) FROM seq_1_to_300",
        "CREATE TABLE bin (k VARBINARY(16) NOT NULL, at DATETIME NOT NULL, PRIMARY KEY (k, at))",
        "INSERT INTO bin SELECT UNHEX(LPAD(HEX(seq), 8, '0')), '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_300",
    ])
    out = tmp_path / "plans" / "fleet.yaml"
    try:
        result = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                         "--chunk-rows", "100", "--out", str(out))
        assert result.exit_code == 0, result.output
    finally:
        drop_dbs(source, [db])
    plan = load_plan(out)
    assert {t.table for t in plan.tables} == {"acct", "bin"}
    assert all(len(t.chunks) >= 3 and t.columns and t.shape_fingerprint for t in plan.tables)
    assert any(isinstance(b, dict) for t in plan.tables for c in t.chunks for b in c.upper or [])  # binary bounds

    # the reviewed YAML holds decisions, not derived data; the catalog holds that
    reviewed = yaml.safe_load(out.read_text())
    assert reviewed["format_version"] == 3 and reviewed["catalog"]["file"] == "fleet.catalog.jsonl"
    for t in reviewed["tables"]:
        assert {"columns", "chunks", "source_ddl", "shape_fingerprint"}.isdisjoint(t)
        assert t["target_ddl"].startswith("CREATE TABLE") and t["key"]
    assert "|" in out.read_text()  # DDL as block scalars
    assert catalog_path(out).exists()

    # written again and read back: the same model, the same fingerprint
    again_path = tmp_path / "copy" / "again.yaml"
    save_plan(plan, again_path)
    again = load_plan(again_path)
    assert again == plan and again.fingerprint() == plan.fingerprint()
    # a hand edit (the YAML parsed, the catalog's parse cache ignored) reads the same plan
    text = again_path.read_text()
    again_path.write_text(text + "# reviewed by the DBA\n")
    assert load_plan(again_path) == plan
    again_path.write_text(text.replace("mode: copy+sync", "mode: copy-only", 1))  # a decision changed by hand
    edited = load_plan(again_path)
    assert [t.mode for t in edited.tables] == ["copy-only", "copy+sync"]
    assert [t.chunks for t in edited.tables] == [t.chunks for t in plan.tables]
    assert edited.fingerprint() != plan.fingerprint()

    # the fingerprint still sees chunks and columns
    changed = load_plan(out)
    changed.tables[0].chunks[1] = Chunk(id=1, lower=changed.tables[0].chunks[1].lower, upper=[999_999])
    assert changed.fingerprint() != plan.fingerprint()
    changed = load_plan(out)
    changed.tables[0].columns = changed.tables[0].columns[:-1]
    assert changed.fingerprint() != plan.fingerprint()


def _small_plan(upper: int = 10) -> Plan:
    table = TablePlan(source="s1", database="d", table="t", target_database="d", target_table="t",
                      columns=[{"name": "id", "data_type": "int", "column_type": "int(11)", "nullable": False}],
                      key=["id"], key_kind="primary", chunks=[Chunk(id=0, upper=[upper]), Chunk(id=1, lower=[upper])],
                      target_ddl="CREATE TABLE `t` (\n  `id` int NOT NULL PRIMARY KEY\n)")
    return Plan(target=TargetPlan(url="oceanbase://root@127.0.0.1:1", engine="oceanbase"), sources=[], tables=[table])


def test_stale_catalog_refused(tmp_path):
    path = tmp_path / "p.yaml"
    save_plan(_small_plan(10), path)
    old_catalog = catalog_path(path).read_bytes()
    save_plan(_small_plan(20), path)  # re-planned: new chunk bounds
    catalog_path(path).write_bytes(old_catalog)  # ...but the catalog of the earlier run came back
    with pytest.raises(ConfigError) as err:
        load_plan(path)
    msg = str(err.value)
    assert "p.catalog.jsonl" in msg and "p.yaml" in msg and "does not belong" in msg and "migrator plan" in msg
    result = run_cli("schema", str(path))  # what a user sees: one line, exit 2
    assert result.exit_code == 2 and "does not belong" in result.output and "Traceback" not in result.output


def test_missing_catalog_refused(tmp_path):
    path = tmp_path / "p.yaml"
    save_plan(_small_plan(), path)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(path, moved / "p.yaml")  # the plan copied without its catalog
    with pytest.raises(ConfigError) as err:
        load_plan(moved / "p.yaml")
    msg = str(err.value)
    assert "p.catalog.jsonl" in msg and "cannot be read" in msg and "migrator plan" in msg
    shutil.copy(catalog_path(path), moved)  # copied beside it: loads
    assert load_plan(moved / "p.yaml") == _small_plan()


def test_single_file_plans_of_formats_1_and_2_still_load(tmp_path):
    old = load_plan(REPO / "plans" / "ewallet.yaml")  # committed format-1 plan, everything inline
    assert old.format_version == 1 and len(old.tables) == 48
    assert sum(len(t.chunks) for t in old.tables) == 2289 and all(t.columns for t in old.tables)
    assert old.fingerprint() == "99a8da33d7b99010"  # as computed before format 3: copy/verify runs still resume
    two = _small_plan().model_copy(update={"format_version": 2})
    save_plan(two, tmp_path / "two.yaml")  # an older-format model is written as one file, as before
    assert not catalog_path(tmp_path / "two.yaml").exists()
    assert load_plan(tmp_path / "two.yaml") == two
