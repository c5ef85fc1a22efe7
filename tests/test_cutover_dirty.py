"""Dirty-chunk tracking by sync, continuous verify (`verify --follow`) and the cutover that
re-verifies only the chunks changed since their last clean check (real servers)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sync_helpers import ROOT, mark_copied, run_cli, setup_wallets, write_plan

from migrator.cutover import WindowVerify, cutover, dry_run, final_positions, rollback
from migrator.db import connect, qualified, query
from migrator.plan.model import Chunk, Plan
from migrator.sync.dirty import KEEP, DirtyView, Marks
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.verify.follow import follow
from migrator.workdir import WorkDir

UPPERS = [10, 20, 30]


@pytest.fixture(scope="module")
def private_source(mariadb_factory):
    """One MariaDB of this module's own: cutover makes it read-only, and another suite's XA on a
    shared source would stop sync here (each test works in databases of its own)."""
    return mariadb_factory(name="cutdirty")


@pytest.fixture
def private(private_source):
    yield private_source
    with connect(private_source, "source") as c:  # whatever a test left: writable for the next
        query(c, "SET GLOBAL read_only = OFF")  # wallet ids 1..40: chunks 0..3 of 10 ids each


def chunked(plan: Plan) -> Plan:
    """wallet chunked by id, ledger by (wallet_id, seq), both at ids 10, 20, 30."""
    for tp in plan.tables:
        width = len(tp.key)
        bounds = [[u] + [2**31 - 1] * (width - 1) for u in UPPERS]
        edges = [None, *bounds, None]
        tp.chunks = [Chunk(id=i, lower=edges[i], upper=edges[i + 1]) for i in range(len(edges) - 1)]
    return plan


def setup(ep, target, db, tmp_path, wallets: int = 40):
    tdb = db + "_t"
    wd, plan, _ = setup_wallets(ep, target, db, tdb, tmp_path)
    plan = chunked(plan)
    mark_copied(wd, plan)  # the chunks above, copied (empty tables: sync brings every row)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    with connect(ep, "source") as c:
        for i in range(1, wallets + 1):
            query(c, f"INSERT INTO {qualified(db, 'wallet')} (id, owner, balance) VALUES (%s, %s, 100)", (i, f"o{i}"))
            query(c, f"INSERT INTO {qualified(db, 'ledger')} VALUES (%s, 1, 100, 'opening')", (i,))
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    return wd, plan, plan_path, tdb


def wallet_id(plan: Plan) -> str:
    return next(t.id for t in plan.tables if t.table == "wallet")


def ledger_id(plan: Plan) -> str:
    return next(t.id for t in plan.tables if t.table == "ledger")


def marks(wd: WorkDir, plan: Plan, source: str, table: str) -> dict[int, tuple]:
    view = DirtyView(wd, plan)
    return {c: view.last_change(source, table, c) for c in range(len(UPPERS) + 1)}


def on_source(ep, sql: str, args=None) -> None:
    with connect(ep, "source") as c:
        query(c, sql, args)


def test_dirty_chunks_after_updates_key_changes_and_ddl(target, private, unique_db, tmp_path):
    source = private
    db = unique_db("dirty")
    wd, plan, _, _ = setup(source, target, db, tmp_path)
    w, led = wallet_id(plan), ledger_id(plan)
    first = marks(wd, plan, source.name, w)
    first_ledger = marks(wd, plan, source.name, led)
    assert all(first[c] is not None for c in range(4)), first  # the inserts touched every chunk

    on_source(source, f"UPDATE {qualified(db, 'wallet')} SET balance = 7 WHERE id = 5")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    after_update = marks(wd, plan, source.name, w)
    assert after_update[0] > first[0]
    assert [after_update[c] for c in (1, 2, 3)] == [first[c] for c in (1, 2, 3)]  # only chunk 0 moved

    # a primary key change moves the row from chunk 1 to chunk 3: both are dirty, 0 and 2 not
    on_source(source, f"UPDATE {qualified(db, 'wallet')} SET id = 45 WHERE id = 15")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    after_key = marks(wd, plan, source.name, w)
    assert after_key[1] > after_update[1] and after_key[3] > after_update[3]
    assert after_key[0] == after_update[0] and after_key[2] == after_update[2]
    assert marks(wd, plan, source.name, led) == first_ledger  # wallet changes mark nothing of ledger

    # DDL dirties the whole table: every chunk of ledger, none more of wallet
    before_ddl = marks(wd, plan, source.name, led)
    on_source(source, f"ALTER TABLE {qualified(db, 'ledger')} ADD COLUMN memo VARCHAR(20) NULL")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    after_ddl = marks(wd, plan, source.name, led)
    assert all(after_ddl[c] > before_ddl[c] for c in range(4)), (before_ddl, after_ddl)
    assert marks(wd, plan, source.name, w) == after_key


def test_kill_9_of_sync_mid_batch_leaves_every_applied_chunk_dirty(target, private, unique_db, tmp_path):
    source = private
    db = unique_db("dirtykill")
    wd, plan, plan_path, tdb = setup(source, target, db, tmp_path)
    w = wallet_id(plan)
    before = marks(wd, plan, source.name, w)
    stop = threading.Event()

    def writer() -> None:  # many small transactions in chunks 0 and 2 only
        with connect(source, "source") as c:
            n = 0
            while not stop.is_set():
                n += 1
                query(c, f"UPDATE {qualified(db, 'wallet')} SET balance = balance + 1 WHERE id IN (%s, %s)",
                      (1 + n % 10, 21 + n % 10))

    t = threading.Thread(target=writer)
    t.start()
    try:
        for kills, delay in enumerate((3.0, 4.0, 5.0, 6.0, 8.0), 1):  # start-up is slow on a busy machine
            proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir",
                                     str(wd.root), "--batch-rows", "3"], cwd=ROOT, start_new_session=True,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            now = marks(wd, plan, source.name, w)
            with connect(target, "target") as tc:
                changed = {int(r[0]) for r in query(tc, f"SELECT id FROM {qualified(tdb, 'wallet')} WHERE balance <> 100")}
            touched = {0 if i <= 10 else 2 for i in changed}
            # every chunk whose rows the target already holds changed is marked after the clean state
            assert all(now[c] > before[c] for c in touched), (touched, before, now)
            view = DirtyView(wd, plan)  # and every row the target holds changed is among the keys listed since
            listed = set().union(*(view.keys_since(source.name, w, c, before[c]) or set() for c in (0, 2)))
            assert {(i,) for i in changed} <= listed, (changed, listed)
            assert now[1] == before[1] and now[3] == before[3]  # chunks nobody wrote stay clean
            if kills >= 2 and touched == {0, 2}:
                break
    finally:
        stop.set()
        t.join()
    assert touched == {0, 2}  # the sync runs did apply changes before being killed


def cutover_after_tamper(ep, target, plan: Plan, wd: WorkDir, synced: tuple[str, int], tampered: tuple[str, int]):
    """A wallet row changed on the source and replayed by sync; another row of the same chunk
    changed on the target behind sync's back; then cutover."""
    on_source(ep, f"UPDATE {qualified(synced[0], 'wallet')} SET balance = balance + 1 WHERE id = %s", (synced[1],))
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(target, "target") as t:
        query(t, f"UPDATE {qualified(tampered[0], 'wallet')} SET owner = 'tampered' WHERE id = %s", (tampered[1],))
    return cutover(plan, wd, max_lag=300)


def digest(wd: WorkDir) -> dict[str, str]:
    out = {}
    for p in sorted(wd.root.rglob("*")):
        if p.is_file() and not p.name.endswith("lock"):
            out[str(p.relative_to(wd.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def read_only(ep) -> int:
    with connect(ep, "source") as c:
        return int(query(c, "SELECT @@global.read_only")[0][0])


def test_continuous_verify_catches_a_target_change_in_a_chunk_sync_never_touched(target, private, unique_db,
                                                                                 tmp_path):
    source = private
    db = unique_db("follow")
    wd, plan, _, tdb = setup(source, target, db, tmp_path)
    first = follow(plan, wd, passes=1)
    assert first.counts == {"clean": 8} and not first.differing, first
    with connect(target, "target") as t:  # behind sync's back, in chunk 2 of wallet
        query(t, f"UPDATE {qualified(tdb, 'wallet')} SET balance = 1 WHERE id = 25")
    again = follow(plan, wd, passes=1)  # nothing dirty, nothing old enough: no chunk checked
    assert again.checked == 0
    found = follow(plan, wd, passes=1, refresh=0)  # clean chunks checked again
    assert found.differing == [f"{wallet_id(plan)} chunk 2"], found


def test_cutover_reverifies_only_dirty_chunks_and_refuses_a_difference_in_one(target, private, unique_db,
                                                                              tmp_path):
    ep = private
    db = unique_db("cd")
    wd, plan, plan_path, tdb = setup(ep, target, db, tmp_path)
    w = wallet_id(plan)
    assert follow(plan, wd, passes=1).counts == {"clean": 8}

    # after the clean pass: sync changes chunk 0 of wallet
    on_source(ep, f"UPDATE {qualified(db, 'wallet')} SET balance = 3 WHERE id = 4")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))

    # --dry-run: lag, chunks dirty now, the steps, the expected window; nothing changed
    before = digest(wd)
    doc = dry_run(plan, wd, max_lag=300)
    assert doc.reverify == [f"{w} chunk 0"], doc
    assert set(doc.lag_seconds) == {ep.name} and doc.expected_downtime.total_seconds > 0
    res = run_cli("cutover", str(plan_path), "--workdir", str(wd.root), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"dirty now (re-verified in the window): 1: {w} chunk 0" in res.stdout
    assert "expected write downtime" in res.stdout and "nothing was changed" in res.stdout
    assert digest(wd) == before and read_only(ep) == 0 and not wd.cutover_report.exists()

    # a clean check older than the dirty set's tracking cannot be trusted: every chunk re-verified
    dirty = wd.sync_dirty(ep.name)
    saved = dirty.read_bytes()
    dirty.unlink()
    run_sync(plan, wd, SyncOptions(until_caught_up=True))  # tracking starts again from here
    assert len(dry_run(plan, wd, max_lag=300).reverify) == 8
    dirty.write_bytes(saved)

    # cutover: only chunk 0 of wallet is checksummed in the window; the rest keep their clean check
    report = cutover(plan, wd, max_lag=300)
    try:
        assert report.ok, report
        v = report.verify
        assert (v.mode, v.reverified, v.kept_clean) == ("dirty chunks", 1, 7), v
        detail = {d.chunk: d for d in v.chunk_detail}
        assert detail[f"{w} chunk 0"].reverified_in_window and not detail[f"{w} chunk 1"].reverified_in_window
        assert detail[f"{w} chunk 1"].last_clean_at and detail[f"{w} chunk 1"].clean_valid_at[ep.name]
        on_disk = json.loads(wd.cutover_report.read_text())  # the file's keys, as users and scripts read them
        assert set(on_disk["downtime_parts"]) == {"read_only_seconds", "drain_seconds", "verify_seconds"}
        assert on_disk["verify"]["chunk_detail"][0]["chunk"] and on_disk["ok"] is True
    finally:
        rollback(plan, wd)

    # a difference planted on the target in a chunk sync also changed: cutover refuses
    report = cutover_after_tamper(ep, target, plan, wd, (db, 33), (tdb, 31))
    try:
        assert not report.ok, report
        v = report.verify
        assert v.differing_chunks == [f"{w} chunk 3"] and v.reverified == 1, v
        assert "chunk 3" in report.next_step
        assert read_only(ep) == 1  # refused: the sources stay read-only until rollback
    finally:
        rollback(plan, wd)

    # --full-verify checks every chunk
    with connect(target, "target") as t:
        query(t, f"UPDATE {qualified(tdb, 'wallet')} SET owner = 'o31' WHERE id = 31")
    report = cutover(plan, wd, max_lag=300, full_verify=True)
    rollback(plan, wd)
    assert report.ok and report.verify.mode == "full", report


def test_a_plain_verify_pass_counts_as_a_clean_check_for_cutover(target, private, unique_db, tmp_path):
    from migrator.verify.compare import verify_plan
    from migrator.verify.chunkstates import chunk_state_counts

    ep = private
    db = unique_db("pv")
    wd, plan, plan_path, _ = setup(ep, target, db, tmp_path)
    assert len(dry_run(plan, wd, max_lag=300).reverify) == 8  # never checked
    assert chunk_state_counts(plan, wd) == {wallet_id(plan): {"never": 4}, ledger_id(plan): {"never": 4}}
    assert verify_plan(plan, wd).identical
    assert dry_run(plan, wd, max_lag=300).reverify == []
    on_source(ep, f"UPDATE {qualified(db, 'ledger')} SET amount = 5 WHERE wallet_id = 12")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert dry_run(plan, wd, max_lag=300).reverify == [f"{ledger_id(plan)} chunk 1"]
    # `migrator status` shows the chunk states per table
    assert chunk_state_counts(plan, wd) == {wallet_id(plan): {"clean": 4}, ledger_id(plan): {"clean": 3, "dirty": 1}}
    res = run_cli("status", str(plan_path), "--workdir", str(wd.root), "--tables")
    assert res.returncode == 0, res.stderr
    line = [x for x in res.stdout.splitlines() if ledger_id(plan) in x and "│" in x][-1]  # the chunk table: last
    assert [c.strip() for c in line.split("│")[2:6]] == ["3", "1", "0", "0"], line  # clean dirty differs never


def test_cutover_checks_chunks_before_read_only_and_only_the_rest_inside(target, private, unique_db,
                                                                          tmp_path):
    ep = private
    db = unique_db("cp")
    wd, plan, _, _ = setup(ep, target, db, tmp_path)
    # no verify ever ran: all 8 chunks are checked while the source is writable, none in the window
    report = cutover(plan, wd, max_lag=300, parallel=2)
    try:
        assert report.ok, report
        assert report.checked_before_read_only == [8]
        assert (report.verify.reverified, report.verify.kept_clean) == (0, 8), report.verify
    finally:
        rollback(plan, wd)


def test_kill_9_of_verify_follow_leaves_states_the_next_cutover_uses_correctly(target, private, unique_db,
                                                                               tmp_path):
    ep = private
    db = unique_db("fk")
    wd, plan, plan_path, tdb = setup(ep, target, db, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "verify", str(plan_path), "--workdir", str(wd.root),
                             "--follow", "--interval", "0", "--refresh", "0"], cwd=ROOT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not wd.verify_chunks.exists() or wd.verify_chunks.stat().st_size < 4000):
        time.sleep(0.2)  # a few passes recorded: the kill lands inside a later one
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert dry_run(plan, wd, max_lag=300).reverify == []  # every chunk recorded clean before the kill

    report = cutover_after_tamper(ep, target, plan, wd, (db, 22), (tdb, 23))
    try:
        assert not report.ok and report.verify.differing_chunks == [f"{wallet_id(plan)} chunk 2"], report
        assert report.verify.recorded  # the killed verify's lock died with it
    finally:
        rollback(plan, wd)


def test_kill_9_of_cutover_after_read_only_then_rerun_and_rollback(target, private, unique_db, tmp_path):
    """Regression: the report with the read_only values from before cutover was written only at
    the end, so after a kill -9 inside the window a rerun took read_only=ON as the value to
    restore and --rollback left the sources read-only."""
    ep = private
    db = unique_db("ck")
    wd, plan, plan_path, _ = setup(ep, target, db, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "cutover", str(plan_path), "--workdir",
                             str(wd.root), "--yes", "--max-lag", "300", "--full-verify"], cwd=ROOT,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while read_only(ep) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # inside the window: read-only, draining or verifying
    proc.wait()
    assert read_only(ep) == 1
    report = cutover(plan, wd, max_lag=300)  # the rerun completes
    assert report.ok, report
    rollback(plan, wd)
    assert read_only(ep) == 0  # writable again, as before the first cutover


def test_follow_and_dry_run_over_a_merge_without_source_column(target, private, unique_db, tmp_path):
    """Two shards with disjoint ids merged into one target table, no source column: compared as
    the union over shared ranges ("merged:DB.TABLE chunk N"); a change on the target is found."""
    from sync_helpers import copy_done, make_plan

    ep = private
    base = unique_db("mf")
    tdb = base + "_all"
    ddl = "CREATE TABLE {} (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL)"
    with connect(target, "target") as t:
        query(t, f"CREATE DATABASE {tdb}")
        query(t, ddl.format(qualified(tdb, "orders")))
        for i in range(2):
            db = f"{base}_{i}"
            rows = ",".join(f"({i * 100 + k}, {k})" for k in range(1, 41))
            on_source(ep, f"CREATE DATABASE {db}")
            on_source(ep, ddl.format(qualified(db, "orders")))
            on_source(ep, f"INSERT INTO {qualified(db, 'orders')} VALUES {rows}")
            query(t, f"INSERT INTO {qualified(tdb, 'orders')} VALUES {rows}")
    plan = make_plan([ep], target, [(ep.name, f"{base}_{i}", "orders", tdb, "orders", None) for i in range(2)])
    for i, tp in enumerate(plan.tables):  # shard i: ids i*100+1 .. i*100+40, two chunks each
        mid = [i * 100 + 20]
        tp.chunks = [Chunk(id=0, lower=None, upper=mid), Chunk(id=1, lower=mid, upper=None)]
    wd = WorkDir(tmp_path / "work")
    copy_done(wd, plan, ep)
    run_sync(plan, wd, SyncOptions(until_caught_up=True))  # nothing to replay: tracking starts here

    first = follow(plan, wd, passes=1)
    assert first.counts == {"clean": 3} and not first.differing, first  # ranges: ..20, 20..120, 120..
    assert dry_run(plan, wd, max_lag=300).reverify == []
    with connect(target, "target") as t:
        query(t, f"UPDATE {qualified(tdb, 'orders')} SET v = 0 WHERE id = 130")
    found = follow(plan, wd, passes=1, refresh=0)
    assert found.differing == [f"merged:{tdb}.orders chunk 2"], found


def test_dirty_keys_are_dropped_oldest_first_and_then_the_chunk_counts_as_unknown():
    m = Marks((1, 4))
    m.add((1, 10), {"t": {"0": [[1], [2]]}})
    m.add((1, 20), {"t": {"0": [[3]], "1": None}})
    assert m.keys_since("t", 0, (1, 10)) == {(3,)} and m.keys_since("t", 0, (1, 9)) == {(1,), (2,), (3,)}
    assert m.keys_since("t", 0, (1, 3)) is None  # a check before tracking began
    assert m.keys_since("t", 1, (1, 10)) is None and m.keys_since("t", 1, (1, 20)) == set()  # keys not listed
    for i in range(KEEP + 1):
        m.add((2, i), {"t": {"2": [[i]]}})
    dropped = KEEP // 2 + 1  # the oldest keys went: a check before the newest of them cannot be refined
    assert m.keys_since("t", 2, (2, dropped - 2)) is None
    assert m.keys_since("t", 2, (2, dropped - 1)) == {(i,) for i in range(dropped, KEEP + 1)}
    m.add((3, 0), {"t": {"*": None}})  # DDL: the whole table
    assert m.keys_since("t", 0, (2, 0)) is None
    again = Marks.from_head(m.head("s", "fp"))  # what compaction writes reads back the same
    assert again.keys_since("t", 2, (2, dropped - 1)) == m.keys_since("t", 2, (2, dropped - 1))
    assert again.last_change("t", 2) == (3, 0)


def test_window_compares_by_key_the_rows_changed_since_the_whole_check(target, private, unique_db, tmp_path):
    """Which guarantee holds where: every chunk dirty when the cutover starts is checked whole
    before read-only; inside the window only the keys sync changed since (and the keys that differed
    then) are compared. A target row changed behind sync's back before the cutover is caught; one
    changed after the whole check, in a row sync did not change since, is not (--full-verify is)."""
    ep = private
    db = unique_db("wk")
    wd, plan, _, tdb = setup(ep, target, db, tmp_path)
    w = wallet_id(plan)
    assert follow(plan, wd, passes=1).counts == {"clean": 8}
    for i in (4, 14, 24):  # sync changes chunks 0, 1, 2 of wallet
        on_source(ep, f"UPDATE {qualified(db, 'wallet')} SET balance = 5 WHERE id = %s", (i,))
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(target, "target") as t:  # before the cutover, behind sync's back, in chunk 1
        query(t, f"UPDATE {qualified(tdb, 'wallet')} SET owner = 'x' WHERE id = 13")

    window = WindowVerify(plan, wd, parallel=1)
    try:
        assert window.catch_up(lambda *_: None) == [3]  # more than 2 x parallel: checked whole, sources writable
        on_source(ep, f"UPDATE {qualified(db, 'wallet')} SET balance = 6 WHERE id = 5")  # chunk 0 again
        on_source(ep, f"UPDATE {qualified(db, 'wallet')} SET balance = 6 WHERE id = 25")  # chunk 2 again
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        with connect(target, "target") as t:
            query(t, f"UPDATE {qualified(tdb, 'wallet')} SET owner = 'y' WHERE id = 25")  # a key sync changed
            query(t, f"UPDATE {qualified(tdb, 'wallet')} SET owner = 'z' WHERE id = 6")  # one it did not
        v = window.run(lambda *_: None, final_positions(plan))
    finally:
        window.close()
    assert (v.reverified, v.reverified_by_key, v.rows_compared_by_key) == (3, 3, 3), v
    assert v.differing_chunks == [f"{w} chunk 1", f"{w} chunk 2"], v  # id 13 (differed before), id 25
    detail = {d.chunk: d for d in v.chunk_detail}
    assert detail[f"{w} chunk 0"].reverified_in_window == "by key" and detail[f"{w} chunk 0"].identical
    found = follow(plan, wd, passes=1, refresh=0)  # id 6 is found by a whole check, as by --full-verify
    assert f"{w} chunk 0" in found.differing, found


def test_a_napping_sync_is_woken_by_cutover(tmp_path):
    from migrator.sync.wake import Wake, wake

    path = WorkDir(tmp_path / "work").sync_wake
    napping = Wake(path)
    threading.Timer(0.05, wake, (path,)).start()
    t0 = time.monotonic()
    assert napping.nap(0.5) is True and time.monotonic() - t0 < 0.4  # woken, not the whole poll pause
    assert napping.nap(0.15) is False  # one touch wakes once


def test_a_reader_following_the_journal_through_appends_compactions_and_torn_lines(tmp_path, monkeypatch):
    """verify and cutover read each source's dirty journal on every pass, reading only what was
    appended since (issue 17's note: re-reading thousands of lines per source per pass): what they
    see must equal a reader that replays the whole file, whatever happened to the file between
    two passes (appends, a compaction that rewrote it, one or two compactions, a torn last line)."""
    import migrator.sync.dirty as dirty
    from migrator.plan.model import Column, SourcePlan, TablePlan, TargetPlan
    from migrator.positions import BinlogPosition

    monkeypatch.setattr(dirty, "COMPACT_LINES", 5)
    tables = [TablePlan(source="s", database="d", table=f"t{i}", target_database="d", target_table=f"t{i}",
                        columns=[Column(name="id", data_type="int", column_type="int", nullable=False)], key=["id"], key_kind="primary")
              for i in range(3)]
    plan = Plan(target=TargetPlan(url="mysql://x@127.0.0.1:1", engine="oceanbase"),
                sources=[SourcePlan(name="s", url="mysql://x@127.0.0.1:2", host="127.0.0.1", port=2)], tables=tables)
    wd = WorkDir(tmp_path / "work")
    writer = dirty.DirtyChunks(wd, plan, "s", BinlogPosition(file="b.000001", pos=4))
    ids = [t.id for t in tables]

    def replayed() -> dict:
        whole = dirty._replay(wd.sync_dirty("s"), plan.fingerprint())[0]
        return {t: whole.last_change(t, None) for t in ids}

    def followed() -> dict:
        view = DirtyView(wd, plan)
        return {t: view.last_change("s", t, None) for t in ids}

    pos = 10
    for appended in (1, 2, 4, 5, 9, 3, 11, 1):  # 5 lines make a compaction: some passes see two
        for _ in range(appended):
            pos += 1
            writer.note_tables([ids[pos % 3]], BinlogPosition(file="b.000001", pos=pos))
        assert followed() == replayed()
    path = wd.sync_dirty("s")
    with open(path, "ab") as fh:  # a writer killed mid-line
        fh.write(b'{"at": [1, 999], "m": {"')
    assert followed() == replayed()
    writer.journal._fh = None  # the next writer repairs the tail first
    writer.note_tables([ids[0]], BinlogPosition(file="b.000001", pos=1000))
    assert followed() == replayed() and followed()[ids[0]] == (1, 1000)
    assert dirty._followed[path].offset == path.stat().st_size  # the next pass starts where this one ended
    writer.close()


def test_the_keys_a_batch_marks_are_those_chunk_of_and_listed_key_give(tmp_path):
    """note() places rows of a one-integer-column key inline (issue 16: sync's CPU per change):
    the chunks and keys it journals must be what ChunkIndex.chunk_of / listed_key say for every
    row, through inserts, key-changing updates, deletes, a NULL or non-integer key, a chunk
    holding more than KEEP keys in one batch, and tables keyed otherwise."""
    from decimal import Decimal

    import migrator.sync.dirty as dirty
    from migrator.plan.model import Column, SourcePlan, TablePlan, TargetPlan
    from migrator.positions import BinlogPosition
    from migrator.sync.apply import Route, RowChange

    def table(name: str, data_type: str, chunks: list[Chunk]) -> TablePlan:
        return TablePlan(source="s", database="d", table=name, target_database="d", target_table=name,
                         columns=[Column(name="id", data_type=data_type, column_type=data_type, nullable=False)],
                         key=["id"], key_kind="primary", chunks=chunks)
    bounds = [Chunk(id=1, lower=None, upper=[100]), Chunk(id=2, lower=[100], upper=[1000]), Chunk(id=3, lower=[1000], upper=None)]
    tables = [table("ints", "bigint", bounds), table("decs", "decimal", bounds), table("one", "int", bounds[:1])]
    plan = Plan(target=TargetPlan(url="mysql://x@127.0.0.1:1", engine="oceanbase"),
                sources=[SourcePlan(name="s", url="mysql://x@127.0.0.1:2", host="127.0.0.1", port=2)], tables=tables)
    writer = dirty.DirtyChunks(WorkDir(tmp_path / "work"), plan, "s", BinlogPosition(file="b.000001", pos=4))
    routes = {t.table: Route(table_id=t.id, target_database="d", target_table=t.table, key=["id"], columns=["id"])
              for t in tables}
    changes = []
    for name, values in (("ints", [5, 100, 150, None, "7", 2000] + list(range(200, 200 + dirty.KEEP + 5))),
                         ("decs", [Decimal(5), 150]), ("one", [1, 2])):
        r = routes[name]
        for v in values:
            changes.append(RowChange("insert", r, None, {"id": v}))
        changes.append(RowChange("update", r, {"id": values[0]}, {"id": values[1]}))
        changes.append(RowChange("delete", r, {"id": values[-1]}, None))
    changes.append(RowChange("insert", routes["ints"], None, {"id": 3}))  # a table met again after others

    expected: dict = {}
    for ch in changes:
        idx = writer.index(ch.route.table_id)
        chunks = expected.setdefault(ch.route.table_id, {})
        for row in (ch.before, ch.after):
            if row is None:
                continue
            chunk = idx.chunk_of(row)
            if chunk is None:
                chunks[dirty.WHOLE] = None
                continue
            listed = chunks.setdefault(str(chunk), [])
            if listed is None:
                continue
            key = idx.listed_key(row)
            if key is None or len(listed) >= dirty.KEEP:
                chunks[str(chunk)] = None
            else:
                listed.append(key)
    writer.note(changes, BinlogPosition(file="b.000001", pos=99))
    writer.close()
    last = json.loads(writer.path.read_text().splitlines()[-1])
    assert last["m"] == json.loads(json.dumps(expected))
    ints = last["m"][tables[0].id]  # the text key puts chunk 1 unlisted, NULL the whole table, KEEP+ keys chunk 2
    assert ints == {"1": None, "2": None, "3": [[2000]], "*": None}
    assert last["m"][tables[2].id] == {"1": [[1], [2], [1], [2], [2]]}
