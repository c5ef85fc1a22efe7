"""Sync edge cases: a key changed only in case across workers, XA transactions, negative TIME
with fractions (each test failed before its fix)."""

from __future__ import annotations

from migrator.sync.runner import run_sync
from migrator.sync.stream import SyncOptions
from migrator.workdir import WorkDir
from sync_helpers import create_both, make_plan, mark_copied, naive_copy, record_copy_end, record_copy_start, rows_of, setup_tables

from migrator.db import connect, qualified, query

CI_DDL = """CREATE TABLE {name} (
  k VARCHAR(32) NOT NULL PRIMARY KEY,
  v INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""


def test_key_changed_only_in_case_is_not_lost_across_workers(source, target, unique_db, tmp_path):
    """UPDATE k='a' -> 'A' on a case-insensitive key: the delete of 'a' and the REPLACE of 'A'
    are the same row to the target; on two worker connections the delete could run last and
    remove the new row."""
    db = unique_db("ci")
    tdb = db + "_t"
    create_both(source, target, db, tdb, [("t", CI_DDL)])
    wd = WorkDir(tmp_path / "work")
    plan = make_plan([source], target, [(source.name, db, "t", tdb, "t", None)])
    with connect(source, "source") as c:
        query(c, f"INSERT INTO {qualified(db, 't')} VALUES " + ",".join(f"('key{i}', {i})" for i in range(400)))
    record_copy_start(wd, source)
    naive_copy(source, target, db, "t", tdb, "t")
    with connect(source, "source") as c:
        query(c, f"UPDATE {qualified(db, 't')} SET k = UPPER(k), v = v + 1")
    record_copy_end(wd, source)
    mark_copied(wd, plan)

    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=4, batch_rows=5000))  # hung in 1213 retries
    src = rows_of(source, "source", db, "t", "BINARY k, v")
    tgt = rows_of(target, "target", tdb, "t", "CAST(k AS BINARY), v")
    assert len(tgt) == len(src) == 400
    assert [(bytes(a), b) for a, b in tgt] == [(bytes(a), b) for a, b in src]


def test_xa_transaction_rows_are_not_dropped_silently(source, target, unique_db, tmp_path):
    """MariaDB binlogs an XA transaction's rows at XA PREPARE (an event sync does not read), then
    XA COMMIT in its own event group: the rows were discarded at the next GTID, without a word."""
    db = unique_db("xa")
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", CI_DDL)])
    xid = f"'{db}'"
    with connect(source, "source") as c:
        for sql in (f"XA START {xid}", f"INSERT INTO {qualified(db, 't')} VALUES ('xa', 1)", f"XA END {xid}",
                    f"XA PREPARE {xid}", f"XA COMMIT {xid}", f"INSERT INTO {qualified(db, 't')} VALUES ('plain', 2)"):
            query(c, sql)
    run_sync(plan, wd, SyncOptions(until_caught_up=True, workers=2))  # held at PREPARE, applied at COMMIT
    assert rows_of(target, "target", tdb, "t", "k, v") == rows_of(source, "source", db, "t", "k, v")


def test_negative_time_with_fraction_keeps_its_value(source, target, unique_db, tmp_path):
    """mysql-replication decodes a negative TIME(fsp) wrongly: '-00:00:01.000001' -> -1.999999 s."""
    db = unique_db("tm")
    tdb = db + "_t"
    ddl = "CREATE TABLE {name} (id INT PRIMARY KEY, t0 TIME, t2 TIME(2), t6 TIME(6))"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("v", ddl)])
    with connect(source, "source") as c:
        query(c, f"""INSERT INTO {qualified(db, 'v')} VALUES (1, '-00:00:01', '-00:00:00.50', '-00:00:01.000001'),
                     (2, '-01:00:00', '-12:30:00.25', '-838:59:58.999999'), (3, '00:00:00', '00:00:00.99', '-00:00:00.000001'),
                     (4, '-838:59:59', '-00:00:01.00', '-12:00:00.5')""")
    run_sync(plan, wd, SyncOptions(until_caught_up=True))
    cols = "id, CAST(t0 AS CHAR), CAST(t2 AS CHAR), CAST(t6 AS CHAR)"
    assert rows_of(target, "target", tdb, "v", cols) == rows_of(source, "source", db, "v", cols)
