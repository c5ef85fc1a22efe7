"""`migrator status --watch`: a live fleet view, run on a pseudo-terminal beside a running copy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

from migrator.db import quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan

from conftest import drop_databases
from copy_helpers import REPO, execute, run_cli
from pty_helpers import plain, run_in_pty


def test_status_watch_redraws_the_fleet_while_copy_runs(source, source2, target, unique_db, tmp_path):
    dbs = {source.name: unique_db("wa"), source2.name: unique_db("wb")}
    for ep in (source, source2):
        execute(ep, "source", f"CREATE DATABASE {quote_ident(dbs[ep.name])}", f"USE {quote_ident(dbs[ep.name])}",
                "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))",
                "INSERT INTO t SELECT seq, CONCAT('value ', seq) FROM seq_1_to_1500")
    plan = build_plan([source, source2], target, includes=[f"{d}.*" for d in dbs.values()], chunk_rows=500)
    path = tmp_path / "plan.yaml"
    save_plan(plan, path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "pause").touch()  # the copy starts paused: the view sees it running, and why it waits
    copy = subprocess.Popen([sys.executable, "-m", "migrator.cli", "copy", str(path), "--workdir", str(work),
                             "--page-rows", "10", "--parallel", "1", "--progress-interval", "0.3"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (work / "live" / "copy.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        code, screen = run_in_pty(["status", str(path), "--workdir", str(work), "--watch", "--interval", "0.5",
                                   "--iterations", "4"], timeout=60)
        (work / "pause").unlink()
        assert copy.wait(timeout=300) == 0
        text = plain(screen)
        assert code == 0, text
        assert "worst sources" in text and source.name in text and source2.name in text
        assert re.search(r"copy\s+[\d,]+/3,000 rows \([\d.]+%\), \d/2 tables, [\d,]+ rows/s, ETA", text), text
        assert "copy: " in text and "source(s) copying" in text  # the running copy's own line
        assert re.search(r"throttled \(copy\): paused: \S+/pause exists \(remove it to go on\)", text), text
        assert "nothing running" not in text
        assert "lag p50" in text
        # refreshed in place: rich moves the cursor up over the previous view and redraws it
        assert screen.count("worst sources") >= 4 and re.search(r"\x1b\[\d*A", screen)
        # --json stays: one object a view
        out = run_cli("status", str(path), "--workdir", str(work), "--watch", "--json", "--iterations", "2",
                      "--interval", "0.2")
        views = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(views) == 2 and views[-1]["copy"]["rows"] == 3000 and views[-1]["running"] == []
        assert views[-1]["copy"]["tables_complete"] == 2
    finally:
        if copy.poll() is None:
            copy.kill()
        for ep in (source, source2):
            drop_databases(ep, "source", [dbs[ep.name]])
        drop_databases(target, "target", list(dbs.values()))
