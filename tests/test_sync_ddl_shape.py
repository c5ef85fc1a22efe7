"""The shape a table has right after a DDL, told by the statement (no database needed): row
images after ADD c / DROP c / ADD c must be read with the columns of that point of the binlog."""

from __future__ import annotations

from sqlglot import exp

from migrator.plan.model import Column
from migrator.sync.ddl import classify, column_from_def, columns_after, position_key
from migrator.sync.stream import xa_key

ABC = [Column(name=n, data_type="int", column_type="int", nullable=True) for n in "abc"]


def names(sql: str) -> list[str] | None:
    out = columns_after(classify(sql, "db"), ABC)
    return None if out is None else [c.name for c in out]


def test_column_lists_follow_add_drop_modify_rename_and_positions():
    assert names("ALTER TABLE t ADD COLUMN d VARCHAR(9) NOT NULL AFTER a") == ["a", "d", "b", "c"]
    assert names("ALTER TABLE t DROP COLUMN b, ADD e INT FIRST") == ["e", "a", "c"]
    assert names("ALTER TABLE t MODIFY c BIGINT AFTER a") == ["a", "c", "b"]
    assert names("ALTER TABLE t CHANGE c z INT") == ["a", "b", "z"]
    assert names("ALTER TABLE t RENAME COLUMN a TO q") == ["q", "b", "c"]
    assert names("ALTER TABLE t DROP COLUMN IF EXISTS zz") == ["a", "b", "c"]
    assert names("ALTER TABLE t ADD COLUMN IF NOT EXISTS a INT") == ["a", "b", "c"]
    for unchanged in ("ALTER TABLE t ADD INDEX i (a)", "CREATE INDEX i ON t (a)", "ALTER TABLE t ENGINE=InnoDB",
                      "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1", "DROP INDEX i ON t"):
        assert names(unchanged) == ["a", "b", "c"], unchanged


def test_statements_that_cannot_be_followed_fall_back():
    assert names("ALTER TABLE t DROP COLUMN zz") is None  # the earlier shape was not the table's
    assert names("ALTER TABLE t ADD COLUMN a INT") is None
    assert names("ALTER TABLE t ADD COLUMN x INT AFTER nope") is None
    assert names("RENAME TABLE t TO u") is None


def test_unchanged_columns_keep_their_definition_and_added_ones_are_built_from_the_statement():
    out = columns_after(classify("ALTER TABLE t ADD COLUMN d VARCHAR(9) NOT NULL, ADD g INT UNSIGNED AS (a + 1)",
                                 "db"), ABC)
    assert out[:3] == ABC
    d, g = (column_from_def(e, "latin1") for e in out[3:])
    assert isinstance(out[3], exp.ColumnDef)
    assert (d.data_type, d.column_type, d.nullable, d.charset, d.generated) == ("varchar", "varchar(9)", False, "latin1", False)
    assert (g.data_type, g.column_type, g.charset, g.generated) == ("int", "int unsigned", None, True)


def test_positions_order_like_binlog_positions():
    assert position_key("binlog.000002:4") > position_key("binlog.000001:99999")
    assert position_key("mysql-bin.000010:120") == (10, 120)


def test_xa_ids_compare_as_the_binlog_prints_them():
    assert xa_key("X'61',X'',1") == ("X'61',X'',1", False)
    assert xa_key("x'6162', x'63', 7 one phase") == ("X'6162',X'63',7", True)
