"""One metrics registry for every long-running command (--metrics-port), and the Grafana
dashboard in examples/: every query names a metric a real run exports."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from migrator.db import quote_ident
from migrator.metrics import Metrics
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import free_port

from conftest import drop_databases
from copy_helpers import execute, run_cli
from sync_helpers import setup_tables, start_cli, write_plan

DASHBOARD = Path(__file__).resolve().parents[1] / "examples" / "grafana-dashboard.json"


def dashboard_metrics() -> set[str]:
    doc = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in doc["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            found = set(re.findall(r"\bmigrator_[a-z_]+\b", target["expr"]))
            assert found, f"panel {panel['title']!r}: {target['expr']!r} names no migrator metric"
            names |= found
    return names


def scrape_until(port: int, needle: str, timeout: float = 60) -> str:
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            text = ""
        if needle in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not in /metrics after {timeout}s: {text[-3000:]}")


def exported(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_dashboard_query_names_an_exported_metric(source, target, unique_db, tmp_path):
    db = unique_db("met")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO t SELECT seq, 'x' FROM seq_1_to_100")
    plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=50)
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "pause").touch()  # holds the copy (and its /metrics) until the test has looked
    port = free_port()
    copy = start_cli("copy", str(path), "--workdir", str(work), "--metrics-port", str(port))
    try:
        copy_text = scrape_until(port, 'migrator_paused{stage="copy"} 1.0')
        assert f'migrator_copy_rows_estimated{{source="{source.name}"}} 100.0' in copy_text
        assert 'migrator_stage_running{stage="copy"} 1.0' in copy_text
        assert 'migrator_throttled{kind="pause",stage="copy"} 1.0' in copy_text
        # another stage's gauges are not exported as 0 by a copy (max() over processes would read them)
        assert "migrator_verify_chunks_done" not in copy_text and "migrator_cutover_write" not in copy_text
        taken = run_cli("copy", str(path), "--workdir", str(tmp_path / "other"), "--metrics-port", str(port))
        assert taken.returncode == 2 and f"--metrics-port {port}: cannot serve metrics" in taken.stderr
        assert "Traceback" not in taken.stderr
        (work / "pause").unlink()
        _, err = copy.communicate(timeout=120)
        assert copy.returncode == 0, err
        (work / "pause").touch()  # the same for a verify of what was copied
        port = free_port()
        verify = start_cli("verify", str(path), "--workdir", str(work), "--metrics-port", str(port))
        verify_text = scrape_until(port, 'migrator_paused{stage="verify"} 1.0')
        assert "\nmigrator_verify_chunks_total " in verify_text and "migrator_copy_rows_estimated{" not in verify_text
        verify.kill()  # its /metrics was all this test needed
        verify.communicate(timeout=60)
    finally:
        for proc in [p for p in (copy, locals().get("verify")) if p is not None and p.poll() is None]:
            proc.kill()
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])

    sdb, tdb = unique_db("ms"), unique_db("mst")
    wd, splan = setup_tables(source, target, sdb, tdb, tmp_path / "s",
                             [("t", "CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20))")])
    spath = write_plan(splan, tmp_path / "s" / "plan.yaml")
    wd.pause_file.parent.mkdir(parents=True, exist_ok=True)
    wd.pause_file.touch()
    port = free_port()
    sync = start_cli("sync", str(spath), "--workdir", str(wd.root), "--metrics-port", str(port))
    try:
        sync_text = scrape_until(port, 'migrator_throttled{kind="pause",stage="sync"} 1.0')
        assert f'migrator_sync_lag_seconds{{source="{source.name}"}}' in sync_text
        assert 'migrator_stage_running{stage="sync"} 1.0' in sync_text
    finally:
        sync.terminate()
        sync.communicate(timeout=60)
        drop_databases(source, "source", [sdb])
        drop_databases(target, "target", [tdb])
    assert sync.returncode == 0

    # cutover makes its sources read-only: not on the shared servers; its registry as the command serves it
    cutover_metrics = Metrics()
    cutover_metrics.stage("cutover", True)
    cutover_text = generate_latest(cutover_metrics.registry).decode()
    assert "migrator_cutover_write_downtime_seconds 0.0" in cutover_text
    names = exported(copy_text) | exported(sync_text) | exported(verify_text) | exported(cutover_text)
    wanted = dashboard_metrics()
    missing = sorted(wanted - names)
    assert not missing, f"the dashboard queries metrics migrator does not export: {missing}"
    # every stage's own metrics are on the dashboard
    for stage in ("copy", "sync", "verify", "cutover"):
        assert any(n.startswith(f"migrator_{stage}_") for n in wanted), stage
