"""The differential fuzzer (fuzz/, issue 13) as part of the suite: one seeded, bounded round on
real servers (its own MariaDB source, so FLUSH BINARY LOGS and a tiny max_binlog_size are safe;
the session's seekdb target), and the oracle held to its promise: representation differences
are not reported, real ones are. `make soak` runs rounds for as long as asked."""

from __future__ import annotations

import pytest

from migrator.db import quote_ident

from conftest import drop_databases
from copy_helpers import execute
from fuzz.corpus import KINDS
from fuzz.oracle import compare, raw_connect
from fuzz.run import RoundConfig, run_round
from fuzz.schema_gen import ColumnSpec, TableSpec, gen_tables

# ~1 minute on 2 cores. This seed's tables are keyed by BINARY(16), (INT, VARCHAR), a NOT NULL
# unique BIGINT (no primary key) and (DATETIME(6), INT UNSIGNED) in a latin1 table, with secondary
# unique keys and columns of every corpus type; 250 transactions (savepoints, XA, thousand-row
# transactions, DDL, binlog rotations); copy killed -9 twice, sync three times.
CI_ROUND = dict(seed=20261139, fk=False, tables=4, rows=150, transactions=250, big_rows=3000, big_every=60, copy_kills=2,
                copy_kill_after=(0.6, 1.6),
                sync_kills=3, pace=0.02, catchup_timeout=60.0)


@pytest.fixture(scope="module")
def fuzz_source(mariadb_factory):
    # a source of its own: the workload flushes binary logs; 64 KB binlog files rotate often
    return mariadb_factory({"max-binlog-size": "65536"}, name="fuzz")


def test_seeded_fuzz_round_leaves_no_difference(fuzz_source, target, tmp_path):
    result = run_round(RoundConfig(**CI_ROUND), fuzz_source, target, tmp_path)
    assert result.stats is not None and result.stats.transactions == CI_ROUND["transactions"]
    assert result.comparison.rows > 0 and result.comparison.tables == CI_ROUND["tables"]
    assert not result.failed, (f"{result.line()}\n{result.details()}\nreproduce: {result.config.repro()}")


# Foreign keys forced on (issue 14), ~1 minute: this seed's graph is a chain of three foreign keys
# t3 -> t2 -> t1 -> t0 over composite keys ((DATETIME(6), INT UNSIGNED) and (BINARY(4), MEDIUMINT)),
# a self-reference on t2, ON DELETE CASCADE / RESTRICT and ON UPDATE CASCADE / SET NULL / NO ACTION;
# parents with children deleted and re-keyed under kill -9 of copy and sync, and statements run
# with foreign_key_checks=0 on the source (sync must cascade nothing for those).
FK_SEED = 20261406
FK_ROUND = dict(seed=FK_SEED, fk=True, tables=4, rows=120, transactions=200, big_rows=800, big_every=50, copy_kills=1,
                copy_kill_after=(0.6, 1.6), sync_kills=2, pace=0.02, catchup_timeout=60.0)


def test_seeded_fuzz_round_with_foreign_keys_leaves_no_difference(fuzz_source, target, tmp_path):
    tables = gen_tables(FK_ROUND["seed"], FK_ROUND["tables"], fk=True)
    assert sum(len(t.fks) for t in tables) >= 3  # the seed's graph is what the comment says
    result = run_round(RoundConfig(**FK_ROUND), fuzz_source, target, tmp_path)
    st = result.stats
    assert st is not None and st.transactions == FK_ROUND["transactions"]
    assert st.fk_parent_ops > 0 and st.fk_unchecked > 0  # cascades had something to do
    assert result.comparison.tables == FK_ROUND["tables"]  # children compared too
    assert not result.failed, (f"{result.line()}\n{result.details()}\nreproduce: {result.config.repro()}")


def test_fk_graph_is_a_function_of_seed_and_index():
    full, shrunk = gen_tables(FK_SEED, 4, fk=True), gen_tables(FK_SEED, 2, fk=True)
    assert [t.create_sql("d") for t in full[:2]] == [t.create_sql("d") for t in shrunk]
    names = {t.name for t in shrunk}
    assert all(fk.parent in names for t in shrunk for fk in t.fks)
    for t in full:
        fk_cols = {c for fk in t.fks for c in fk.columns}
        assert not fk_cols & {c.name for c in t.droppable()}  # DROP COLUMN never takes an FK column
        for fk in t.fks:
            parent = next(p for p in full if p.name == fk.parent)
            assert [t.column(c).kind.sql for c in fk.columns] == [parent.column(c).kind.sql for c in fk.parent_columns]
            if "SET NULL" in (fk.on_delete, fk.on_update):
                assert all(t.column(c).nullable for c in fk.columns)


ORACLE_TABLE = TableSpec("o", [ColumnSpec("id", KINDS["int"], nullable=False),
                               ColumnSpec("name", KINDS["varchar"], charset="latin1"),
                               ColumnSpec("f", KINDS["float"]), ColumnSpec("j", KINDS["json"]),
                               ColumnSpec("d", KINDS["datetime6"]), ColumnSpec("b", KINDS["bin16"]),
                               ColumnSpec("m", KINDS["dec65"]), ColumnSpec("x", KINDS["bit13"])],
                         key=["id"], primary=True, charset="latin1")


def test_oracle_normalizes_representation_and_reports_real_differences(source, target, unique_db):
    db, tdb = unique_db("fzo"), unique_db("fzot")
    rows = ("(1, 'Café crème ÿ', 1.1, '{\"b\": 1, \"a\": [1.50, 1e2]}', '2024-05-00 10:00:00.5', X'0100', 1.5, b'101'),"
            "(2, NULL, 3.4028234e38, 'null', '0000-00-00 00:00:00', X'00', -0.000001, NULL)")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", ORACLE_TABLE.create_sql(db),
                f"INSERT INTO {quote_ident(db)}.o VALUES {rows}")
        utf8 = TableSpec(**{**ORACLE_TABLE.__dict__, "charset": "utf8mb4",
                            "columns": [ColumnSpec(c.name, c.kind, c.nullable) for c in ORACLE_TABLE.columns]})
        execute(target, "target", f"CREATE DATABASE {quote_ident(tdb)}", utf8.create_sql(tdb),
                "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
                f"INSERT INTO {quote_ident(tdb)}.o VALUES {rows}")
        with raw_connect(source.host, source.port) as s, raw_connect(target.host, target.port) as t:
            same = compare(s, t, db, tdb, [ORACLE_TABLE])
            assert (same.rows, same.differences) == (2, [])  # latin1 vs utf8mb4, JSON normalized, FLOAT
            with t.cursor() as cur:
                cur.execute("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")
                cur.execute(f"UPDATE {quote_ident(tdb)}.o SET d = '2024-05-01 10:00:00.5', f = 1.1000002 WHERE id = 1")
                cur.execute(f"DELETE FROM {quote_ident(tdb)}.o WHERE id = 2")
                cur.execute(f"INSERT INTO {quote_ident(tdb)}.o (id) VALUES (3)")
            diff = compare(s, t, db, tdb, [ORACLE_TABLE])
        found = sorted((d.key, d.what) for d in diff.differences)
        assert found == [((1,), "changed"), ((2,), "missing on target"), ((3,), "extra on target")]
        changed = next(d for d in diff.differences if d.what == "changed").detail
        assert "d: source '2024-05-00 10:00:00.500000' target '2024-05-01 10:00:00.500000'" in changed
        assert changed.startswith("f: ")  # a 1-ulp FLOAT change is a difference
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [tdb])


def test_printed_reproduction_replays_the_same_round():
    import shlex

    from fuzz.soak import parser, round_config

    cfg = RoundConfig(seed=42, tables=2, rows=30, transactions=17, big_rows=900, big_every=7, kills=False,
                      xa=False, exclude=("zero-dates", "accents"), fk=True)
    argv = shlex.split(cfg.repro())
    assert argv[:3] == ["python", "-m", "fuzz.soak"]
    again = round_config(parser().parse_args(argv[3:]), 42)
    same = ("seed", "tables", "rows", "transactions", "big_rows", "big_every", "kills", "ddl", "xa", "flush", "exclude",
            "fk")
    assert {f: getattr(again, f) for f in same} == {f: getattr(cfg, f) for f in same}
