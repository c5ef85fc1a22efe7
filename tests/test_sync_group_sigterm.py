"""`systemctl stop` of a sync unit (systemd's default KillMode=control-group) sends SIGTERM to every
process of the unit at once: the coordinator, multiprocessing's fork server and the sync
processes. That must be the same clean stop as a SIGTERM to the coordinator alone. It was an
internal error (exit 70): the fork server died of the signal, and the sync processes, forked by
it and bound to it by PR_SET_PDEATHSIG, were killed with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import drop_databases
from sync_helpers import ROOT, setup_tables, write_plan

from migrator.state import read_json


def test_sigterm_to_the_whole_process_group_stops_sync_cleanly(source, target, unique_db, tmp_path):
    db, tdb = unique_db("gterm"), unique_db("gtermt")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", "CREATE TABLE {name} (id INT PRIMARY KEY)")])
    path = write_plan(plan, tmp_path / "plan.yaml")
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(path), "--workdir", str(wd.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_json(wd.sync_checkpoint(source.name)):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGTERM)  # every process of the group, as systemd stops a unit
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])
    assert proc.returncode == 0, err
    assert "internal error" not in err and "fork server" not in err
