"""Several sources served by one sync process (--sources-per-process): each keeps what a process
of its own gave it — a failure stops only that source and says why, kill -9 of everything loses
nothing, SIGTERM stops cleanly, logs stay per source."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from migrator.state import read_json
from migrator.sync.runner import default_sources_per_process, source_groups
from migrator.workdir import WorkDir
from sync_helpers import (
    LEDGER_DDL,
    ROOT,
    WALLET_DDL,
    copy_done,
    create_both,
    make_plan,
    rows_of,
    run_cli,
    start_cli,
    wallet_workload,
    write_plan,
)
from test_sync import assert_same


def test_default_spreads_the_fleet_over_one_process_per_core():
    assert default_sources_per_process(2, cpus=2) == 1  # a small fleet keeps a process per source
    assert default_sources_per_process(100, cpus=2) == 50
    assert default_sources_per_process(100, cpus=64) == 2
    groups = source_groups([f"s{i}" for i in range(10)], 4)
    assert [len(g) for g in groups] == [4, 3, 3]  # 3 processes, evenly filled
    assert sum(groups, []) == [f"s{i}" for i in range(10)]


@pytest.fixture(scope="module")
def fleet_source(mariadb_factory):
    """A private instance: XA transactions other tests leave on the shared one stop any sync
    started on it meanwhile, and these tests need their sources running."""
    return mariadb_factory(name="fleet")


def named_sources(source, target, tmp_path, dbs: dict[str, str]):
    """Sources named after `dbs` keys, all on one instance (one database each), planned into
    <db>_t and marked copied: N sources as N instances would be, at the cost of one."""
    eps = {name: source.model_copy(update={"name": name}) for name in dbs}
    for name, db in dbs.items():
        create_both(eps[name], target, db, db + "_t", [("wallet", WALLET_DDL), ("ledger", LEDGER_DDL)])
    plan = make_plan(list(eps.values()), target, [(name, db, t, db + "_t", t, None)
                                                  for name, db in dbs.items() for t in ("wallet", "ledger")])
    wd = WorkDir(tmp_path / "work")
    copy_done(wd, plan, *eps.values())
    return eps, wd, plan


def test_a_failing_source_stops_alone_while_its_process_mates_go_on(fleet_source, target, unique_db, tmp_path):
    dbs = {"fa": unique_db("fa"), "fb": unique_db("fb"), "fbad": unique_db("fbad")}
    eps, wd, plan = named_sources(fleet_source, target, tmp_path, dbs)
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-xyz\n")
    bad = next(s for s in plan.sources if s.name == "fbad")
    bad.url = f"{bad.url}&password_file={wrong}"  # the source refuses this sync's login
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    wallet_workload(eps["fa"], dbs["fa"], n_wallets=10, n_ops=40, seed=1)
    proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--sources-per-process", "3",
                     "--duration", "120")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "ERROR" not in (wd.sync_log("fbad").read_text()
                                                               if wd.sync_log("fbad").exists() else ""):
            time.sleep(0.3)
        assert proc.poll() is None, "sync ended with the failing source"
        # the others go on: changes made after the failure reach the target
        wallet_workload(eps["fa"], dbs["fa"], n_wallets=5, n_ops=60, seed=2)
        wallet_workload(eps["fb"], dbs["fb"], n_wallets=10, n_ops=60, seed=3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                rows_of(eps[n], "source", dbs[n], "ledger") == rows_of(target, "target", dbs[n] + "_t", "ledger")
                for n in ("fa", "fb")):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    for n in ("fa", "fb"):
        assert_same(eps[n], target, dbs[n], dbs[n] + "_t")
    assert proc.returncode == 4, err  # the failed source's error is the command's outcome
    assert "source fbad" in err and "access denied" in err and "not-the-password" not in err
    assert "other source(s) failed" not in err  # fa and fb stopped cleanly on SIGTERM
    # one process served all three; each source's log holds its own lines only
    assert wd.sync_faults(0).exists() and not wd.sync_faults(1).exists()
    fa_log, bad_log = wd.sync_log("fa").read_text(), wd.sync_log("fbad").read_text()
    assert "source fa " in fa_log and "source fb " not in fa_log and "fbad" not in fa_log
    assert "access denied" in bad_log and "source fa " not in bad_log


def test_kill_9_of_a_shared_process_under_load_loses_nothing(fleet_source, target, unique_db, tmp_path):
    dbs = {"ka": unique_db("ka"), "kb": unique_db("kb"), "kc": unique_db("kc")}
    eps, wd, plan = named_sources(fleet_source, target, tmp_path, dbs)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")

    def load() -> None:
        jobs = [threading.Thread(target=wallet_workload, args=(eps[n], db), kwargs=dict(n_wallets=30, n_ops=400, seed=i))
                for i, (n, db) in enumerate(dbs.items())]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()

    writer = threading.Thread(target=load)
    writer.start()
    rnd, kills = random.Random(11), 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while writer.is_alive() or kills < 2:
        proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir",
                                 str(wd.root), "--batch-rows", "40", "--sources-per-process", "3"], cwd=ROOT, env=env,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(1.5, 3.5))
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: coordinator, fork server, the shared process
        proc.wait()
        proc.stderr.close()
        kills += 1
    writer.join()
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up", "--sources-per-process", "3")
    assert res.returncode == 0, res.stderr
    for n, db in dbs.items():
        assert_same(eps[n], target, db, db + "_t")
        assert sum(read_json(wd.sync_checkpoint(n))["rows"].values()) > 0


def test_a_killed_sync_process_is_reported_for_each_of_its_sources_only(fleet_source, target, unique_db, tmp_path):
    dbs = {"ga": unique_db("ga"), "gb": unique_db("gb"), "gc": unique_db("gc")}
    eps, wd, plan = named_sources(fleet_source, target, tmp_path, dbs)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    proc = start_cli("sync", str(plan_path), "--workdir", str(wd.root), "--sources-per-process", "2", "--duration", "120")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(read_json(wd.sync_checkpoint(n)) for n in dbs):
            time.sleep(0.3)
        holders = {n: wd.sync_lock(n).read_text().strip() for n in dbs}  # the pid of the process writing for each
        assert holders["ga"] == holders["gb"] != holders["gc"]
        os.kill(int(holders["ga"]), signal.SIGKILL)  # the process serving ga and gb, alone
        wallet_workload(eps["gc"], dbs["gc"], n_wallets=10, n_ops=60, seed=4)  # gc's process goes on
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and rows_of(eps["gc"], "source", dbs["gc"], "ledger") != \
                rows_of(target, "target", dbs["gc"] + "_t", "ledger"):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_same(eps["gc"], target, dbs["gc"], dbs["gc"] + "_t")
    assert proc.returncode == 4, err
    assert "source ga: the sync process killed by signal SIGKILL" in err
    assert "other source(s) failed too: gb" in err and "gc" not in err.split("failed too:")[-1]
