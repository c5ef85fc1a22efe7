"""Merged target tables (shard merge with a source column) carry an index (source column, key...),
so verify's per-shard checksum of a key range reads that shard's rows only: checked with EXPLAIN
on the real seekdb target, over rows of many shards."""

from __future__ import annotations

from migrator.db import connect, query, quote_ident
from migrator.plan.routes import add_source_column
from migrator.verify.canonical import SideColumn, type_kind
from migrator.verify.checksum import TableSide, checksum_sql, chunk_checksum

SHARDS = 12
ROWS = 300
LEDGER = ("CREATE TABLE ledger (id BIGINT NOT NULL AUTO_INCREMENT, account INT NOT NULL, amount DECIMAL(18,2) NOT NULL,"
          " note VARCHAR(120), at DATETIME(3) NOT NULL, PRIMARY KEY (id), UNIQUE KEY uk_note (account, note))")


def test_merged_table_per_shard_range_uses_the_source_index(target, unique_db):
    db = unique_db("shardidx")
    ddl, change = add_source_column(LEDGER, "__source", 64)
    assert change.severity == "rewrite" and "__source_key (__source, id)" in change.reason
    conn = connect(target, "target", autocommit=True)
    try:
        query(conn, f"CREATE DATABASE {quote_ident(db)}")
        query(conn, f"USE {quote_ident(db)}")
        query(conn, ddl)
        keys = query(conn, "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
                           "TABLE_NAME = 'ledger' AND INDEX_NAME = '__source_key' ORDER BY SEQ_IN_INDEX", (db,))
        assert [r[0] for r in keys] == ["__source", "id"]
        for s in range(SHARDS):  # every shard has the same ids: the id range alone matches all of them
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO ledger VALUES (%s, %s, %s, %s, '2024-01-01 00:00:00.000', %s)",
                                [(i, i % 7, i, f"n{i}", f"src{s}/db") for i in range(1, ROWS + 1)])
        cols = query(conn, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                           "AND TABLE_NAME = 'ledger' AND COLUMN_NAME <> '__source' ORDER BY ORDINAL_POSITION", (db,))
        side = TableSide("target", "target", db, "ledger", [SideColumn(n, type_kind(t)) for n, t in cols], ["id"],
                         filter_column="__source", filter_value="src5/db")
        sql, params = checksum_sql(side, [100], [200])
        plan = "\n".join(r[0] for r in query(conn, "EXPLAIN " + sql, params))
        assert "ledger(__source_key)" in plan, plan  # the index, not a scan of every shard's id range
        assert "range_key([ledger.__source], [ledger.id])" in plan, plan
        assert chunk_checksum(conn, side, [100], [200])[0] == 100  # one shard's rows of the range
    finally:
        query(conn, f"DROP DATABASE IF EXISTS {quote_ident(db)}")
        conn.close()
