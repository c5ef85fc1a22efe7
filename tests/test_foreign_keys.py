"""Foreign keys end to end on the real servers: creation order (cycles, self-references), target
sessions that never trip FK checks nor fire cascades, the plan's FK graph, routes."""

from __future__ import annotations

import pytest
import yaml

from migrator.db import connect, qualified, query, quote_ident
from migrator.plan.model import load_plan
from migrator.schema.fk import TableToCreate, creation_steps

from copy_helpers import assert_same_rows, run_cli
from fk_schema import FK_CASCADES, FK_RESTRICT_ONLY, FK_TABLES, load_fk_schema
from plan_helpers import drop_dbs, make_db, url


def _target_fks(tgt_conn, db: str) -> set[tuple[str, str, str, str]]:
    return {(r[0], r[1], r[2], r[3]) for r in query(
        tgt_conn, "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM "
                  "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (db,))}


def _expected_fks() -> set[tuple[str, str, str, str]]:
    return {(c, p, d, u) for c, _, p, _, d, u in FK_CASCADES + FK_RESTRICT_ONLY}


def _plan_copy_verify(source, target, tgt_conn, db: str, tdb: str, tmp_path, *, schema_first: bool) -> None:
    """plan (database renamed by a route) -> [schema --apply] -> copy -> verify through the CLI,
    then an oracle of our own: every row equal, every constraint on the target."""
    plan_path = tmp_path / "fk.yaml"
    planned = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                      "--route", f"{db}.*={tdb}.*", "--chunk-rows", "7", "--out", str(plan_path))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "foreign keys (26" in planned.stdout
    plan = load_plan(plan_path)
    got = {(fk.table.rsplit(".", 1)[1], tuple(fk.columns), fk.parent.rsplit(".", 1)[1], tuple(fk.parent_columns),
            fk.on_delete, fk.on_update) for fk in plan.foreign_keys or []}
    assert got == set(FK_CASCADES + FK_RESTRICT_ONLY)
    assert all(fk.parent_in_plan for fk in plan.foreign_keys or [])
    if schema_first:
        script = run_cli("schema", str(plan_path))
        assert script.returncode == 0
        text = script.stdout
        assert text.index("CREATE TABLE `country`") < text.index("CREATE TABLE `city`") < text.index(
            "CREATE TABLE `address`")
        assert "ALTER TABLE" in text and "ADD CONSTRAINT" in text  # the store <-> staff cycle
        applied = run_cli("schema", str(plan_path), "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
    wd = str(tmp_path / "work")
    copied = run_cli("copy", str(plan_path), "--parallel", "4", "--workdir", wd)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    verified = run_cli("verify", str(plan_path), "--workdir", wd)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for tp in plan.tables:
        assert assert_same_rows(source, target, tp) > 0
    assert _target_fks(tgt_conn, tdb) == _expected_fks()
    if schema_first:
        return
    # --restart empties referenced parents (TRUNCATE: error 1701 with the checks on)
    again = run_cli("copy", str(plan_path), "--restart", "--yes", "--workdir", wd)
    assert again.returncode == 0, again.stdout + again.stderr
    # sync applies tables on parallel workers: children may land before their parents
    _write_parents_and_children(source, db)
    synced = run_cli("sync", str(plan_path), "--workdir", wd, "--until-caught-up", "--workers", "4",
                     "--batch-rows", "1")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    verified = run_cli("verify", str(plan_path), "--workdir", wd)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for tp in plan.tables:
        assert_same_rows(source, target, tp)


def _write_parents_and_children(source, db: str) -> None:
    """New rows down the deepest chains (country -> ... -> payment, film -> ... -> rental), one
    transaction per level, plus updates and leaf deletes; no cascade fires."""
    conn = connect(source, "source", database=db)
    try:
        for k in range(201, 206):
            d = f"'2025-02-0{k - 200} 10:00:00'"
            for sql in (f"INSERT INTO country VALUES ({k}, 'C{k}', {d})", f"INSERT INTO city VALUES ({k}, 'c', {k})",
                        f"INSERT INTO address VALUES ({k}, 'a', NULL, {k}, '1')",
                        f"INSERT INTO language VALUES ({k}, 'l{k}')",
                        f"INSERT INTO film (film_id, title, language_id, original_language_id) VALUES ({k}, 'F', {k}, {k})",
                        f"INSERT INTO film_text VALUES ({k}, 'F', NULL)",
                        f"INSERT INTO store VALUES ({k}, NULL, {k})",
                        f"INSERT INTO staff VALUES ({k}, 's', 't', {k}, {k}, 1, 1)",
                        f"UPDATE store SET manager_staff_id = {k} WHERE store_id = {k}",
                        f"INSERT INTO inventory VALUES ({k}, {k}, {k})",
                        f"INSERT INTO customer VALUES ({k}, {k}, 'f', 'l', NULL, {k}, {d})",
                        f"INSERT INTO rental VALUES ({k}, {d}, {k}, {k}, NULL, {k})",
                        f"INSERT INTO payment VALUES ({k}, {k}, {k}, {k}, 1.25, {d})"):
                query(conn, sql)
        query(conn, "UPDATE film SET title = 'renamed' WHERE film_id <= 5")
        query(conn, "DELETE FROM payment WHERE payment_id <= 3")
    finally:
        conn.close()


@pytest.mark.parametrize("schema_first", [False, True], ids=["copy-creates", "schema-apply-first"])
def test_fk_schema_plan_copy_verify(source, target, src_conn, tgt_conn, unique_db, tmp_path, schema_first):
    """Failed before: without a schema step copy created children before parents with the checks
    on (1146, all 17 tables failed); after `schema --apply` child chunks arrived before their
    parents' rows (1452, 13 of 17 tables failed)."""
    db, tdb = unique_db("fk"), unique_db("fkt")
    try:
        load_fk_schema(src_conn, db, rows_per_table=12 if schema_first else 20)
        _plan_copy_verify(source, target, tgt_conn, db, tdb, tmp_path, schema_first=schema_first)
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [tdb], role="target")


def test_cycle_and_self_reference_need_no_unchecked_session(target, unique_db):
    """Tables given children first, with a cycle a -> b -> a and a self-reference: the steps alone
    (run with foreign_key_checks=1, where a reference to a missing table is error 1146) create all."""
    tdb = unique_db("cyc")
    tables = [
        TableToCreate(tdb, "leaf", "CREATE TABLE `leaf` (`id` INT PRIMARY KEY, `a_id` INT, KEY (`a_id`), "
                                   "CONSTRAINT `fk_leaf_a` FOREIGN KEY (`a_id`) REFERENCES `a` (`id`) ON DELETE CASCADE)"),
        TableToCreate(tdb, "a", "CREATE TABLE `a` (`id` INT PRIMARY KEY, `b_id` INT, KEY (`b_id`), "
                                "CONSTRAINT `fk_a_b` FOREIGN KEY (`b_id`) REFERENCES `b` (`id`) ON DELETE SET NULL)"),
        TableToCreate(tdb, "b", "CREATE TABLE `b` (`id` INT PRIMARY KEY, `a_id` INT, KEY (`a_id`), "
                                "CONSTRAINT `fk_b_a` FOREIGN KEY (`a_id`) REFERENCES `a` (`id`) ON UPDATE CASCADE)"),
        TableToCreate(tdb, "tree", "CREATE TABLE `tree` (`id` INT PRIMARY KEY, `up` INT, KEY (`up`), "
                                   "CONSTRAINT `fk_up` FOREIGN KEY (`up`) REFERENCES `tree` (`id`) ON DELETE CASCADE)"),
    ]
    steps = creation_steps(tables)
    creates = [s.table for s in steps if s.kind == "create"]
    assert creates.index("a") < creates.index("leaf")
    assert [s.table for s in steps if s.kind == "add-constraint"] == ["a"]  # the cycle, broken once
    conn = connect(target, "target")
    try:
        query(conn, "SET SESSION foreign_key_checks = 1")
        query(conn, f"CREATE DATABASE {quote_ident(tdb)}")
        for step in steps:
            query(conn, f"USE {quote_ident(tdb)}")
            query(conn, step.sql)
        got = {(r[0], r[1], r[2], r[3]) for r in query(
            conn, "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM "
                  "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s", (tdb,))}
        assert got == {("leaf", "a", "CASCADE", "RESTRICT"), ("a", "b", "SET NULL", "RESTRICT"),
                       ("b", "a", "RESTRICT", "CASCADE"), ("tree", "tree", "CASCADE", "RESTRICT")}
        # the constraints are enforced once the checks are on
        query(conn, f"INSERT INTO {qualified(tdb, 'tree')} VALUES (1, NULL), (2, 1)")
        query(conn, f"DELETE FROM {qualified(tdb, 'tree')} WHERE id = 1")
        assert query(conn, f"SELECT COUNT(*) FROM {qualified(tdb, 'tree')}") == [(0,)]
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
        conn.close()


def test_target_session_neither_trips_checks_nor_cascades(target, unique_db):
    """Measured on seekdb: with foreign_key_checks=0 (every migrator target session) a child may
    arrive before its parent, and a REPLACE / DELETE / key UPDATE of a parent leaves its children
    alone; with the checks on, REPLACE of a parent deletes its ON DELETE CASCADE children."""
    tdb = unique_db("rep")
    conn = connect(target, "target")
    try:
        query(conn, f"CREATE DATABASE {quote_ident(tdb)}")
        query(conn, f"USE {quote_ident(tdb)}")
        query(conn, "CREATE TABLE p (id INT PRIMARY KEY, v INT)")
        query(conn, "CREATE TABLE c (id INT PRIMARY KEY, p_id INT, KEY (p_id), CONSTRAINT fk_c FOREIGN KEY (p_id) "
                    "REFERENCES p (id) ON DELETE CASCADE ON UPDATE CASCADE)")
        query(conn, "CREATE TABLE n (id INT PRIMARY KEY, p_id INT, KEY (p_id), CONSTRAINT fk_n FOREIGN KEY (p_id) "
                    "REFERENCES p (id) ON DELETE SET NULL ON UPDATE SET NULL)")
        assert query(conn, "SELECT @@foreign_key_checks") == [(0,)]
        query(conn, "INSERT INTO c VALUES (10, 1), (11, 1), (20, 2)")  # children first
        query(conn, "INSERT INTO n VALUES (10, 1)")
        query(conn, "INSERT INTO p VALUES (1, 1), (2, 2)")
        query(conn, "REPLACE INTO p VALUES (1, 100)")
        query(conn, "UPDATE p SET id = 5 WHERE id = 2")
        query(conn, "DELETE FROM p WHERE id = 5")
        assert query(conn, "SELECT id, p_id FROM c ORDER BY id") == [(10, 1), (11, 1), (20, 2)]
        assert query(conn, "SELECT id, p_id FROM n") == [(10, 1)]
        query(conn, "SET SESSION foreign_key_checks = 1")
        query(conn, "INSERT INTO p VALUES (2, 2)")
        query(conn, "REPLACE INTO p VALUES (1, 101)")  # what a checked session would do to children
        assert query(conn, "SELECT id FROM c ORDER BY id") == [(20,)]
        assert query(conn, "SELECT id, p_id FROM n") == [(10, None)]
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
        conn.close()


def test_parent_outside_the_plan_is_a_warning_naming_both(source, target, unique_db, tmp_path):
    db = unique_db("out")
    make_db(source, db, [
        "CREATE TABLE parent (id INT PRIMARY KEY)",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, KEY (parent_id), CONSTRAINT fk_child_parent "
        "FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE)",
    ])
    path = tmp_path / "p.yaml"
    try:
        done = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                       "--exclude", f"{db}.parent", "--out", str(path), env={"COLUMNS": "240"})
        # the parent's deletes would cascade into the synced child, and sync does not read them: blocking
        assert done.returncode == 1, done.stdout + done.stderr
        plan = load_plan(path)
        [blocking] = [f for f in plan.findings if f.severity == "blocking"]
        assert blocking.check == "fk.cascade-unsynced-parent" and blocking.table == "child"
        [fk] = plan.foreign_keys or []
        assert (fk.table, fk.parent, fk.on_delete, fk.parent_in_plan) == (
            f"src1/{db}.child", f"src1/{db}.parent", "CASCADE", False)
        [finding] = [f for f in plan.findings if f.check == "fk.parent-not-migrated"]
        assert finding.severity == "warning" and finding.table == "child"
        assert f"{db}.child" in finding.message and f"{db}.parent" in finding.message
        assert "fk.parent-not-migrated" in done.stdout and "child(parent_id) -> parent(id) (parent not migrated)" in done.stdout
    finally:
        drop_dbs(source, [db])


def test_routes_keep_references_valid(source, source2, target, tgt_conn, unique_db, tmp_path):
    """Two shards with the same ids merged with a source column, and a parent renamed by a route:
    every reference points at the target names and includes the source column on both sides."""
    shards = [(source, unique_db("shard")), (source2, unique_db("shard"))]
    tdb = unique_db("merged")
    ddl = [
        "CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(20))",
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, KEY (customer_id), CONSTRAINT fk_o_c "
        "FOREIGN KEY (customer_id) REFERENCES customer (id) ON DELETE CASCADE ON UPDATE CASCADE)",
        "INSERT INTO customer VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO orders VALUES (1, 1), (2, 1), (3, 2)",
    ]
    path = tmp_path / "m.yaml"
    try:
        for ep, db in shards:
            make_db(ep, db, ddl)
        pattern = shards[0][1][:-1] + "*"
        done = run_cli("plan", "--source", url(source), "--source", url(source2), "--target", url(target),
                       "--include", f"{pattern}.*", "--route", f"{pattern}.customer={tdb}.client",
                       "--route", f"{pattern}.*={tdb}.*", "--with-source-column", "__source", "--out", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        plan = load_plan(path)
        orders = next(t for t in plan.tables if t.table == "orders")
        assert any(c.rule == "fk.route" for c in orders.changes)
        wd = str(tmp_path / "work")
        copied = run_cli("copy", str(path), "--workdir", wd)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        verified = run_cli("verify", str(path), "--workdir", wd)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        cols = query(tgt_conn, "SELECT COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM "
                               "information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'orders' "
                               "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY ORDINAL_POSITION", (tdb,))
        assert [tuple(r) for r in cols] == [("customer_id", "client", "id"), ("__source", "client", "__source")]
        assert query(tgt_conn, f"SELECT COUNT(*) FROM {qualified(tdb, 'orders')}") == [(6,)]
    finally:
        for ep, db in shards:
            drop_dbs(ep, [db])
        drop_dbs(target, [tdb], role="target")


def test_format_1_plan_still_loads(tmp_path):
    """Plans written before the FK graph load; their graph is unknown (None), not empty."""
    from migrator.plan.model import Plan, TargetPlan, dump_plan

    plan = Plan(target=TargetPlan(url="oceanbase://root@127.0.0.1:1", engine="oceanbase"), sources=[])
    raw = yaml.safe_load(dump_plan(plan))
    raw["format_version"] = 1
    raw.pop("foreign_keys")
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(raw))
    old = load_plan(path)
    assert old.format_version == 1 and old.foreign_keys is None
    # the fingerprint its copy/sync runs recorded (computed before plans had foreign_keys) still matches
    import hashlib
    import json
    body = old.model_dump(mode="json", exclude={"created_at", "migrator_version", "findings", "foreign_keys"})
    assert old.fingerprint() == hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def test_fk_schema_is_valid_on_the_source(src_conn, unique_db):
    """The shared schema: 17 tables, 26 foreign keys, data without an orphan."""
    db = unique_db("fks")
    try:
        counts = load_fk_schema(src_conn, db, rows_per_table=8)
        assert set(counts) == set(FK_TABLES) and len(FK_TABLES) >= 15
        assert query(src_conn, "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE "
                               "CONSTRAINT_SCHEMA = %s", (db,)) == [(26,)]
        for child, cols, parent, pcols, _, _ in FK_CASCADES + FK_RESTRICT_ONLY:
            on = " AND ".join(f"p.{quote_ident(a)} = c.{quote_ident(b)}" for a, b in zip(pcols, cols))
            orphans = query(src_conn, f"SELECT COUNT(*) FROM {qualified(db, child)} c LEFT JOIN {qualified(db, parent)} p "
                                      f"ON {on} WHERE c.{quote_ident(cols[0])} IS NOT NULL AND p.{quote_ident(pcols[0])} IS NULL")
            assert orphans == [(0,)], (child, cols)
    finally:
        query(src_conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")


def test_references_that_cannot_be_kept_are_left_out_with_the_reason():
    """Pure DDL logic: a parent routed to another database (OceanBase: error 1235) and a parent
    merged with a source column the child lacks drop the constraint with a warning; a renamed
    parent in the same database is referenced by its new name."""
    from migrator.plan.foreign_keys import retarget_references
    from migrator.plan.model import ForeignKey, TablePlan
    from migrator.schema.fk import foreign_keys_of

    def tp(table, tdb, ttable, ddl, source_column=None):
        return TablePlan(source="s", database="db", table=table, target_database=tdb, target_table=ttable, columns=[],
                         target_ddl=ddl, source_column=source_column)

    child_ddl = ("CREATE TABLE `c` (`id` INT PRIMARY KEY, `p_id` INT, KEY (`p_id`), CONSTRAINT `fk_c_p` FOREIGN KEY "
                 "(`p_id`) REFERENCES `p` (`id`) ON DELETE CASCADE)")
    parent_ddl = "CREATE TABLE `p` (`id` INT PRIMARY KEY)"
    fk = ForeignKey(name="fk_c_p", table="s/db.c", columns=["p_id"], parent="s/db.p", parent_columns=["id"],
                    on_delete="CASCADE")
    cases = {
        "other database": ([tp("c", "t1", "c", child_ddl), tp("p", "t2", "p", parent_ddl)], "oceanbase", "1235"),
        "source column": ([tp("c", "t1", "c", child_ddl), tp("p", "t1", "p", parent_ddl, "__source")], "oceanbase",
                          "__source"),
    }
    for what, (tables, engine, why) in cases.items():
        retarget_references(tables, [fk], engine)
        assert foreign_keys_of(tables[0].target_ddl) == [], what
        [change] = [c for c in tables[0].changes if c.rule == "fk.dropped"]
        assert change.severity == "warning" and why in change.reason, what
    tables = [tp("c", "t1", "c", child_ddl), tp("p", "t1", "parent_new", parent_ddl)]
    retarget_references(tables, [fk], "oceanbase")
    [con] = foreign_keys_of(tables[0].target_ddl)
    assert (con.ref_database, con.ref_table, con.on_delete) == (None, "parent_new", "CASCADE")
    tables = [tp("c", "t1", "c", child_ddl), tp("p", "t2", "p", parent_ddl)]
    retarget_references(tables, [fk], "mysql")  # MySQL keeps cross-database references
    [con] = foreign_keys_of(tables[0].target_ddl)
    assert (con.ref_database, con.ref_table) == ("t2", "p")


def test_a_foreign_key_added_during_sync_references_the_target_database(source, target, unique_db, tmp_path):
    """ALTER TABLE child ADD CONSTRAINT … REFERENCES parent replayed into a database of another
    name: the parent is the target's (the target session has no default database: error 1046)."""
    from migrator.sync.runner import run_sync
    from migrator.sync.stream import SyncOptions
    from sync_helpers import setup_tables

    db, tdb = unique_db("fkadd"), unique_db("fkadd_t")
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [
        ("parent", "CREATE TABLE {name} (id INT PRIMARY KEY)"),
        ("child", "CREATE TABLE {name} (id INT PRIMARY KEY, pid INT, KEY (pid))"),
    ])
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {qualified(db, 'parent')} VALUES (1), (2)")
        query(c, f"INSERT INTO {qualified(db, 'child')} VALUES (10, 1), (20, 2)")
        query(c, f"ALTER TABLE {qualified(db, 'child')} ADD CONSTRAINT fk_cp FOREIGN KEY (pid) REFERENCES parent (id) "
                 "ON DELETE CASCADE")
        query(c, f"DELETE FROM {qualified(db, 'parent')} WHERE id = 1")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    with connect(target, "target") as t:
        ref = query(t, "SELECT UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                       "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = 'child'", (tdb,))
        assert [tuple(r) for r in ref] == [(tdb, "parent")]
        assert [tuple(r) for r in query(t, f"SELECT id, pid FROM {qualified(tdb, 'child')} ORDER BY id")] == [(20, 2)]
