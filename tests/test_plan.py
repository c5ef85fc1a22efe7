"""build_plan on real sources: keys, chunk boundaries, shard merges with real key collisions."""

from __future__ import annotations

import pytest
from plan_helpers import checks, drop_dbs, insert_ids, make_db

from migrator.db import qualified, query, session
from migrator.errors import ConfigError
from migrator.plan.build import build_plan
from migrator.keys import PaginationKey, range_sql
from migrator.plan.model import dump_plan, load_plan, save_plan
from migrator.plan.routes import parse_route, route_target

SHARD = "CREATE TABLE acct (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, v VARCHAR(20) NOT NULL, " \
        "code INT NULL, PRIMARY KEY (id), UNIQUE KEY uk_v (v))"


def rows_in_chunk(conn, db, table, key, chunk) -> int:
    """Count the source rows a chunk covers, with the half-open predicate copy and verify use."""
    where, params = range_sql(key, PaginationKey.decode(chunk.lower), PaginationKey.decode(chunk.upper))
    sql = f"SELECT COUNT(*) FROM {qualified(db, table)}" + (" WHERE " + " AND ".join(where) if where else "")
    return int(query(conn, sql, params)[0][0])


def test_composite_key_chunks_cover_every_row_once(source, target, unique_db):
    db = unique_db("chunk")
    make_db(source, db, [
        "CREATE TABLE ev (tenant VARCHAR(8) NOT NULL, seq INT NOT NULL, at DATETIME(6) NOT NULL, "
        "PRIMARY KEY (tenant, seq))",
        "INSERT INTO ev SELECT CONCAT('t', seq % 7), seq, '2024-01-01 00:00:00.5' FROM seq_1_to_95",
        "CREATE TABLE dense (id INT NOT NULL PRIMARY KEY, v INT)",
        "INSERT INTO dense SELECT seq, seq FROM seq_1_to_1000",
        "ANALYZE TABLE dense",
        # ENUM sorts by index but compares as text: a keyset over it could skip rows
        "CREATE TABLE st (s ENUM('z','a','m') NOT NULL, n INT NOT NULL, PRIMARY KEY (s, n))",
        "INSERT INTO st SELECT ELT(1 + seq % 3, 'z', 'a', 'm'), seq FROM seq_1_to_30",
    ])
    try:
        plan = build_plan([source], target, includes=[f"{db}.*"], chunk_rows=10)
        ev, dense = (next(t for t in plan.tables if t.table == n) for n in ("ev", "dense"))
        assert ev.key == ["tenant", "seq"] and ev.key_kind == "primary"
        assert ev.estimated_rows == 95 and len(ev.chunks) == 10  # 9 full chunks + the open tail
        assert ev.chunks[0].lower is None and ev.chunks[-1].upper is None
        assert all(a.upper == b.lower for a, b in zip(ev.chunks, ev.chunks[1:]))
        with session(source, "source") as conn:
            counts = [rows_in_chunk(conn, db, "ev", ev.key, c) for c in ev.chunks]
            assert counts == [10] * 9 + [5] and counts == [c.estimated_rows for c in ev.chunks]
            # the dense integer key is split by value; every row still lands in exactly one chunk
            dense_counts = [rows_in_chunk(conn, db, "dense", dense.key, c) for c in dense.chunks]
        assert len(dense.chunks) >= 8 and sum(dense_counts) == 1000 and max(dense_counts) <= 200
        st = next(t for t in plan.tables if t.table == "st")
        assert len(st.chunks) == 1 and st.chunks[0].lower is None and st.chunks[0].upper is None
        assert any(f.check == "chunk.whole-table" and f.table == "st" for f in plan.findings)
        # the plan round-trips through its YAML file
        again = load_plan_text(dump_plan(plan), tmp_name=db)
        assert again.tables[0].chunks == plan.tables[0].chunks
    finally:
        drop_dbs(source, [db])


def load_plan_text(text: str, tmp_name: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{tmp_name}.yaml"
        path.write_text(text)
        return load_plan(path)


def test_shard_merge_collision_detected_and_resolved_with_source_column(source, source2, target, tgt_conn,
                                                                         unique_db, tmp_path):
    a, b, merged = unique_db("sa"), unique_db("sb"), unique_db("merged")
    for ep, db in ((source, a), (source2, b)):
        make_db(ep, db, [SHARD])
    insert_ids(source, a, "acct", range(1, 31))       # ids 1..30, v1..v30
    insert_ids(source2, b, "acct", range(21, 41))     # ids 21..40 overlap 21..30
    route = f"t_s*.acct={merged}.acct"
    try:
        plan = build_plan([source, source2], target, includes=[f"{a}.*", f"{b}.*"], routes=[route])
        assert {t.target_name for t in plan.tables} == {f"{merged}.acct"}
        collisions = [f for f in plan.findings if f.check == "route.key-collision"]
        assert {f.severity for f in collisions} == {"blocking"}
        by_key = {f.message.split(": ", 1)[1].split(" ")[0]: f for f in collisions}
        assert set(by_key) == {"PRIMARY", "uk_v"}  # both the PK and the unique key collide
        assert "--with-source-column" in by_key["PRIMARY"].fix
        assert plan.blocking()

        plan = build_plan([source, source2], target, includes=[f"{a}.*", f"{b}.*"], routes=[route],
                          source_column="__source")
        assert not plan.blocking(), plan.blocking()
        assert {t.source_column for t in plan.tables} == {"__source"}
        # the merged table's counter starts above both shards' (31 and 41), whichever DDL creates it
        assert all("AUTO_INCREMENT=41" in t.target_ddl for t in plan.tables)
        assert "route.implicit-merge" not in checks(plan.findings)  # the route says the merge is intended
        assert "route.source-column" in checks(plan.findings, "info")
        path = tmp_path / "merge.yaml"
        save_plan(plan, path)
        from plan_helpers import run_cli

        result = run_cli("schema", str(path), "--apply")
        assert result.exit_code == 0, result.output
        pk = query(tgt_conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
                             "TABLE_NAME = 'acct' AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (merged,))
        assert [r[0] for r in pk] == ["id", "__source"]
        uk = query(tgt_conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
                             "TABLE_NAME = 'acct' AND INDEX_NAME = 'uk_v' ORDER BY SEQ_IN_INDEX", (merged,))
        assert [r[0] for r in uk] == ["v", "__source"]
        # the same key from two shards now fits side by side
        query(tgt_conn, f"INSERT INTO {qualified(merged, 'acct')} (id, v, __source) VALUES "
                        f"(21, 'v21', 'src1/{a}'), (21, 'v21', 'src2/{b}')")
        assert "created" in result.output
    finally:
        drop_dbs(source, [a])
        drop_dbs(source2, [b])
        drop_dbs(target, [merged], role="target")


def test_disjoint_shards_merge_cleanly_and_shape_mismatch_blocks(source, source2, target, unique_db):
    a, b, c, merged = unique_db("sa"), unique_db("sb"), unique_db("sc"), unique_db("m")
    make_db(source, a, [SHARD])
    make_db(source2, b, [SHARD])
    make_db(source2, c, [SHARD.replace("v VARCHAR(20)", "v VARCHAR(40)")])
    insert_ids(source, a, "acct", range(1, 11))
    insert_ids(source2, b, "acct", range(1001, 1011))
    with session(source2, "source", database=b) as conn:  # unique key values must differ too
        query(conn, "UPDATE acct SET v = CONCAT('b', id)")
    try:
        plan = build_plan([source, source2], target, includes=[f"{a}.*", f"{b}.*"], routes=[f"t_s*.*={merged}.*"])
        assert not plan.blocking() and not checks(plan.findings) & {"route.key-collision", "route.key-overlap"}
        plan = build_plan([source, source2], target, includes=[f"{a}.*", f"{b}.*", f"{c}.*"],
                          routes=[f"t_s*.*={merged}.*"], source_column="__source")
        [mismatch] = [f for f in plan.findings if f.check == "route.shape-mismatch"]
        assert mismatch.severity == "blocking" and mismatch.database == c and "varchar(40)" in mismatch.message
    finally:
        drop_dbs(source, [a])
        drop_dbs(source2, [b, c])


def test_same_named_tables_without_route_are_flagged(source, source2, target, unique_db):
    db = unique_db("same")
    make_db(source, db, [SHARD])
    make_db(source2, db, [SHARD])
    try:
        plan = build_plan([source, source2], target, includes=[f"{db}.*"])
        [implicit] = [f for f in plan.findings if f.check == "route.implicit-merge"]
        assert implicit.severity == "warning" and f"{db}.acct" in implicit.message
    finally:
        drop_dbs(source, [db])
        drop_dbs(source2, [db])


def test_route_parsing_and_targets():
    r = parse_route("wallet_*.*=wallet.*")
    assert route_target([r], "wallet_03", "account") == ("wallet", "account", r)
    assert route_target([r], "other", "account")[:2] == ("other", "account")
    r2 = parse_route("legacy.users=app.customer")
    assert route_target([r2], "legacy", "users")[:2] == ("app", "customer")
    for bad in ("=x.y", "a.b=", "a.b=c", "a.b=c.t_?"):
        with pytest.raises(ConfigError):
            parse_route(bad)
