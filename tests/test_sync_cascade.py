"""sync reproduces foreign-key cascades the source's binlog does not hold (real MariaDB -> seekdb).

Every test ends with a row oracle: all rows of every table read on both sides and compared.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import ClassVar

import pytest

from plan_helpers import drop_dbs, url
from sync_helpers import (
    create_plain_both,
    ROOT,
    copy_done,
    make_plan,
    mark_copied,
    naive_copy,
    record_copy_end,
    record_copy_start,
    rows_of,
    run_cli,
    write_plan,
)

from migrator.db import connect, qualified, query, quote_ident
from migrator.plan.build import build_plan
from migrator.plan.model import TablePlan
from migrator.plan.preflight import cascade_findings
from migrator.schema.catalog import ForeignKey, read_foreign_keys
from migrator.sync.cascade import foreign_keys_from_plan
from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir

# (table, DDL) in FK order: parent; a CASCADE child with a CASCADE grandchild (3 levels); a SET NULL
# child; a link table whose composite key holds the FK (re-keying the parent moves its key) with a
# note table referencing that key (cascade through a child's own key); a self-referencing tree.
SCHEMA = [
    ("parent", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL)"""),
    ("child", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NOT NULL, v VARCHAR(20), KEY (pid),
        CONSTRAINT fk_child FOREIGN KEY (pid) REFERENCES {db}.parent (id) ON DELETE CASCADE ON UPDATE CASCADE)"""),
    ("grand", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, cid INT NOT NULL, KEY (cid),
        CONSTRAINT fk_grand FOREIGN KEY (cid) REFERENCES {db}.child (id) ON DELETE CASCADE ON UPDATE CASCADE)"""),
    ("nullable", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NULL, upid INT NULL, KEY (pid), KEY (upid),
        CONSTRAINT fk_null_del FOREIGN KEY (pid) REFERENCES {db}.parent (id) ON DELETE SET NULL ON UPDATE CASCADE,
        CONSTRAINT fk_null_upd FOREIGN KEY (upid) REFERENCES {db}.parent (id) ON DELETE CASCADE ON UPDATE SET NULL)"""),
    ("link", """CREATE TABLE {name} (pid INT NOT NULL, tag VARCHAR(10) NOT NULL, n INT, PRIMARY KEY (pid, tag),
        CONSTRAINT fk_link FOREIGN KEY (pid) REFERENCES {db}.parent (id) ON DELETE CASCADE ON UPDATE CASCADE)"""),
    ("note", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NOT NULL, tag VARCHAR(10) NOT NULL,
        KEY (pid, tag), CONSTRAINT fk_note FOREIGN KEY (pid, tag) REFERENCES {db}.link (pid, tag)
        ON DELETE CASCADE ON UPDATE CASCADE)"""),
    ("node", """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, up INT NULL, KEY (up),
        CONSTRAINT fk_node FOREIGN KEY (up) REFERENCES {db}.node (id) ON DELETE CASCADE ON UPDATE CASCADE)"""),
]
TABLES = [t for t, _ in SCHEMA]


def create_schema(source, target, db: str, tdb: str) -> None:
    """The FK schema on the source, and the same on the target (FKs included, created in FK order)."""
    for ep, role, name in ((source, "source", db), (target, "target", tdb)):
        with connect(ep, role) as c:
            query(c, f"CREATE DATABASE {quote_ident(name)}")
            for table, ddl in SCHEMA:
                query(c, ddl.format(name=qualified(name, table), db=quote_ident(name)))


def fill(conn, parents: range) -> None:
    """For each parent p: 2 children (each with 2 grandchildren), a nullable row on each of its
    two FKs, 2 link rows with a note each; a 3-deep node tree under node p*1000."""
    def ins(table: str, rows: list[tuple]) -> None:
        if rows:
            marks = ",".join(["%s"] * len(rows[0]))
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    ins("parent", [(p, f"p{p}") for p in parents])
    ins("child", [(p * 10 + i, p, f"c{i}") for p in parents for i in (1, 2)])
    ins("grand", [(p * 100 + i * 10 + j, p * 10 + i) for p in parents for i in (1, 2) for j in (1, 2)])
    ins("nullable", [(p * 10 + 1, p, None) for p in parents] + [(p * 10 + 2, None, p) for p in parents])
    ins("link", [(p, t, p) for p in parents for t in ("a", "b")])
    ins("note", [(p * 10 + k, p, t) for p in parents for k, t in ((1, "a"), (2, "b"))])
    for p in parents:
        ins("node", [(p * 1000, None), (p * 1000 + 1, p * 1000), (p * 1000 + 2, p * 1000 + 1), (p * 1000 + 3, p * 1000)])


def cascade_workload(source, db: str) -> None:
    """Every action, each in its own transaction unless said otherwise."""
    with connect(source, "source", database=db, autocommit=False) as c:
        def run(*sqls: str) -> None:
            with c.cursor() as cur:
                for sql in sqls:
                    cur.execute(sql)
            c.commit()

        fill(c, range(1, 11))
        c.commit()
        run("DELETE FROM parent WHERE id = 1")  # CASCADE 3 levels, SET NULL, link -> note, nullable.upid CASCADE
        run("UPDATE parent SET id = 102 WHERE id = 2")  # ON UPDATE CASCADE (moves link keys, notes follow), SET NULL
        run("UPDATE parent SET name = 'renamed' WHERE id = 3")  # no referenced column changes: nothing cascades
        # delete then re-insert in one transaction: the cascade happens at its place, the new rows stay
        run("DELETE FROM parent WHERE id = 4", "INSERT INTO parent VALUES (4, 'again')",
            "INSERT INTO child VALUES (41, 4, 'new')", "INSERT INTO grand VALUES (411, 41)",
            "INSERT INTO link VALUES (4, 'a', 99)", "INSERT INTO note VALUES (41, 4, 'a')")
        run("DELETE FROM parent WHERE id IN (5, 6)")  # one event, several parents
        run("UPDATE child SET id = id + 500 WHERE pid = 7")  # a child re-keyed: its grandchildren follow
        run("UPDATE link SET tag = 'z' WHERE pid = 8 AND tag = 'a'")  # a composite key changes: note follows
        run("DELETE FROM node WHERE id = 9000")  # the whole self-referencing subtree
        # (re-keying a node with children fails on the source: InnoDB refuses a cascade back into the same table)
        # a re-keyed parent and plain writes of its children interleaved in one transaction
        run("INSERT INTO child VALUES (71, 7, 'x')", "UPDATE parent SET id = 107 WHERE id = 7",
            "UPDATE child SET v = 'after' WHERE id = 71")
        # a parent key re-used after its delete: the old children go, the new ones stay
        run("DELETE FROM parent WHERE id = 10")
        run("INSERT INTO parent VALUES (10, 'reused')", "INSERT INTO child VALUES (101, 10, 'new')",
            "INSERT INTO nullable VALUES (103, 10, 10)")


def all_rows(ep, role: str, db: str, tables: list[str] = TABLES) -> dict[str, list[tuple]]:
    with connect(ep, role) as c:
        return {t: query(c, f"SELECT * FROM {qualified(db, t)} ORDER BY 1, 2") for t in tables}


def assert_same_rows(source, target, db: str, tdb: str) -> dict[str, list[tuple]]:
    """The row oracle: every row of every table, both sides."""
    src, tgt = all_rows(source, "source", db), all_rows(target, "target", tdb)
    for t in TABLES:
        missing = sorted(set(src[t]) - set(tgt[t]))
        extra = sorted(set(tgt[t]) - set(src[t]))
        assert not missing and not extra, f"{t}: missing on target {missing[:10]}, extra on target {extra[:10]}"
    return src


@pytest.fixture
def fk_setup(source, target, unique_db, tmp_path):
    db = unique_db("casc")
    tdb = db + "_t"
    create_schema(source, target, db, tdb)
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t in TABLES])
    return db, tdb, wd, plan


def test_every_cascade_action_is_reproduced_in_binlog_order(source, target, fk_setup, capfd):
    db, tdb, wd, plan = fk_setup
    copy_done(wd, plan, source)  # empty tables copied; everything below comes from the binlog
    cascade_workload(source, db)
    src = all_rows(source, "source", db)
    # the cascades really happened on the source (and are not in its binlog: DESIGN.md)
    assert not [r for r in src["child"] if r[1] in (1, 5, 6)] and [r for r in src["child"] if r[1] == 102]
    assert (11, None, None) in src["nullable"] and 12 not in [r[0] for r in src["nullable"]]
    assert (21, 102, None) in src["nullable"] and (22, None, None) in src["nullable"]
    assert (102, "a", 2) in src["link"] and (21, 102, "a") in src["note"]
    assert not [r for r in src["node"] if 9000 <= r[0] < 10000]

    result = run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=4, batch_rows=50))
    assert result.sources[source.name].caught_up
    assert "while the copy ran" not in capfd.readouterr().err  # replayed past the copy's end: exact
    assert_same_rows(source, target, db, tdb)
    report = verify_plan(plan, wd)
    assert report.identical, report.model_dump()


def test_replay_from_before_the_cascades_over_a_later_copy_converges(source, target, fk_setup, capfd):
    """Copy read the tables after the cascades (and after the re-use of parent key 10); sync
    replays from the copy's start position, so its cascades run against newer rows."""
    db, tdb, wd, plan = fk_setup
    record_copy_start(wd, source)
    cascade_workload(source, db)
    for t, _ in SCHEMA:  # the naive copy, parents first (the target keeps its FKs checked here)
        naive_copy(source, target, db, t, tdb, t)
    record_copy_end(wd, source)
    mark_copied(wd, plan)
    with connect(source, "source", database=db) as c:  # and more after the copy
        query(c, "DELETE FROM parent WHERE id = 4")
        query(c, "UPDATE parent SET id = 110 WHERE id = 10")

    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=3, batch_rows=7))
    rows = assert_same_rows(source, target, db, tdb)
    assert (101, 110, "new") in rows["child"]
    assert verify_plan(plan, wd).identical
    # parent keys were deleted (or re-keyed) and used again while the copy ran: the one case replay
    # cannot promise (ON UPDATE CASCADE children), said once per parent table, with what to do
    err = capfd.readouterr().err
    assert err.count("was used again by another row while the copy ran") == 2, err
    assert f"{db}.parent key id=4 was used again" in err and f"{db}.child key id=71 was used again" in err
    assert f"run `migrator verify` on {db}.child, {db}.link, {db}.nullable and re-copy" in err


def killpg_workload(source, db: str, stop: threading.Event, seed: int) -> None:
    """Parents deleted and re-keyed (fresh keys) with children, grandchildren, links, notes."""
    rnd = random.Random(seed)
    next_id = 100
    with connect(source, "source", database=db, autocommit=False) as c:
        while not stop.is_set():
            base = next_id
            next_id += 4
            fill(c, range(base, base + 4))
            c.commit()
            with c.cursor() as cur:
                victim = base + rnd.randrange(4)
                cur.execute("DELETE FROM parent WHERE id = %s", (victim,))
                rekey = base + (victim - base + 1) % 4
                cur.execute("UPDATE parent SET id = %s WHERE id = %s", (rekey + 1_000_000, rekey))
                cur.execute("UPDATE child SET v = 'touched' WHERE pid = %s", (rekey + 1_000_000,))
                cur.execute("DELETE FROM node WHERE id = %s", (base * 1000,))
            c.commit()


def test_kill_9_of_the_sync_process_group_mid_workload_then_resume(source, target, fk_setup, tmp_path):
    db, tdb, wd, plan = fk_setup
    copy_done(wd, plan, source)
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    stop = threading.Event()
    writer = threading.Thread(target=killpg_workload, args=(source, db, stop, 5))
    writer.start()
    rnd = random.Random(3)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir",
                                     str(wd.root), "--batch-rows", "40"], cwd=ROOT, env=env, start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(1.5, 3.5))
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: runner and source processes at once
            proc.wait()
            proc.stderr.close()
    finally:
        stop.set()
        writer.join()
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    rows = assert_same_rows(source, target, db, tdb)
    assert len(rows["parent"]) > 20 and any(r[0] > 1_000_000 for r in rows["parent"])
    res = run_cli("verify", str(plan_path), "--workdir", str(wd.root))
    assert res.returncode == 0, res.stdout + res.stderr


def test_plan_says_when_sync_cannot_reproduce_a_cascade(source, target, unique_db):
    db = unique_db("cplan")
    with connect(source, "source") as c:
        query(c, f"CREATE DATABASE {quote_ident(db)}")
        for table, ddl in SCHEMA[:3]:
            query(c, ddl.format(name=qualified(db, table), db=quote_ident(db)))
    # the parent copied once but its deletes not replayed: the children's cascades are lost
    plan = build_plan([source], target, includes=[f"{db}.*"], copy_only=[f"{db}.parent"])
    blocking = [f for f in plan.findings if f.check == "fk.cascade-unsynced-parent"]
    assert blocking and blocking[0].severity == "blocking" and blocking[0].table == "child", plan.findings
    assert "parent" in blocking[0].message and blocking[0].fix
    assert not [f for f in plan.findings if f.check.startswith("fk.") and f.table == "grand"]
    # a child copied once: the source's cascades into it are not reproduced (it is not synced)
    plan = build_plan([source], target, includes=[f"{db}.*"], copy_only=[f"{db}.grand"])
    found = [f for f in plan.findings if f.check == "fk.cascade-copy-only-child"]
    assert found and found[0].severity == "warning" and found[0].table == "grand"
    # everything synced: cascades are reproduced, nothing to say
    plan = build_plan([source], target, includes=[f"{db}.*"])
    assert not [f for f in plan.findings if f.check.startswith("fk.cascade")]


def test_plan_foreign_keys_are_the_ones_sync_reads_from_the_source(source, target, unique_db):
    """Sync takes the FK graph from the plan when the plan has one (plan format 2), else from the
    source's catalog: both must give the same cascades."""
    db = unique_db("cgraph")
    create_schema(source, target, db, db + "_t")
    plan = build_plan([source], target, includes=[f"{db}.*"])
    planned = foreign_keys_from_plan(plan, source.name)
    if planned is None:
        pytest.skip("this plan format has no foreign-key graph yet (sync reads the source's catalog)")
    with connect(source, "source") as c:
        read = read_foreign_keys(c, [db])
    key = lambda fk: (fk.database, fk.table, fk.name)
    assert sorted(planned, key=key) == sorted(read, key=key)
    assert len(read) == 7 and {fk.on_delete for fk in read} == {"CASCADE", "SET NULL"}


MERGED_PARENT = """CREATE TABLE {name} (id INT NOT NULL, name VARCHAR(20) NOT NULL, shard VARCHAR(64) NOT NULL,
    PRIMARY KEY (id, shard))"""
MERGED_CHILD = """CREATE TABLE {name} (id INT NOT NULL, pid INT NULL, v VARCHAR(20), shard VARCHAR(64) NOT NULL,
    PRIMARY KEY (id, shard), KEY (pid, shard))"""


def test_cascades_stay_in_their_shard_of_a_merged_renamed_table(source, source2, target, unique_db, tmp_path):
    """Two shards with the same ids merged into renamed target tables with a source column: a
    parent deleted or re-keyed on one shard changes that shard's children only."""
    db, tdb = unique_db("cshard"), unique_db("cshard_t")
    shards = [(source, db + "_a"), (source2, db + "_b")]
    with connect(target, "target") as t:
        query(t, f"CREATE DATABASE {quote_ident(tdb)}")
        query(t, MERGED_PARENT.format(name=qualified(tdb, "all_parents")))
        query(t, MERGED_CHILD.format(name=qualified(tdb, "all_children")))
    for ep, sdb in shards:
        with connect(ep, "source") as c:
            query(c, f"CREATE DATABASE {quote_ident(sdb)}")
            query(c, SCHEMA[0][1].format(name=qualified(sdb, "parent")))
            query(c, """CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NULL, v VARCHAR(20), KEY (pid),
                CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES {db}.parent (id) ON DELETE CASCADE ON UPDATE CASCADE)
                """.format(name=qualified(sdb, "child"), db=quote_ident(sdb)))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source, source2], target,
                     [(ep.name, sdb, t, tdb, "all_children" if t == "child" else "all_parents", "shard")
                      for ep, sdb in shards for t in ("parent", "child")])
    copy_done(wd, plan, source, source2)
    for ep, sdb in shards:
        with connect(ep, "source", database=sdb) as c:
            query(c, "INSERT INTO parent VALUES (1, 'one'), (2, 'two'), (3, 'three')")
            query(c, "INSERT INTO child VALUES (10, 1, 'a'), (20, 2, 'b'), (30, 3, 'c')")
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2))  # both shards' rows on the target
    with connect(source, "source", database=shards[0][1]) as c:
        query(c, "DELETE FROM parent WHERE id = 1")
        query(c, "UPDATE parent SET id = 22 WHERE id = 2")
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2))
    with connect(target, "target") as t:
        got = query(t, f"SELECT shard, id, pid, v FROM {qualified(tdb, 'all_children')} ORDER BY shard, id")
    a, b = f"{source.name}/{shards[0][1]}", f"{source2.name}/{shards[1][1]}"
    assert got == [(a, 20, 22, "b"), (a, 30, 3, "c"), (b, 10, 1, "a"), (b, 20, 2, "b"), (b, 30, 3, "c")]


def test_a_foreign_key_added_while_sync_runs_and_unchecked_deletes(source, target, unique_db, tmp_path):
    """Sync re-reads the foreign keys after each DDL it replays; a parent deleted by a session with
    foreign_key_checks=0 cascades nothing on the source (the rows event says so), nor on the target."""
    db = unique_db("cddl")  # the same database name on both servers: the replayed ALTER's REFERENCES holds
    plain = [("parent", SCHEMA[0][1]),
             ("child", "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, pid INT NOT NULL, v VARCHAR(20), KEY (pid))")]
    for ep, role in ((source, "source"), (target, "target")):
        with connect(ep, role) as c:
            query(c, f"CREATE DATABASE {quote_ident(db)}")
            for table, ddl in plain:
                query(c, ddl.format(name=qualified(db, table)))
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, db, t, None) for t, _ in plain])
    copy_done(wd, plan, source)
    with connect(source, "source", database=db) as c:
        query(c, "INSERT INTO parent VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        query(c, "INSERT INTO child VALUES (10, 1, 'x'), (20, 2, 'y'), (30, 3, 'z')")
    syncing = threading.Thread(target=run_sync, args=(plan, wd, SyncOptions(duration=12, poll_interval=0.2)))
    syncing.start()  # reads the catalog at its start: no foreign key yet
    time.sleep(4)
    with connect(source, "source", database=db) as c:
        query(c, f"ALTER TABLE child ADD CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES {quote_ident(db)}.parent (id) "
                 "ON DELETE CASCADE")
        query(c, "DELETE FROM parent WHERE id = 2")  # cascades: child 20 goes, only in the source's engine
        query(c, "SET foreign_key_checks = 0")
        query(c, "DELETE FROM parent WHERE id = 3")  # cascades nothing: child 30 stays, an orphan
    syncing.join()
    tables = ["parent", "child"]
    src = all_rows(source, "source", db, tables)
    assert src["child"] == [(10, 1, "x"), (30, 3, "z")]
    assert all_rows(target, "target", db, tables) == src


def _table(db: str, table: str, mode: str = "copy+sync", target: str | None = None,
           source_column: str | None = None) -> TablePlan:
    return TablePlan(source="s1", database=db, table=table, target_database="t", target_table=target or table,
                     columns=[], key=["id"], mode=mode, source_column=source_column)  # type: ignore[arg-type]


def test_cascade_findings_for_actions_and_merges_sync_cannot_keep_exact():
    """Pure logic: what cascade_findings says for shapes MariaDB cannot produce (SET DEFAULT is
    turned into RESTRICT by InnoDB) and for merges."""
    fk = ForeignKey(name="fk", database="d", table="child", columns=("pid",), ref_database="d", ref_table="parent",
                    ref_columns=("id",), on_delete="SET DEFAULT", on_update="RESTRICT")
    found = cascade_findings("s1", [fk], [_table("d", "parent"), _table("d", "child")])
    assert [(f.check, f.severity, f.table) for f in found] == [("fk.action-unsupported", "blocking", "child")]
    assert "SET DEFAULT" in found[0].message
    merged = ForeignKey(name="fk", database="d", table="child", columns=("pid",), ref_database="d",
                        ref_table="parent", ref_columns=("id",), on_delete="CASCADE")
    tables = [_table("d", "parent"), _table("d", "child", target="all_children")]
    found = cascade_findings("s1", [merged], tables, merged={"t.all_children"})
    assert [(f.check, f.severity) for f in found] == [("fk.cascade-merged", "warning")]
    tables[1].source_column = "shard"  # a source column keeps each shard's cascades to its own rows
    assert cascade_findings("s1", [merged], tables, merged={"t.all_children"}) == []
    # RESTRICT everywhere: nothing cascades, nothing to say even with the parent copy-only
    plain = ForeignKey(name="fk", database="d", table="child", columns=("pid",), ref_database="d",
                       ref_table="parent", ref_columns=("id",))
    assert cascade_findings("s1", [plain], [_table("d", "parent", "copy-only"), _table("d", "child")]) == []


def _without_foreign_keys(ddl: str) -> str:
    """A test schema's CREATE TABLE without its CONSTRAINT ... FOREIGN KEY clauses (our own DDL text,
    one clause per line with its ON DELETE/UPDATE line after it): the target copy has no cycle."""
    lines = [ln for ln in ddl.splitlines() if not ln.strip().startswith(("CONSTRAINT", "ON DELETE", "ON UPDATE"))]
    out = "\n".join(lines)
    while ",\n)" in out:
        out = out.replace(",\n)", "\n)")
    return out


def sakila_workload(source, db: str, ops: int, seed: int) -> int:
    """Deletes and re-keys across the FK-heavy schema, each in its own transaction; the ones a
    RESTRICT refuses are rolled back (as an application would). Returns how many committed."""
    rnd = random.Random(seed)
    statements = [
        "DELETE FROM film WHERE film_id = {n}",  # film_text, film_actor -> note, film_category, inventory -> rental
        "UPDATE film SET film_id = film_id + 1000 WHERE film_id = {n}",
        "UPDATE actor SET actor_id = actor_id + 1000 WHERE actor_id = {n}",  # moves film_actor keys, notes follow
        "DELETE FROM actor WHERE actor_id = {n}",
        "DELETE FROM category WHERE category_id = {n}",  # a self-referencing subtree and its film_category rows
        "UPDATE language SET language_id = language_id + 100 WHERE language_id = {n}",  # CASCADE and SET NULL
        "DELETE FROM language WHERE language_id = {n}",
        "DELETE FROM customer WHERE customer_id = {n}",  # rental and payment, and payment via rental (SET NULL)
        "UPDATE customer SET customer_id = customer_id + 1000 WHERE customer_id = {n}",
        "UPDATE staff SET staff_id = staff_id + 1000 WHERE staff_id = {n}",  # store manager, payment, rental NULL
        "DELETE FROM staff WHERE staff_id = {n}",
        "UPDATE country SET country_id = country_id + 1000 WHERE country_id = {n}",
        "DELETE FROM rental WHERE rental_id = {n}",
        "UPDATE inventory SET inventory_id = inventory_id + 1000 WHERE inventory_id = {n}",
    ]
    done = 0
    with connect(source, "source", database=db, autocommit=False) as c, c.cursor() as cur:
        for _ in range(ops):
            try:
                cur.execute(rnd.choice(statements).format(n=rnd.randint(1, 20)))
                c.commit()
                done += 1
            except Exception as exc:  # noqa: BLE001 - a RESTRICT refusal (1451) is the application's problem
                assert getattr(exc, "args", [0])[0] == 1451, exc
                c.rollback()
    return done


def test_fk_heavy_schema_with_a_workload_during_the_copy_syncs_exactly(source, target, unique_db, tmp_path):
    """The sakila-style schema of tests/fk_schema.py (17 tables, chains 5 deep, a cycle,
    self-references, every action): deletes and re-keys before, during and after the copy."""
    fk_schema = pytest.importorskip("fk_schema")
    db = unique_db("csak")
    tdb = db + "_t"
    with connect(source, "source", autocommit=False) as c:
        fk_schema.load_fk_schema(c, db)
    with connect(target, "target") as t:
        query(t, f"CREATE DATABASE {quote_ident(tdb)}")
        for ddl in fk_schema.FK_SCHEMA_DDL:
            query(t, f"USE {quote_ident(tdb)}")
            query(t, _without_foreign_keys(ddl))
    tables = list(fk_schema.FK_TABLES)
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t in tables])
    record_copy_start(wd, source)
    assert sakila_workload(source, db, 25, seed=1) > 5
    for t in tables:  # chunks read after those changes: replay runs over newer rows
        naive_copy(source, target, db, t, tdb, t)
    sakila_workload(source, db, 10, seed=2)
    record_copy_end(wd, source)
    mark_copied(wd, plan)
    assert sakila_workload(source, db, 40, seed=3) > 10
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=4, batch_rows=20))
    with connect(source, "source") as s, connect(target, "target") as t:
        for table in tables:
            src = query(s, f"SELECT * FROM {qualified(db, table)} ORDER BY 1, 2")
            tgt = query(t, f"SELECT * FROM {qualified(tdb, table)} ORDER BY 1, 2")
            assert src == tgt, f"{table}: {sorted(set(src) ^ set(tgt))[:10]}"
    assert verify_plan(plan, wd).identical


class LiveSakilaWorkload:
    """An application on the FK-heavy schema, running until stopped: every round adds a film with
    its text, actor, note, category, inventory, customer, rental and payment (fresh keys), then
    deletes or re-keys random existing parents so cascades fire down every chain (film ->
    film_actor -> film_actor_note, film -> inventory -> rental -> payment, the category tree,
    staff <-> store). Keys are never used twice. A RESTRICT refusal (1451) is rolled back, as an
    application would; `done` counts the committed statements by kind."""

    OPS: ClassVar[list[tuple[str, str]]] = [
        ("film", "DELETE FROM film WHERE film_id = {n}"),
        ("film", "UPDATE film SET film_id = {fresh} WHERE film_id = {n}"),
        ("actor", "UPDATE actor SET actor_id = {fresh} WHERE actor_id = {n}"),
        ("actor", "DELETE FROM actor WHERE actor_id = {n}"),
        ("category", "DELETE FROM category WHERE category_id = {n}"),
        ("category", "UPDATE category SET category_id = {fresh} WHERE category_id = {n}"),
        ("language", "UPDATE language SET language_id = {lang} WHERE language_id = {n}"),
        ("language", "DELETE FROM language WHERE language_id = {n}"),
        ("customer", "DELETE FROM customer WHERE customer_id = {n}"),
        ("customer", "UPDATE customer SET customer_id = {fresh} WHERE customer_id = {n}"),
        ("staff", "UPDATE staff SET staff_id = {fresh} WHERE staff_id = {n}"),
        ("staff", "DELETE FROM staff WHERE staff_id = {n}"),
        ("country", "UPDATE country SET country_id = {fresh} WHERE country_id = {n}"),
        ("address", "UPDATE address SET address_id = {fresh} WHERE address_id = {n}"),
        ("inventory", "UPDATE inventory SET inventory_id = {fresh} WHERE inventory_id = {n}"),
        ("rental", "UPDATE rental SET rental_id = {fresh} WHERE rental_id = {n}"),
        ("rental", "DELETE FROM rental WHERE rental_id = {n}"),
    ]

    def __init__(self, source, db: str, seed: int):
        self.source, self.db, self.rnd = source, db, random.Random(seed)
        self.fresh = 100_000
        self.lang = 100  # language_id is a TINYINT UNSIGNED
        self.stop = threading.Event()
        self.done: dict[str, int] = {}
        self.refused = 0
        self.thread = threading.Thread(target=self.run)

    def _next(self) -> int:
        self.fresh += 1
        return self.fresh

    def _pick(self, cur, table: str) -> int | None:
        cur.execute(f"SELECT {table}_id FROM {table} ORDER BY RAND({self.rnd.randrange(1 << 30)}) LIMIT 1")
        row = cur.fetchone()
        return row[0] if row else None

    def add_film_subtree(self, cur) -> None:
        k = self._next()
        if self.lang < 250:
            self.lang += 1
            cur.execute("INSERT INTO language VALUES (%s, %s)", (self.lang, f"l{self.lang}"))
        lang = self._pick(cur, "language")
        store, staff, address = self._pick(cur, "store"), self._pick(cur, "staff"), self._pick(cur, "address")
        day = f"2025-03-{k % 28 + 1:02d} 10:{k % 60:02d}:00"
        for sql, args in (
            ("INSERT INTO film (film_id, title, language_id, original_language_id) VALUES (%s, %s, %s, %s)",
             (k, f"F{k}", lang, lang)),
            ("INSERT INTO film_text VALUES (%s, %s, %s)", (k, f"F{k}", "live")),
            ("INSERT INTO actor VALUES (%s, %s, %s)", (k, "A", f"L{k % 5}")),
            ("INSERT INTO film_actor VALUES (%s, %s, 1)", (k, k)),
            ("INSERT INTO film_actor_note (actor_id, film_id, note) VALUES (%s, %s, 'live')", (k, k)),
            ("INSERT INTO category VALUES (%s, %s, %s)", (k, f"c{k}", self._pick(cur, "category"))),
            ("INSERT INTO film_category VALUES (%s, %s)", (k, k)),
            ("INSERT INTO inventory VALUES (%s, %s, %s)", (k, k, store)),
            ("INSERT INTO customer VALUES (%s, %s, 'f', 'l', NULL, %s, %s)", (k, store, address, day)),
            ("INSERT INTO rental VALUES (%s, %s, %s, %s, NULL, %s)", (k, day, k, k, staff)),
            ("INSERT INTO payment VALUES (%s, %s, %s, %s, 2.50, %s)", (k, k, staff, k, day)),
        ):
            cur.execute(sql, args)

    def run(self) -> None:
        with connect(self.source, "source", database=self.db, autocommit=False) as c, c.cursor() as cur:
            while not self.stop.is_set():
                self.add_film_subtree(cur)
                c.commit()
                for _ in range(3):
                    kind, sql = self.rnd.choice(self.OPS)
                    n = self._pick(cur, kind)
                    if n is None or ("{lang}" in sql and self.lang >= 250):
                        continue
                    if "{lang}" in sql:
                        self.lang += 1
                    try:
                        cur.execute(sql.format(n=n, fresh=self._next(), lang=self.lang))
                        c.commit()
                        self.done[kind] = self.done.get(kind, 0) + 1
                    except Exception as exc:  # noqa: BLE001 - a RESTRICT refusal is the application's
                        assert getattr(exc, "args", [0])[0] == 1451, exc
                        c.rollback()
                        self.refused += 1
                time.sleep(0.02)


def test_fk_heavy_schema_plan_copy_sync_under_cascades_and_kill_9_verifies(source, target, unique_db, tmp_path):
    """Issue 14's "done when": the 17-table FK schema (chains 5 deep, the store <-> staff cycle,
    two self-references, every action) goes `migrator plan` -> `migrator copy` (which creates the
    target tables, no schema step) -> `migrator sync`, while an application deletes and re-keys
    parents with cascading children from before the copy until after sync; sync's process group
    is killed with SIGKILL three times on the way. Then verify exits 0 and every row of every
    table is equal on both sides, read by the test itself."""
    fk_schema = pytest.importorskip("fk_schema")
    db, tdb = unique_db("cfk"), unique_db("cfkt")
    plan_path, wd = tmp_path / "fk.yaml", str(tmp_path / "work")
    with connect(source, "source", autocommit=False) as c:
        fk_schema.load_fk_schema(c, db, rows_per_table=30)
    app = LiveSakilaWorkload(source, db, seed=14)
    try:
        planned = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                          "--route", f"{db}.*={tdb}.*", "--chunk-rows", "10", "--out", str(plan_path))
        assert planned.returncode == 0, planned.stdout + planned.stderr
        app.thread.start()  # during the copy: replay over later chunks, the sweep at the copy's end (window.py)
        copied = run_cli("copy", str(plan_path), "--workdir", wd, "--parallel", "3")
        assert copied.returncode == 0, copied.stdout + copied.stderr
        rnd = random.Random(9)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "sync", str(plan_path), "--workdir", wd,
                                     "--batch-rows", "15", "--workers", "3"], cwd=ROOT, env=env,
                                    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(2.0, 4.0))
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            os.killpg(proc.pid, signal.SIGKILL)  # runner, fork server and source processes at once
            proc.wait()
            proc.stderr.close()
    finally:
        app.stop.set()
        if app.thread.is_alive():
            app.thread.join()
    try:
        assert sum(app.done.values()) > 20 and {"film", "customer", "category"} <= set(app.done), app.done
        synced = run_cli("sync", str(plan_path), "--workdir", wd, "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        verified = run_cli("verify", str(plan_path), "--workdir", wd)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        with connect(source, "source") as s, connect(target, "target") as t:  # the row oracle
            for table in fk_schema.FK_TABLES:
                order = "ORDER BY 1, 2"
                src = query(s, f"SELECT * FROM {qualified(db, table)} {order}")
                tgt = query(t, f"SELECT * FROM {qualified(tdb, table)} {order}")
                assert src == tgt, f"{table}: {sorted(set(src) ^ set(tgt))[:10]}"
            films = [r[0] for r in query(t, f"SELECT film_id FROM {qualified(tdb, 'film')}")]
            assert any(f > 100_000 for f in films)  # live rows and re-keyed ones arrived
            rules = query(t, "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM "
                             "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (tdb,))
            assert {tuple(r) for r in rules} == {(c, p, d, u) for c, _, p, _, d, u in
                                                 fk_schema.FK_CASCADES + fk_schema.FK_RESTRICT_ONLY}  # made by copy
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


def test_copy_read_after_a_two_level_cascade_then_replay(source, target, unique_db, tmp_path):
    """a -> b -> c, ON DELETE CASCADE. After the copy's start position: INSERT c (child of b),
    DELETE a (InnoDB cascades to b and c; the binlog holds only a's row). The chunks are read
    after that (no b, no c). Sync replays from the start: the REPLACE of c puts it back; the
    replayed DELETE of a cascades to b's rows on the target, finds none, and never reaches c:
    the target kept a row the source does not have, until sync swept the rows the window wrote at
    the copy's end position (migrator/sync/window.py; more cases in tests/test_sync_window_sweep.py)."""
    db, tdb = unique_db("cpy2"), unique_db("cpy2t")
    chain = [("a", "CREATE TABLE a (id INT PRIMARY KEY)"),
             ("b", ("CREATE TABLE b (id INT PRIMARY KEY, a_id INT, KEY (a_id), "
                    "FOREIGN KEY (a_id) REFERENCES a (id) ON DELETE CASCADE)")),
             ("c", ("CREATE TABLE c (id INT PRIMARY KEY, b_id INT, KEY (b_id), "
                    "FOREIGN KEY (b_id) REFERENCES b (id) ON DELETE CASCADE)"))]
    try:
        create_plain_both(source, target, db, tdb, chain)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in chain])
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO a VALUES (1)")
            query(c, "INSERT INTO b VALUES (10, 1)")
        record_copy_start(wd, source)
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO c VALUES (100, 10)")
            query(c, "DELETE FROM a WHERE id = 1")
        for t, _ in chain:  # chunks read after the cascade
            naive_copy(source, target, db, t, tdb, t)
        record_copy_end(wd, source)
        mark_copied(wd, plan)
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        assert rows_of(target, "target", tdb, "c") == rows_of(source, "source", db, "c") == []
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


def test_cascades_on_a_referenced_column_outside_the_key(source, target, unique_db, tmp_path):
    """The child references the parent's UNIQUE `code`, not its primary key: an update or delete
    of a parent needs `code` from its before-image. Sync decodes only the key of before-images
    for tables outside every foreign key (tables.before_columns); a parent must keep them whole,
    else the cascade looks for code NULL and the children stay (failed when parents got key-only
    before-images)."""
    db, tdb = unique_db("cref"), unique_db("creft")
    ddl = [("p", "CREATE TABLE p (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE, v INT)"),
           ("c", ("CREATE TABLE c (id INT PRIMARY KEY, pcode VARCHAR(10), KEY (pcode), FOREIGN KEY (pcode) "
                  "REFERENCES p (code) ON DELETE CASCADE ON UPDATE CASCADE)"))]
    try:
        create_plain_both(source, target, db, tdb, ddl)
        wd = WorkDir(tmp_path / "work")
        plan = make_plan([source], target, [(source.name, db, t, tdb, t, None) for t, _ in ddl])
        copy_done(wd, plan, source)
        with connect(source, "source", database=db) as c:
            query(c, "INSERT INTO p VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0)")
            query(c, "INSERT INTO c VALUES (10, 'a'), (20, 'b'), (30, 'c')")
            query(c, "UPDATE p SET code = 'a2' WHERE id = 1")  # the child follows to 'a2'
            query(c, "DELETE FROM p WHERE id = 2")  # the child goes
            query(c, "UPDATE p SET v = 1 WHERE id = 3")  # nothing cascades
        run_sync(plan, wd, SyncOptions(until_caught_up=True))
        assert rows_of(source, "source", db, "c") == [(10, "a2"), (30, "c")]
        assert rows_of(target, "target", tdb, "c") == rows_of(source, "source", db, "c")
        assert rows_of(target, "target", tdb, "p") == rows_of(source, "source", db, "p")
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")
