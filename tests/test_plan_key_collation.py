"""Unique keys whose text columns change collation in the rewrite (latin1_swedish_ci ->
utf8mb4_general_ci, utf8mb4_unicode_ci -> utf8mb4_general_ci on seekdb): values distinct on the
source but equal on the target ('A'/'Ä', 's'/'ß') made the target keep one row of each pair, with
copy exiting 0. Plan now probes the source and blocks; --key-collation bin keeps them apart.
"""

from __future__ import annotations

import json

from plan_helpers import drop_dbs, make_db, run_cli, url
from sync_helpers import run_cli as sync_cli

from migrator.db import qualified, query, session
from migrator.plan.introspect import read_catalog
from migrator.plan.keycollation import key_collation_findings, show_value
from migrator.plan.model import load_plan
from migrator.schema.rewrite import rewrite_create_table
from migrator.schema.targets import default_caps

ROWS = [("A", 1), ("Ä", 2), ("u", 3), ("ü", 4), ("s", 5), ("ß", 6)]


def insert(db: str, table: str, rows: list[tuple], source) -> None:
    with session(source, "source", database=db) as conn:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {qualified(db, table)} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)


def plan(source, target, db: str, out, *extra: str):
    res = run_cli("plan", "--source", url(source), "--target", url(target), "--include", f"{db}.*",
                  "--out", str(out), *extra)
    return res, load_plan(out)


def by_table(p, check: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in p.findings:
        if f.check == check:
            out.setdefault(f.table, []).append(f)
    return out


def test_colliding_latin1_key_blocks_then_bin_copies_every_row(source, target, tgt_conn, unique_db, tmp_path):
    db = unique_db("kcol")
    make_db(source, db, ["CREATE TABLE k (name VARCHAR(10) PRIMARY KEY, v INT) CHARSET latin1"])
    insert(db, "k", ROWS, source)
    try:
        res, p = plan(source, target, db, tmp_path / "p.yaml")
        assert res.exit_code == 1, res.output  # was 0 (only the charset warning) before the probe
        (f,) = by_table(p, "key.collation-collision")["k"]
        assert f.severity == "blocking" and f.instance == p.sources[0].name and f.database == db
        assert "PRIMARY KEY (`name`)" in f.message and "3 row(s)" in f.message
        assert "latin1_swedish_ci -> utf8mb4_general_ci" in f.message
        assert "'A' / 'Ä'" in f.message and "'s' / 'ß'" in f.message and "'u' / 'ü'" in f.message
        assert "--key-collation bin" in f.fix
        assert "1 blocking finding(s)" in " ".join(res.output.split())

        res, p = plan(source, target, db, tmp_path / "bin.yaml", "--key-collation", "bin")
        assert res.exit_code == 0, res.output
        assert "COLLATE utf8mb4_bin" in p.tables[0].target_ddl
        assert by_table(p, "key.collation-forced")["k"][0].severity == "info"
        work = str(tmp_path / "work")
        copied = run_cli("copy", str(tmp_path / "bin.yaml"), "--workdir", work)
        assert copied.exit_code == 0, copied.output
        verified = run_cli("verify", str(tmp_path / "bin.yaml"), "--workdir", work)
        assert verified.exit_code == 0, verified.output
        got = query(tgt_conn, f"SELECT name, v FROM {qualified(db, 'k')} ORDER BY v")
        assert [tuple(r) for r in got] == ROWS
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")


def test_key_collation_bin_follows_foreign_keys_so_the_target_accepts_them(source, target, tgt_conn, unique_db,
                                                                          tmp_path):
    """--key-collation bin gave a latin1 parent key utf8mb4_bin and left the column referencing it
    (latin1, not a key of its table) utf8mb4_general_ci: seekdb refused the foreign key (1215,
    found by the fuzzer, seed 4) and copy created no table. The referencing columns take the
    parent's collation, down a chain whose middle key is itself a foreign key."""
    db = unique_db("kcfk")
    make_db(source, db, [
        "CREATE TABLE p (code VARCHAR(10) PRIMARY KEY) CHARSET latin1",
        "CREATE TABLE c (id INT PRIMARY KEY, code VARCHAR(10) CHARSET latin1 NOT NULL, "
        "FOREIGN KEY (code) REFERENCES p (code) ON UPDATE CASCADE) CHARSET utf8mb4",
        "CREATE TABLE m (code VARCHAR(10) NOT NULL, n INT, PRIMARY KEY (code, n), "
        "FOREIGN KEY (code) REFERENCES p (code) ON UPDATE CASCADE) CHARSET latin1",
        "CREATE TABLE g (id INT PRIMARY KEY, code VARCHAR(10) CHARSET latin1, n INT, "
        "FOREIGN KEY (code, n) REFERENCES m (code, n) ON UPDATE CASCADE) CHARSET utf8mb4"])
    insert(db, "p", [("A",), ("Ä",)], source)
    insert(db, "c", [(1, "A"), (2, "Ä")], source)
    insert(db, "m", [("A", 1), ("Ä", 1)], source)
    insert(db, "g", [(1, "A", 1), (2, "Ä", 1)], source)
    try:
        res, p = plan(source, target, db, tmp_path / "bin.yaml", "--key-collation", "bin")
        assert res.exit_code == 0, res.output
        ddl = {t.table: t.target_ddl for t in p.tables}
        for t in ("c", "g"):  # not keys of their tables, but referencing a key made _bin
            assert "`code` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" in ddl[t], ddl[t]
        work = str(tmp_path / "work")
        copied = run_cli("copy", str(tmp_path / "bin.yaml"), "--workdir", work)
        assert copied.exit_code == 0, copied.output
        got = query(tgt_conn, f"SELECT id, code FROM {qualified(db, 'g')} ORDER BY id")
        assert [tuple(r) for r in got] == [(1, "A"), (2, "Ä")]
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")


def test_keys_without_collisions_only_warn(source, target, unique_db, tmp_path):
    db = unique_db("kcol")
    make_db(source, db, ["CREATE TABLE k (name VARCHAR(10) PRIMARY KEY, v INT) CHARSET latin1",
                         # same rules after utf8mb3 -> utf8mb4: not a change, not probed
                         "CREATE TABLE same (name VARCHAR(10) PRIMARY KEY) CHARSET utf8mb3 COLLATE utf8mb3_general_ci"])
    insert(db, "k", [("A", 1), ("u", 3), ("s", 5)], source)
    try:
        res, p = plan(source, target, db, tmp_path / "p.yaml")
        assert res.exit_code == 0, res.output
        (f,) = by_table(p, "key.collation-changed")["k"]
        assert f.severity == "warning" and "PRIMARY KEY (`name`)" in f.message and "full scan" in f.message
        assert not any(f.table == "same" and f.check.startswith("key.collation") for f in p.findings)
        assert not by_table(p, "key.collation-collision")
    finally:
        drop_dbs(source, [db])


def test_composite_and_secondary_unique_keys(source, target, unique_db, tmp_path):
    db = unique_db("kcol")
    make_db(source, db, [
        "CREATE TABLE comp (tenant INT NOT NULL, name VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (tenant, name)) "
        "CHARSET latin1",
        # the secondary key is what collides: REPLACE on it would delete the other row
        "CREATE TABLE uq (id INT PRIMARY KEY, email VARCHAR(20), UNIQUE KEY email (email)) CHARSET latin1",
        # a collation remap without a charset change: unicode_ci tells 's' from 'ß', general_ci does not
        "CREATE TABLE uni (code VARCHAR(10) PRIMARY KEY) CHARSET utf8mb4 COLLATE utf8mb4_unicode_ci",
        # distinct tenants: ('A' on 1, 'Ä' on 2) do not collide
        "CREATE TABLE comp_ok (tenant INT NOT NULL, name VARCHAR(10) NOT NULL, PRIMARY KEY (tenant, name)) "
        "CHARSET latin1",
    ])
    insert(db, "comp", [(1, "A", 1), (1, "Ä", 2), (2, "A", 3)], source)
    insert(db, "uq", [(1, "o@x"), (2, "ö@x"), (3, None), (4, None)], source)
    insert(db, "uni", [("s",), ("ß",)], source)
    insert(db, "comp_ok", [(1, "A"), (2, "Ä")], source)
    try:
        res, p = plan(source, target, db, tmp_path / "p.yaml")
        assert res.exit_code == 1, res.output
        hits = by_table(p, "key.collation-collision")
        assert sorted(hits) == ["comp", "uni", "uq"]
        (comp,) = hits["comp"]
        assert "PRIMARY KEY (`tenant`, `name`)" in comp.message and "1 row(s)" in comp.message
        assert "'A' / 'Ä'" in comp.message
        (uq,) = hits["uq"]
        assert "UNIQUE KEY `email` (`email`)" in uq.message and "'o@x' / 'ö@x'" in uq.message  # NULLs not counted
        (uni,) = hits["uni"]
        assert "utf8mb4_unicode_ci -> utf8mb4_general_ci" in uni.message and "'s' / 'ß'" in uni.message
        assert by_table(p, "key.collation-changed")["comp_ok"][0].severity == "warning"
        assert not by_table(p, "key.collation-changed").get("uq")  # its PRIMARY KEY is an INT: not probed
    finally:
        drop_dbs(source, [db])


def test_target_collation_the_source_lacks_is_said_not_probed(source, unique_db):
    """TiDB maps utf8mb4_unicode_520_ci to utf8mb4_0900_ai_ci, which MariaDB 10.11 does not have."""
    db = unique_db("kcol")
    make_db(source, db, ["CREATE TABLE t (code VARCHAR(10) PRIMARY KEY) CHARSET utf8mb4 "
                         "COLLATE utf8mb4_unicode_520_ci", "INSERT INTO t VALUES ('s'), ('ß')"])
    try:
        with session(source, "source") as conn:
            (info,) = read_catalog(conn, source, [f"{db}.*"], []).tables
            (f,) = key_collation_findings(conn, source, "src", info, default_caps("tidb"))
        assert f.check == "key.collation-unprobed" and f.severity == "warning", f
        assert "utf8mb4_unicode_520_ci -> utf8mb4_0900_ai_ci" in f.message and "could not be probed" in f.message
        assert f.table == "t" and f.database == db and "--key-collation bin" in f.fix
    finally:
        drop_dbs(source, [db])


def test_forced_collation_is_written_on_the_key_columns_only():
    ddl = ("CREATE TABLE `t` (\n  `a` varchar(10) NOT NULL,\n  `b` varchar(10) CHARACTER SET utf8mb4 COLLATE "
           "utf8mb4_unicode_ci DEFAULT NULL,\n  `c` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`a`),\n"
           "  UNIQUE KEY `b` (`b`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci")
    got = rewrite_create_table(ddl, "oceanbase", "mariadb", default_caps("oceanbase"),
                               {"A": "utf8mb4_bin", "b": "utf8mb4_bin"})
    lines = {line.split()[0]: line for line in got.target_ddl.splitlines()[1:4]}
    assert "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL" in lines["`a`"]
    assert "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL" in lines["`b`"]
    assert "COLLATE" not in lines["`c`"]  # not in a key: the table default (utf8mb4_general_ci)
    assert sum(c.rule == "collation.key-override" for c in got.changes) == 2
    plain = rewrite_create_table(ddl, "oceanbase", "mariadb", default_caps("oceanbase"))  # the cache keeps them apart
    assert "utf8mb4_bin" not in plain.target_ddl


def test_example_values_are_escaped_and_truncated():
    assert show_value("a\nb'") == repr("a\nb'")
    long = show_value("x" * 100)
    assert len(long) == 40 and long.endswith("...")


def test_a_collision_written_after_plan_is_named_by_verify_with_no_fix_sql(source, target, tgt_conn, unique_db,
                                                                           tmp_path):
    """Plan probed no collision ('A', 'u', 's' only); then the application wrote 'Ä' before the copy
    and 'ü' while sync ran. Copy's and sync's REPLACE overwrite 'A' and 'u' on the target (its key
    takes them as equal). Before: verify listed 'A' and 'u' as plain missing rows, and its fix SQL
    REPLACEd them, overwriting 'Ä' and 'ü' in turn (a fix that destroys good rows, forever
    different). Now each is named as a key collation collision with the row the target kept, the
    table's note says what to do, and the fix SQL leaves both alone."""
    db = unique_db("kcol")
    make_db(source, db, ["CREATE TABLE k (name VARCHAR(10) PRIMARY KEY, v INT) CHARSET latin1"])
    insert(db, "k", [("A", 1), ("u", 3), ("s", 5), ("b", 7)], source)
    work, fix = str(tmp_path / "work"), tmp_path / "fix.sql"
    try:
        res, p = plan(source, target, db, tmp_path / "p.yaml", "--chunk-rows", "2")
        assert res.exit_code == 0 and by_table(p, "key.collation-changed")["k"], res.output
        insert(db, "k", [("Ä", 2)], source)
        copied = sync_cli("copy", str(tmp_path / "p.yaml"), "--workdir", work)
        assert copied.returncode == 0, copied.stdout + copied.stderr  # (copy cannot tell: it wrote 5 rows)
        insert(db, "k", [("ü", 4)], source)
        synced = sync_cli("sync", str(tmp_path / "p.yaml"), "--workdir", work, "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        kept = [tuple(r) for r in query(tgt_conn, f"SELECT name, v FROM {qualified(db, 'k')} ORDER BY v")]
        assert len(kept) == 4  # one of 'A'/'Ä' and one of 'u'/'ü'

        report = tmp_path / "report.json"
        verified = sync_cli("verify", str(tmp_path / "p.yaml"), "--workdir", work, "--fix-sql", str(fix),
                            "--report", str(report))
        assert verified.returncode == 1, verified.stdout + verified.stderr
        rows = json.loads(report.read_text())["rows"]
        assert len(rows) == 2 and all(r["kind"] == "missing" for r in rows)
        assert all(r["suspected"].startswith("key collation collision") for r in rows), rows
        lost = {r["key"][0] for r in rows}
        assert lost | {name for name, _ in kept} == {"A", "Ä", "u", "ü", "s", "b"}
        for r in rows:
            twin = {"A": "Ä", "Ä": "A", "u": "ü", "ü": "u"}[r["key"][0]]
            assert f"({twin!r})" in r["detail"] and "--key-collation bin" in r["detail"]
        out = " ".join(verified.stdout.split())
        assert "key collation collision: 2 source row(s)" in out and "re-plan with --key-collation bin" in out
        statements = [s for s in fix.read_text().splitlines() if s.startswith(("REPLACE", "DELETE"))]
        assert statements == []  # before: REPLACE ... ('A', 1) and ('u', 3), overwriting 'Ä' and 'ü'

        applied = sync_cli("verify", str(tmp_path / "p.yaml"), "--workdir", work, "--fix-sql", str(fix),
                           "--apply-fix")
        assert applied.returncode == 1, applied.stdout + applied.stderr
        assert [tuple(r) for r in query(tgt_conn, f"SELECT name, v FROM {qualified(db, 'k')} ORDER BY v")] == kept
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")


def test_key_collation_bin_holds_for_key_columns_altered_during_sync(source, target, tgt_conn, unique_db, tmp_path):
    """A plan made with --key-collation bin gives the key column utf8mb4_bin on the target. Before,
    an `ALTER TABLE ... MODIFY` of that column replayed by sync was rewritten without it (latin1 ->
    utf8mb4_general_ci): the target refused it over the rows 'A' and 'Ä' it held (1062, sync
    stopped), or on a table without such rows took it and later overwrote one of them silently."""
    db = unique_db("kcol")
    make_db(source, db, ["CREATE TABLE k (name VARCHAR(10) NOT NULL PRIMARY KEY, v INT, note VARCHAR(10)) "
                         "CHARSET latin1"])
    insert(db, "k", [("A", 1, "x"), ("Ä", 2, "y")], source)
    plan_file, work = tmp_path / "bin.yaml", str(tmp_path / "work")
    try:
        res, _ = plan(source, target, db, plan_file, "--key-collation", "bin")
        assert res.exit_code == 0, res.output
        copied = sync_cli("copy", str(plan_file), "--workdir", work)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        with session(source, "source", database=db) as conn:
            query(conn, "ALTER TABLE k MODIFY name VARCHAR(20) NOT NULL, MODIFY note VARCHAR(20)")
            query(conn, "INSERT INTO k VALUES ('u', 3, 'z'), ('ü', 4, 'w')")
        synced = sync_cli("sync", str(plan_file), "--workdir", work, "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        cols = dict(query(tgt_conn, "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'k'", (db,)))
        assert cols["name"] == "utf8mb4_bin" and cols["note"] == "utf8mb4_general_ci", cols  # only the key's
        got = [tuple(r) for r in query(tgt_conn, f"SELECT name, v FROM {qualified(db, 'k')} ORDER BY v")]
        assert got == [("A", 1), ("Ä", 2), ("u", 3), ("ü", 4)]
        verified = sync_cli("verify", str(plan_file), "--workdir", work)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        drop_dbs(source, [db])
        drop_dbs(target, [db], role="target")


def test_shards_merged_without_source_column_whose_keys_collide_only_on_the_target(source, source2, target,
                                                                                   tgt_conn, unique_db, tmp_path):
    """'A' on one shard, 'Ä' on another, latin1 keys merged into one utf8mb4_general_ci key. Before:
    plan said nothing (its cross-shard probe compares under the sources' collation), copy kept one
    row, and verify's fix SQL REPLACEd the other over it. Now plan warns, verify names the lost row
    as a collision with no fix SQL, and --key-collation bin moves every row."""
    base = unique_db("kmrg")
    tdb = base + "_all"
    shards = [(source, f"{base}_a", [("A", 1), ("c", 3)]), (source2, f"{base}_b", [("b", 2), ("Ä", 4)])]
    for ep, db, rows in shards:
        make_db(ep, db, ["CREATE TABLE k (name VARCHAR(10) NOT NULL PRIMARY KEY, v INT) CHARSET latin1"])
        insert(db, "k", rows, ep)

    def plan_merge(name: str, *extra: str):
        out = tmp_path / f"{name}.yaml"
        res = run_cli("plan", "--source", url(source), "--source", url(source2), "--target", url(target),
                      "--include", f"{base}_*.k", "--route", f"{base}_*.k={tdb}.k", "--out", str(out), *extra)
        assert res.exit_code == 0, res.output
        return out, load_plan(out)

    try:
        plan_file, p = plan_merge("merge")
        (f,) = [f for f in p.findings if f.check == "route.key-collation"]
        assert f.severity == "warning" and "PRIMARY KEY (`name`)" in f.message and "--key-collation bin" in f.fix
        work, fix, report = str(tmp_path / "w1"), tmp_path / "fix.sql", tmp_path / "r.json"
        copied = sync_cli("copy", str(plan_file), "--workdir", work)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert query(tgt_conn, f"SELECT COUNT(*) FROM {qualified(tdb, 'k')}")[0][0] == 3
        verified = sync_cli("verify", str(plan_file), "--workdir", work, "--fix-sql", str(fix), "--report", str(report))
        assert verified.returncode == 1, verified.stdout + verified.stderr
        (row,) = json.loads(report.read_text())["rows"]
        assert row["kind"] == "missing" and row["suspected"].startswith("key collation collision"), row
        assert {row["key"][0], row["detail"].split("equal to (")[1][1]} == {"A", "Ä"}
        assert not [s for s in fix.read_text().splitlines() if s.startswith(("REPLACE", "DELETE"))]

        drop_dbs(target, [tdb], role="target")
        plan_file, p = plan_merge("bin", "--key-collation", "bin")
        assert not [f for f in p.findings if f.check == "route.key-collation"]
        work = str(tmp_path / "w2")
        copied = sync_cli("copy", str(plan_file), "--workdir", work)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        verified = sync_cli("verify", str(plan_file), "--workdir", work)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        got = [tuple(r) for r in query(tgt_conn, f"SELECT name, v FROM {qualified(tdb, 'k')} ORDER BY v")]
        assert got == [("A", 1), ("b", 2), ("c", 3), ("Ä", 4)]
    finally:
        for ep, db, _ in shards:
            drop_dbs(ep, [db])
        drop_dbs(target, [tdb], role="target")
