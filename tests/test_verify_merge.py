"""Verify of a shard merge without a source column: 13 shards on 12 real MariaDB instances (two
shards on src1, one on src2, one on each of ten instances started for this module) with disjoint
ids merged into one table, through `migrator plan` / `copy` / `sync` / `verify`.

The target cannot tell the shards' rows apart, so verify compares the merged table with the
union of its sources: identical after copy and after sync, and planted differences named by
shard and key, with fix SQL that deletes only the row no shard holds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from plan_helpers import drop_dbs, url
from sync_helpers import run_cli

from migrator.db import connect, qualified, query, quote_ident
from migrator.endpoint import Endpoint
from migrator.plan.model import load_plan
from migrator.verify.compare import verify_plan
from migrator.workdir import WorkDir

FLEET = 10  # instances started for this module, besides the shared src1 and src2
SHARDS = FLEET + 3  # src1 holds shards 0 and 1, src2 shard 2, fleet instance k shard 3 + k
INTERLEAVED = (SHARDS - 2, SHARDS - 1)  # the last two shards' key ranges overlap
ROWS = 200
DDL = ("CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer VARCHAR(20) NOT NULL, "
       "amount DECIMAL(10,2) NOT NULL, note VARCHAR(30) NULL)")


def shard_ids(i: int) -> list[int]:
    """Shard i owns ids i*1000+1 .. i*1000+200; the two INTERLEAVED shards share 20001..20400
    (even / odd ids), so their key ranges overlap while their keys stay disjoint."""
    if i in INTERLEAVED:
        return list(range(20_001 + INTERLEAVED.index(i), 20_001 + 2 * ROWS, 2))
    return list(range(i * 1000 + 1, i * 1000 + ROWS + 1))


@pytest.fixture(scope="module")
def fleet_sources(mariadb_fleet) -> list[Endpoint]:
    started = time.monotonic()
    fleet = mariadb_fleet(FLEET, "mshard")
    print(f"{FLEET} MariaDB instances started in {time.monotonic() - started:.1f}s")
    return fleet


def _verify(plan: Path, wd: Path, tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    report = tmp_path / f"report{len(list(tmp_path.glob('report*')))}.json"
    res = run_cli("verify", str(plan), "--workdir", str(wd), "--report", str(report), *args)
    assert res.returncode in (0, 1), res.stdout + res.stderr
    return res.returncode, json.loads(report.read_text()), res.stdout


def _target_ids(target: Endpoint, tdb: str) -> list[int]:
    with connect(target, "target") as t:
        return [r[0] for r in query(t, f"SELECT id FROM {qualified(tdb, 'orders')} ORDER BY id")]


def test_merge_of_twelve_instances_without_source_column_verifies_by_union(source, source2, fleet_sources, target,
                                                                          unique_db, tmp_path):
    base = unique_db("mv")
    tdb = base + "_all"
    instances = [source, source2, *fleet_sources]
    shards = [(ep, f"{base}_{i:02d}") for i, ep in enumerate([source, *instances])]
    assert len(shards) == SHARDS and len({ep.port for ep, _ in shards}) == len(instances) == 12
    owner = {}  # id -> (table id in the plan, endpoint, db)
    try:
        for i, (ep, db) in enumerate(shards):
            with connect(ep, "source") as c:
                query(c, f"CREATE DATABASE {quote_ident(db)}")
                query(c, f"USE {quote_ident(db)}")
                query(c, DDL)
                rows = [(k, f"c{k % 37}", f"{k}.25", None if k % 3 else f"n{k}") for k in shard_ids(i)]
                with c.cursor() as cur:
                    cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", rows)
                for k in shard_ids(i):
                    owner[k] = (f"{ep.name}/{db}.orders", ep, db)

        plan = tmp_path / "merge.yaml"
        wd = tmp_path / "work"
        made = run_cli("plan", *[a for ep in instances for a in ("--source", url(ep))],
                       "--target", url(target), "--include", f"{base}_*.orders",
                       "--route", f"{base}_*.orders={tdb}.orders", "--chunk-rows", "50", "--out", str(plan))
        assert made.returncode == 0, made.stdout + made.stderr
        copied = run_cli("copy", str(plan), "--workdir", str(wd))
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert _target_ids(target, tdb) == sorted(owner)  # 2,600 rows, from 13 shards on 12 instances

        # after copy: identical (before the fix: every other shard's rows were "extra", exit 1)
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 0, out
        assert report["rows"] == [] and len(report["tables"]) == SHARDS
        assert sum(t["rows_source"] for t in report["tables"]) == SHARDS * ROWS
        # as if killed before the last two shared ranges were journaled: the rest is resumed
        journal = WorkDir(wd).verify_journal
        lines = journal.read_text().splitlines()
        journal.write_text("\n".join(lines[:-3]) + "\n")
        again = verify_plan(load_plan(plan), wd)
        assert again.identical and sum(t.chunks_resumed for t in again.tables) > 0
        assert sum(t.rows_source for t in again.tables) == SHARDS * ROWS

        # changes on the sources, replayed by sync: identical again
        for i, (ep, db) in enumerate(shards):
            with connect(ep, "source") as c:
                o = qualified(db, "orders")
                first = shard_ids(i)[0]
                query(c, f"UPDATE {o} SET amount = amount + 1 WHERE id = {first}")
                query(c, f"DELETE FROM {o} WHERE id = {first + 2 * 4}")
                new = first + 2 * ROWS if i in INTERLEAVED else first + ROWS  # still its own, disjoint
                query(c, f"INSERT INTO {o} VALUES ({new}, 'late', 1.50, 'sync')")
                owner.pop(first + 2 * 4)
                owner[new] = (f"{ep.name}/{db}.orders", ep, db)
        synced = run_cli("sync", str(plan), "--workdir", str(wd), "--until-caught-up")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 0, out
        assert report["rows"] == []

        # planted: a missing row (shard 3), an extra row on no source (inside shard 5's range),
        # a changed value (shard 7)
        missing, extra, changed = 3 * 1000 + 17, 5 * 1000 + 500, 7 * 1000 + 42
        with connect(target, "target") as t:
            o = qualified(tdb, "orders")
            query(t, f"DELETE FROM {o} WHERE id = {missing}")
            query(t, f"INSERT INTO {o} VALUES ({extra}, 'nobody', 9.99, NULL)")
            query(t, f"UPDATE {o} SET amount = 0 WHERE id = {changed}")
        fix = tmp_path / "fix.sql"
        code, report, out = _verify(plan, wd, tmp_path, "--fix-sql", str(fix))
        assert code == 1, out
        found = {r["kind"]: (r["table"], r["key"]) for r in report["rows"]}
        assert len(report["rows"]) == 3
        assert found["missing"] == (owner[missing][0], [missing]) and found["changed"] == (owner[changed][0], [changed])
        assert found["extra"][1] == [extra]
        assert [r["columns"] for r in report["rows"] if r["kind"] == "changed"] == [["amount"]]
        statements = [s for s in fix.read_text().splitlines() if s and not s.startswith(("--", "SET "))]
        deletes = [s for s in statements if s.startswith("DELETE")]
        assert deletes == [f"DELETE FROM {qualified(tdb, 'orders')} WHERE `id` = {extra};"]
        assert sorted(s.split("VALUES (")[1].split(",")[0] for s in statements if s.startswith("REPLACE")) == sorted(
            [str(missing), str(changed)])

        # --tables on one shard: its own difference only, never the other shards' rows
        code, report, out = _verify(plan, wd, tmp_path, "--tables", owner[missing][0], "--fix-sql",
                                    str(tmp_path / "fix3.sql"))
        assert code == 1, out
        assert [(r["table"], r["key"], r["kind"]) for r in report["rows"]] == [
            (owner[missing][0], [missing], "missing")]
        assert [t["table"] for t in report["tables"]] == [owner[missing][0]]
        assert "DELETE FROM" not in (tmp_path / "fix3.sql").read_text()
        shard5 = f"{shards[5][0].name}/{shards[5][1]}.orders"
        code, report, out = _verify(plan, wd, tmp_path, "--tables", shard5)
        assert code == 1, out  # a row in its key range that no shard holds is its difference
        assert [(r["key"], r["kind"]) for r in report["rows"]] == [([extra], "extra")]
        shard1 = f"{shards[1][0].name}/{shards[1][1]}.orders"
        code, report, out = _verify(plan, wd, tmp_path, "--tables", shard1)
        assert code == 0, out

        # the fix repairs exactly these rows; other shards' rows untouched
        code, report, out = _verify(plan, wd, tmp_path, "--fix-sql", str(fix), "--apply-fix")
        assert report["fixes_applied"] and all(r["fixed"] for r in report["rows"]), out
        assert code == 0, out
        assert _target_ids(target, tdb) == sorted(owner)
        code, report, out = _verify(plan, wd, tmp_path)
        assert code == 0 and report["rows"] == [], out
    finally:
        for ep in instances:
            drop_dbs(ep, [db for e, db in shards if e is ep])
        drop_dbs(target, [tdb], role="target")


def test_text_key_merge_is_one_range_and_a_key_on_two_shards_is_a_collision(source, source2, target, unique_db,
                                                                            tmp_path):
    from verify_helpers import make_plan, run_verify_cli, table_plan

    base = unique_db("mt")
    tdb = base + "_all"
    shards = [(source, f"{base}_a", "a"), (source2, f"{base}_b", "b"), (source, f"{base}_c", "c")]
    ddl = "CREATE TABLE t (code VARCHAR(10) NOT NULL PRIMARY KEY, v INT NOT NULL)"
    try:
        with connect(target, "target") as t:
            query(t, f"CREATE DATABASE {quote_ident(tdb)}")
            query(t, f"USE {quote_ident(tdb)}")
            query(t, ddl)
            for _, _, p in shards:
                query(t, "INSERT INTO t VALUES " + ", ".join(f"('{p}{i:03d}', {i})" for i in range(50)))
        tables = []
        for ep, db, p in shards:
            with connect(ep, "source") as c:
                query(c, f"CREATE DATABASE {quote_ident(db)}")
                query(c, f"USE {quote_ident(db)}")
                query(c, ddl)
                query(c, "INSERT INTO t VALUES " + ", ".join(f"('{p}{i:03d}', {i})" for i in range(50)))
                tables.append(table_plan(c, ep.name, db, "t", target_db=tdb, chunk_rows=20))
        plan = make_plan([source, source2], target, tables)
        code, out = run_verify_cli(plan, tmp_path)
        assert code == 0, out
        assert "whole key range (text key" in out

        with connect(target, "target") as t:
            query(t, f"DELETE FROM {qualified(tdb, 't')} WHERE code = 'b010'")
            query(t, f"INSERT INTO {qualified(tdb, 't')} VALUES ('zz', 1)")
        with connect(source, "source") as c:  # shard c now also holds a key of shard a
            query(c, f"INSERT INTO {qualified(shards[2][1], 't')} VALUES ('a005', 99)")
        fix = tmp_path / "fix.sql"
        code, out = run_verify_cli(plan, tmp_path, "--fix-sql", str(fix), "--json")
        assert code == 1, out
        report = json.loads(out[out.index("{"):])
        rows = sorted((r["key"][0], r["kind"], r["table"].split("/")[1]) for r in report["rows"])
        assert rows == [("a005", "changed", f"{base}_a.t"), ("a005", "changed", f"{base}_c.t"),
                        ("b010", "missing", f"{base}_b.t"), ("zz", "extra", f"{base}_a.t")]
        assert all("--with-source-column" in r["detail"] for r in report["rows"] if r["key"] == ["a005"])
        statements = [s for s in fix.read_text().splitlines() if s.startswith(("DELETE", "REPLACE"))]
        assert [s.split(" ")[0] for s in statements] == ["DELETE", "REPLACE"]
        assert "'zz'" in statements[0] and "'b010'" in statements[1]

        # the same on Dask workers: a member's share of a range is read without the target
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                      dashboard_address=None, silence_logs=40) as cluster:
            url_ = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
            remote = verify_plan(plan, tmp_path / "dask", executor=url_)
        assert sorted((r.key[0], r.kind, r.table) for r in remote.rows) == sorted(
            (r["key"][0], r["kind"], r["table"]) for r in report["rows"])
    finally:
        for ep, db, _ in shards:
            drop_dbs(ep, [db])
        drop_dbs(target, [tdb], role="target")
