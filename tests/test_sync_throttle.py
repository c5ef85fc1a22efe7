"""Sync obeys the target's stall throttle as copy does: a batch held up on the target (here by a
row lock another session keeps) far beyond the running median pauses the source's next batches,
and the source says why."""

from __future__ import annotations

import threading
import time

from sync_helpers import rows_of, setup_wallets

from migrator.db import connect, qualified, query
from migrator.progress import CallbackSink, Collect, SyncProgress
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions


def hold_row_lock(target, table: str, seconds: float) -> threading.Thread:
    """Another target session locks row id = 1 of `table` for `seconds`; returns (the thread to
    join) once the lock is held."""
    locked = threading.Event()

    def hold() -> None:
        with connect(target, "target", autocommit=False) as t:
            query(t, f"SELECT * FROM {table} WHERE id = 1 FOR UPDATE")
            locked.set()
            time.sleep(seconds)
            t.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    return holder


def test_a_target_stall_pauses_sync_and_is_reported(source, target, unique_db, tmp_path):
    db = unique_db("stl")
    tdb = db + "_t"
    wd, plan, _ = setup_wallets(source, target, db, tdb, tmp_path)
    wallet = qualified(db, "wallet")
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {wallet} (id, owner, balance) VALUES (1, 'held', 0)")
    progress = Collect()
    messages = progress.events
    sync = threading.Thread(target=run_sync, args=(plan, wd, SyncOptions(poll_interval=0.05, duration=30)),
                            kwargs={"progress": progress})
    sync.start()
    try:
        deadline = time.monotonic() + 60
        while not any(m.caught_up for m in messages) and time.monotonic() < deadline:
            time.sleep(0.1)  # streaming: each insert below is a batch of its own
        with connect(source, "source") as c:
            for i in range(2, 42):  # one small batch each: the running median of a batch's latency
                query(c, f"INSERT INTO {wallet} (id, owner, balance) VALUES (%s, 'w', 0)", (i,))
                time.sleep(0.1)
        deadline = time.monotonic() + 30
        while len(rows_of(target, "target", tdb, "wallet", "id")) < 41 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(rows_of(target, "target", tdb, "wallet", "id")) == 41

        holder = hold_row_lock(target, qualified(tdb, 'wallet'), 3.0)  # another target session
        with connect(source, "source") as c:
            query(c, f"UPDATE {wallet} SET balance = 5 WHERE id = 1")
        holder.join()
        with connect(source, "source") as c:
            query(c, f"UPDATE {wallet} SET balance = 7 WHERE id = 2")
        deadline = time.monotonic() + 30
        while rows_of(target, "target", tdb, "wallet", "id, balance")[:2] != [(1, 5), (2, 7)] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        assert rows_of(target, "target", tdb, "wallet", "id, balance")[:2] == [(1, 5), (2, 7)]
    finally:
        sync.join(timeout=60)
    states = [m.state for m in messages if m.state]
    assert any(s.startswith("paused: target write stall") for s in states), states
    assert states[-1] == "resumed", states


def test_lag_grows_and_caught_up_clears_while_a_batch_waits_for_the_target(source, target, unique_db, tmp_path):
    """Found on a real run (the dashboard picture's 225,000-row UPDATE): for the 88 s the pass took,
    metrics and progress lines said lag 0 and "caught up": sync reported only between batches,
    and its lag counted from the head as it was when the pass began. Now a batch waiting on the
    target (a row lock held here for 6 s) reports every 2 s, not caught up, with the lag of the
    oldest change the target lacks, growing; once applied, caught up and lag 0 again."""
    from migrator.sync.contracts import status_line

    db = unique_db("lag")
    tdb = db + "_t"
    wd, plan, _ = setup_wallets(source, target, db, tdb, tmp_path)
    wallet = qualified(db, "wallet")
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {wallet} (id, owner, balance) VALUES (1, 'held', 0)")
    seen: list[tuple[float, bool, float]] = []  # (when, caught up, lag then) per checkpoint message

    def on_progress(event: SyncProgress) -> None:
        if event.checkpoint is not None:
            lag = status_line(event.checkpoint)["lag_seconds"]
            seen.append((time.time(), bool(event.caught_up), lag))

    sync = threading.Thread(target=run_sync, args=(plan, wd, SyncOptions(poll_interval=0.05, duration=20)),
                            kwargs={"progress": CallbackSink(on_progress)})
    sync.start()
    try:
        deadline = time.monotonic() + 60
        while not (seen and seen[-1][1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen and seen[-1][1], "sync never caught up"
        holder = hold_row_lock(target, qualified(tdb, 'wallet'), 6.0)
        written = time.time()
        with connect(source, "source") as c:
            query(c, f"UPDATE {wallet} SET balance = 5 WHERE id = 1")
        holder.join()
        released = time.time()
        deadline = time.monotonic() + 30
        while rows_of(target, "target", tdb, "wallet", "id, balance")[:1] != [(1, 5)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rows_of(target, "target", tdb, "wallet", "id, balance")[:1] == [(1, 5)]
        deadline = time.monotonic() + 10
        while not (seen[-1][1] and seen[-1][0] > released) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sync.join(timeout=60)
    stalled = [(at - written, up, lag) for at, up, lag in seen if written + 1.5 < at < released - 0.5]
    assert len(stalled) >= 2, f"no progress while the batch waited: {seen}"
    assert not any(up for _, up, _ in stalled), stalled
    lags = [lag for _, _, lag in stalled]
    assert lags[-1] >= 3.0 and lags[-1] > lags[0], stalled
    assert seen[-1][1] and seen[-1][2] == 0.0, seen[-3:]
