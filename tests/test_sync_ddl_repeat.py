"""Shard merge with a DDL repeated over time: ADD c / DROP c / ADD c sent by every shard must run
three times on the merged table (once per occurrence), not once per distinct statement."""

from __future__ import annotations

import shutil

from migrator.db import connect, qualified, query
from migrator.state import Journal
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir
from sync_helpers import forget_target_checkpoint, merged_shards, rows_of

SHARD_DDL = "CREATE TABLE {name} (id BIGINT NOT NULL PRIMARY KEY, owner VARCHAR(32) NOT NULL)"
MERGED_DDL = """CREATE TABLE {name} (
  id BIGINT NOT NULL, owner VARCHAR(32) NOT NULL, shard VARCHAR(128) NOT NULL, PRIMARY KEY (id, shard))"""
# rows before, between and after ADD c / DROP c / ADD c
PHASES = [
    ["INSERT INTO {w} VALUES (1, 'before {n}')", "ALTER TABLE {w} ADD COLUMN c VARCHAR(20) NULL",
     "INSERT INTO {w} VALUES (2, 'first add {n}', 'lost {n}')"],
    ["ALTER TABLE {w} DROP COLUMN c", "INSERT INTO {w} VALUES (3, 'dropped {n}')"],
    ["ALTER TABLE {w} ADD COLUMN c VARCHAR(20) NULL", "INSERT INTO {w} VALUES (4, 'second add {n}', 'kept {n}')",
     "UPDATE {w} SET c = 'upd {n}' WHERE id = 1"],
]


def two_shards(source, source2, target, base: str, tmp_path):
    """One shard database on each MariaDB instance, merged into <base>_all.wallet."""
    tdb, shards = base + "_all", [(source, f"{base}_0"), (source2, f"{base}_1")]
    wd, plan = merged_shards(target, shards, tdb, SHARD_DDL, MERGED_DDL, tmp_path)
    return wd, plan, tdb, shards


def run_phase(shards, phase: int) -> None:
    for n, (ep, db) in enumerate(shards):
        with connect(ep, "source") as c:
            for sql in PHASES[phase]:
                query(c, sql.format(w=qualified(db, "wallet"), n=n))


def sync(plan, wd, only: list[str] | None = None) -> None:
    result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2, poll_interval=0.1), sources=only)
    assert all(r.caught_up for r in result.sources.values()), result.sources


def expected(shards) -> list[tuple]:
    want = []
    for ep, db in shards:
        want += [(f"{ep.name}/{db}",) + tuple(r) for r in rows_of(ep, "source", db, "wallet", "id, owner, c")]
    return sorted(want)


def target_rows(target, tdb: str) -> list[tuple]:
    return rows_of(target, "target", tdb, "wallet", "shard, id, owner, c", "1, 2")


def applied_records(wd: WorkDir, tdb: str) -> list[tuple[str, int]]:
    lines = Journal(wd.root / "sync" / "ddl.jsonl").replay()
    return sorted((r["statement"].split()[3], r["k"]) for r in lines if r["target"] == f"{tdb}.wallet")


def test_add_drop_add_on_every_shard_runs_each_occurrence_once(source, source2, target, unique_db, tmp_path):
    """Every shard runs each phase, sync catches up after each (a new sync process every time:
    the per-shard occurrence count comes back from the work directory)."""
    wd, plan, tdb, shards = two_shards(source, source2, target, unique_db("rep"), tmp_path)
    for phase in range(3):
        run_phase(shards, phase)
        sync(plan, wd)

    got = target_rows(target, tdb)
    assert got == expected(shards)
    assert ("src1/" + shards[0][1], 4, "second add 0", "kept 0") in got  # the second ADD ran: c is back
    # ADD (1st), DROP (1st), ADD (2nd): each once, by whichever shard came first
    assert applied_records(wd, tdb) == [("ADD", 1), ("ADD", 2), ("DROP", 1)]
    for ep in (source, source2):  # each shard noted all three occurrences it met
        seen = [r for r in Journal(wd.sync_checkpoint(ep.name).with_suffix(".ddl.jsonl")).replay() if "statement" in r]
        assert sorted((r["statement"].split()[3], r["k"]) for r in seen) == [("ADD", 1), ("ADD", 2), ("DROP", 1)]


def test_replay_from_an_older_checkpoint_does_not_count_a_ddl_twice(source, source2, target, unique_db, tmp_path):
    """kill -9 after DDL was applied but before the checkpoint moved past it: the replayed DROP
    is the occurrence already met (same binlog position), not a second DROP to run."""
    wd, plan, tdb, shards = two_shards(source, source2, target, unique_db("kil"), tmp_path)
    run_phase(shards, 0)
    sync(plan, wd)
    older = wd.sync_checkpoint(source2.name)
    shutil.copy(older, tmp_path / "older.json")
    run_phase(shards, 1)
    run_phase(shards, 2)
    sync(plan, wd)
    shutil.copy(tmp_path / "older.json", older)  # src2 resumes from before its DROP and second ADD
    forget_target_checkpoint(target, wd, source2.name)

    sync(plan, wd)
    # counted as new occurrences, src2's replayed DROP would run again and take src1's c values with it
    assert target_rows(target, tdb) == expected(shards)
    assert applied_records(wd, tdb) == [("ADD", 1), ("ADD", 2), ("DROP", 1)]


def test_a_shard_a_whole_ddl_behind_the_others_is_said_out_loud(source, source2, target, unique_db, tmp_path, capfd):
    """Shards merge optimistically: a shard that is still before its DROP while another shard
    already re-added the column writes values the source dropped; sync warns, naming the table."""
    wd, plan, tdb, shards = two_shards(source, source2, target, unique_db("lag"), tmp_path)
    for phase in range(3):
        run_phase(shards, phase)
    sync(plan, wd, [source.name])  # the first shard runs all three DDLs before the second starts
    sync(plan, wd)
    assert applied_records(wd, tdb) == [("ADD", 1), ("ADD", 2), ("DROP", 1)]
    got = target_rows(target, tdb)
    assert [r[1:] for r in got if r[1] == 4] == [(4, "second add 0", "kept 0"), (4, "second add 1", "kept 1")]
    err = capfd.readouterr().err
    assert f"target table {tdb}.wallet is ahead of shard" in err and "migrator verify" in err


def test_kill_9_while_a_table_goes_through_add_drop_add(source, target, unique_db, tmp_path):
    """A writer runs ADD c / DROP c / ADD c between batches of rows while `migrator sync` is
    killed -9 at random points: each resume reads with the shape its checkpoint's point had
    and runs each occurrence once; the table ends identical."""
    import random
    import threading
    import time

    from sync_helpers import setup_tables, sync_killed_while, write_plan

    db = unique_db("k9")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("wallet", SHARD_DDL)])
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    w = qualified(db, "wallet")

    def writer() -> None:
        with connect(source, "source") as c:
            for phase, ddl in enumerate(["ADD COLUMN c VARCHAR(20) NULL", "DROP COLUMN c", "ADD COLUMN c VARCHAR(20) NULL", None]):
                has_c = phase in (1, 3)  # rows written after this phase's predecessor DDL
                for i in range(150):
                    key = phase * 1000 + i
                    query(c, f"INSERT INTO {w} VALUES ({key}, 'p{phase}'" + (f", 'c{key}')" if has_c else ")"))
                    if i % 10 == 0:
                        query(c, f"UPDATE {w} SET owner = 'u{phase}' WHERE id = {key}")
                if ddl:
                    query(c, f"ALTER TABLE {w} {ddl}")
                time.sleep(0.3)

    rnd = random.Random(11)
    sync_killed_while(threading.Thread(target=writer), plan_path, wd, rnd, batch_rows=20, longest=2.0)
    cols = "id, owner, c"
    assert rows_of(target, "target", tdb, "wallet", cols) == rows_of(source, "source", db, "wallet", cols)
    lines = [r for r in Journal(wd.root / "sync" / "ddl.jsonl").replay() if r["target"] == f"{tdb}.wallet"]
    assert sorted((r["statement"].split()[3], r["k"]) for r in lines) == [("ADD", 1), ("ADD", 2), ("DROP", 1)]
