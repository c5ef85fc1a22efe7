"""Shard merge: 4 shards on 2 instances into one target table, with a DDL sent by every shard."""

from __future__ import annotations

from migrator.db import connect, qualified, query
from migrator.state import Journal
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from sync_helpers import merged_shards, rows_of, setup_tables

SHARD_DDL = """CREATE TABLE {name} (
  id BIGINT NOT NULL PRIMARY KEY, owner VARCHAR(32) NOT NULL, balance DECIMAL(20,4) NOT NULL
)"""
MERGED_DDL = """CREATE TABLE {name} (
  id BIGINT NOT NULL, owner VARCHAR(32) NOT NULL, balance DECIMAL(20,4) NOT NULL,
  shard VARCHAR(128) NOT NULL, PRIMARY KEY (id, shard)
)"""


def test_four_shards_on_two_instances_merge_with_ddl_applied_once(source, source2, target, unique_db, tmp_path):
    base = unique_db("m")
    tdb = base + "_all"
    shards = [(source, f"{base}_0"), (source, f"{base}_1"), (source2, f"{base}_2"), (source2, f"{base}_3")]
    wd, plan = merged_shards(target, shards, tdb, SHARD_DDL, MERGED_DDL, tmp_path)

    for n, (ep, db) in enumerate(shards):  # the same ids on every shard: only `shard` tells them apart
        with connect(ep, "source") as c:
            w = qualified(db, "wallet")
            query(c, f"INSERT INTO {w} VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)")
            query(c, f"UPDATE {w} SET balance = balance + {n} WHERE id = 1")
            query(c, f"DELETE FROM {w} WHERE id = 2")
            query(c, f"ALTER TABLE {w} ADD COLUMN note VARCHAR(20) NULL")
            query(c, f"INSERT INTO {w} VALUES (4, 'd', 40, 'after ddl {n}')")
            query(c, f"UPDATE {w} SET note = 'n{n}', id = 5 WHERE id = 3")

    result = run_sync(plan, wd, SyncOptions(until_caught_up=True))
    assert all(r.caught_up for r in result.sources.values())

    got = rows_of(target, "target", tdb, "wallet", "shard, id, owner, balance, note", "1, 2")
    want = []
    for ep, db in shards:
        for row in rows_of(ep, "source", db, "wallet", "id, owner, balance, note"):
            want.append((f"{ep.name}/{db}",) + tuple(row))
    assert got == sorted(want)
    applied = [r for r in Journal(wd.root / "sync" / "ddl.jsonl").replay() if r["target"] == f"{tdb}.wallet"]
    assert len(applied) == 1, applied
    assert "note" in applied[0]["statement"].lower()


def test_unsafe_ddl_stops_with_position_and_skip_ddl_resumes(source, target, unique_db, tmp_path):
    import pytest

    from migrator.errors import SourceError

    db = unique_db("d")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("wallet", SHARD_DDL)])
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {qualified(db, 'wallet')} VALUES (1, 'a', 1)")
        query(c, f"DROP TABLE {qualified(db, 'wallet')}")
        query(c, SHARD_DDL.format(name=qualified(db, "wallet")))
        query(c, f"INSERT INTO {qualified(db, 'wallet')} VALUES (7, 'z', 7)")
    with pytest.raises(SourceError) as err:
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
    msg = str(err.value)
    assert "DROP TABLE" in msg and "--skip-ddl" in msg and "resumes at" in msg
    assert rows_of(target, "target", tdb, "wallet", "id") == [(1,)]  # everything before the DDL is applied
    drop_at = msg.split("--skip-ddl ")[1].split()[0]
    # the DBA handles both statements by hand (drop + re-create on the target), then skips them
    with connect(target, "target") as t:
        query(t, f"DELETE FROM {qualified(tdb, 'wallet')}")
    with pytest.raises(SourceError) as err2:
        run_sync(plan, wd, SyncOptions(until_caught_up=True, skip_ddl=[drop_at]))
    create_at = str(err2.value).split("--skip-ddl ")[1].split()[0]
    assert "CREATE TABLE" in str(err2.value) and create_at != drop_at
    run_sync(plan, wd, SyncOptions(until_caught_up=True, skip_ddl=[drop_at, create_at]))
    assert rows_of(target, "target", tdb, "wallet", "id") == [(7,)]
