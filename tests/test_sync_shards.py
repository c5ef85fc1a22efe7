"""Regression: two shards of ONE instance merged into one target table, changed in one batch.

Before the fix, the applier grouped rows per target table only, so both shards' rows went out in
one statement carrying the first shard's source-column value: the second shard's rows landed
under the wrong `shard` (and overwrote the first shard's rows with the same id)."""

from __future__ import annotations

from migrator.db import connect, qualified, query, quote_ident
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir
from sync_helpers import copy_done, make_plan, rows_of
from test_sync_merge import MERGED_DDL, SHARD_DDL


def test_two_shards_of_one_instance_in_one_batch_keep_their_source_value(source, target, unique_db, tmp_path):
    base = unique_db("s1")
    tdb = base + "_all"
    shards = [f"{base}_0", f"{base}_1"]
    with connect(target, "target") as t:
        query(t, f"CREATE DATABASE {quote_ident(tdb)}")
        query(t, MERGED_DDL.format(name=qualified(tdb, "wallet")))
    with connect(source, "source") as c:
        for db in shards:
            query(c, f"CREATE DATABASE {quote_ident(db)}")
            query(c, SHARD_DDL.format(name=qualified(db, "wallet")))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, "wallet", tdb, "wallet", "shard") for db in shards])
    copy_done(wd, plan, source)

    # one source transaction touching both shards, same ids: one sync batch, one applier part
    with connect(source, "source", autocommit=False) as c, c.cursor() as cur:
        for n, db in enumerate(shards):
            w = qualified(db, "wallet")
            cur.execute(f"INSERT INTO {w} VALUES (1, 'a{n}', 10), (2, 'b{n}', 20), (3, 'c{n}', 30)")
            cur.execute(f"UPDATE {w} SET balance = balance + {n + 1} WHERE id = 1")
            cur.execute(f"DELETE FROM {w} WHERE id = {2 + n}")
        c.commit()

    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=1))

    for db in shards:
        with connect(target, "target") as t:
            got = query(t, f"SELECT id, owner, balance FROM {qualified(tdb, 'wallet')} WHERE shard = %s ORDER BY id",
                        (f"{source.name}/{db}",))
        want = rows_of(source, "source", db, "wallet", "id, owner, balance")
        assert [tuple(r) for r in got] == [tuple(r) for r in want], db
    with connect(target, "target") as t:
        assert query(t, f"SELECT COUNT(*) FROM {qualified(tdb, 'wallet')}")[0][0] == 4


def test_tables_with_a_second_unique_key_are_applied_on_one_connection_per_batch(source, target, unique_db, tmp_path):
    """A REPLACE on one connection deleting a row (unique-key conflict) that another connection of
    the same batch holds deadlocks on seekdb (1213): wallet (PK + unique email) goes to one worker,
    ledger (PK only) is still spread by key; the email moves converge with no retry."""
    from migrator.db import session
    from migrator.sync.stream import SourceSync
    from sync_helpers import setup_wallets, wallet_workload
    from test_sync import assert_same

    db = unique_db("uk")
    tdb = db + "_t"
    wd, plan, _ = setup_wallets(source, target, db, tdb, tmp_path)
    wallet_workload(source, db, n_wallets=30, n_ops=200, seed=5)  # emails move between wallets

    sync = SourceSync(plan, source.name, wd, SyncOptions())
    with session(source, "source") as s, session(target, "target") as t:
        sync.build_routes(s, t)
    routes = {table: state.route for (_, table), state in sync.tables.items()}
    assert routes["wallet"].serial and not routes["ledger"].serial

    result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=4, batch_rows=400))
    assert result.sources[source.name].caught_up
    assert result.sources[source.name].checkpoint.retries == 0
    assert_same(source, target, db, tdb)
