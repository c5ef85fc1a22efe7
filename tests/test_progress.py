"""Progress anywhere: a copy run through a pipe (not a terminal) prints progress lines while it
runs, in text with timestamps or as JSON; --log-file; the live file status --watch reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

from migrator.db import quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import load_plan, save_plan

from conftest import drop_databases
from copy_helpers import REPO, execute, run_cli

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def make_table(source, target, unique_db, tmp_path, rows: int = 3000):
    db = unique_db("prog")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
            f"INSERT INTO t SELECT seq, CONCAT('value ', seq) FROM seq_1_to_{rows}")
    plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=1000)
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    return db, path


def run_piped(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[tuple[bool, str]], str]:
    """Run the CLI with stdout and stderr on pipes; each stderr line with whether the process
    was still running when the line arrived."""
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    lines: list[tuple[bool, str]] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    for line in proc.stderr:
        lines.append((proc.poll() is None, line.rstrip("\n")))
    code = proc.wait(timeout=300)
    reader.join(timeout=10)
    return code, lines, "".join(out)


def test_piped_copy_prints_json_progress_while_running(source, target, unique_db, tmp_path):
    db, plan = make_table(source, target, unique_db, tmp_path)
    work = tmp_path / "work"
    chunks = sum(len(t.chunks) for t in load_plan(plan).active_tables())
    try:
        before = run_cli("copy", str(plan), "--workdir", str(work), "--dry-run")
        assert before.returncode == 0 and f"0/{chunks}" in before.stdout and "3,000" in before.stdout
        assert f"{chunks} chunk(s) left" in before.stdout and not (work / "copy").exists()
        code, lines, out = run_piped("copy", str(plan), "--workdir", str(work), "--page-rows", "20",
                                     "--parallel", "1", "--progress-interval", "0.2", "--log-format", "json")
        assert code == 0, lines
        docs = [json.loads(text) for _, text in lines]  # every stderr line is one JSON object
        progress = [(alive, d) for (alive, _), d in zip(lines, docs) if d.get("event") == "progress"]
        running = [d for alive, d in progress if alive and d["state"] == "running"]
        assert running, f"no progress line arrived while the copy ran: {lines}"
        first = running[0]
        assert first["stage"] == "copy" and first["rows_total"] == 3000 and 0 <= first["rows"] < 3000
        assert {"ts", "rows_per_second", "eta_seconds", "level"} <= set(first)
        assert progress[-1][1]["state"] == "finished" and progress[-1][1]["rows"] == 3000
        assert "3,000 rows copied" in out and "copy summary" in out
        live = json.loads((work / "live" / "copy.json").read_text())
        assert live["state"] == "finished" and live["rows"] == 3000
        after = run_cli("copy", str(plan), "--workdir", str(work), "--dry-run")
        assert f"{chunks}/{chunks}" in after.stdout and "0 chunk(s) left" in after.stdout
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])


def test_text_progress_has_timestamps_and_goes_to_the_log_file(source, target, unique_db, tmp_path):
    db, plan = make_table(source, target, unique_db, tmp_path, rows=400)
    log = tmp_path / "logs" / "copy.log"
    try:
        # the group's options are accepted after the subcommand too
        code, lines, _ = run_piped("copy", str(plan), "--workdir", str(tmp_path / "work"), "--page-rows", "20",
                                   "--parallel", "1", "--log-file", str(log), "--progress-interval", "0.2")
        assert code == 0, lines
        progress = [text for _, text in lines if "migrator.progress" in text]
        assert progress and all(TIMESTAMP.match(text) for _, text in lines), lines
        assert "rows/s" in progress[0] and "ETA" in progress[0]
        logged = log.read_text().splitlines()
        assert [ln for ln in logged if "migrator.progress" in ln] == progress
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])
