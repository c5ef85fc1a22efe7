"""DDL rewrite: pure pieces, then the corpus on the real MariaDB source and seekdb target."""

from __future__ import annotations

import pymysql
import pytest
from conftest import drop_databases
from schema_helpers import CORPUS, column_names, load_case, object_name, unexplained_differences

from migrator.db import connect, query, quote_ident
from migrator.schema import ddl_text as dt
from migrator.schema.rewrite import map_charset, rewrite_create_table, rewrite_ddl_statement
from migrator.schema.targets import default_caps, probe_target_caps

OB = default_caps("oceanbase")

# ---------------------------------------------------------------- version comments and scanning


def test_unwrap_version_comment_keeps_partitioning():
    text, n = dt.unwrap_version_comments("CREATE TABLE t (a int) ENGINE=InnoDB /*!50100 PARTITION BY HASH (a) "
                                         "PARTITIONS 4 */")
    assert n == 1
    assert text.split() == "CREATE TABLE t (a int) ENGINE=InnoDB PARTITION BY HASH (a) PARTITIONS 4".split()


def test_unwrap_ignores_lookalikes_in_strings_identifiers_and_plain_comments():
    sql = "SELECT '/*!50100 x */', `/*!1 y */`, \"/*!2 z*/\" /* /*!3 not */ -- /*!4 nope */\n, 1"
    text, n = dt.unwrap_version_comments(sql)
    assert n == 0 and text == sql


def test_unwrap_mariadb_only_comment_and_escapes():
    sql = "a /*M!100301 COMPRESSED*/ b /*!80023 INVISIBLE */ 'it''s \\' /*!1 */'"
    text, n = dt.unwrap_version_comments(sql)
    assert n == 2
    assert text.split()[:4] == ["a", "COMPRESSED", "b", "INVISIBLE"]
    assert text.endswith("'it''s \\' /*!1 */'")
    dropped, _ = dt.unwrap_version_comments(sql, keep_mariadb_only=False)
    assert "COMPRESSED" not in dropped


def test_tokenize_round_trips_and_splits_statements_with_delimiters():
    script = ("/*!40101 SET @x=1 */;\nCREATE TABLE `a;b` (c varchar(3) DEFAULT ';');\n-- c;\nDELIMITER ;;\n"
              "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END ;;\nDELIMITER ;\nDROP TABLE x;")
    assert dt.join(dt.tokenize(script)) == script
    stmts = [s.text for s in dt.split_statements(script)]
    assert stmts == ["/*!40101 SET @x=1 */", "CREATE TABLE `a;b` (c varchar(3) DEFAULT ';')",
                     "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", "DROP TABLE x"]


# ---------------------------------------------------------------- charset mapping


@pytest.mark.parametrize("cs,co,want_cs,want_co,severity", [
    ("latin1", "latin1_swedish_ci", "utf8mb4", "utf8mb4_general_ci", "warning"),
    ("latin1", "latin1_bin", "utf8mb4", "utf8mb4_bin", "warning"),
    ("utf8mb3", "utf8mb3_general_ci", "utf8mb4", "utf8mb4_general_ci", "rewrite"),
    ("utf8", "utf8_bin", "utf8mb4", "utf8mb4_bin", "rewrite"),
    ("utf8mb4", "utf8mb4_0900_ai_ci", "utf8mb4", "utf8mb4_general_ci", "warning"),
    ("utf8mb4", "utf8mb4_uca1400_ai_ci", "utf8mb4", "utf8mb4_general_ci", "warning"),
    ("utf8mb4", "utf8mb4_unicode_ci", "utf8mb4", "utf8mb4_general_ci", "warning"),
    ("utf8mb4", "utf8mb4_bin", "utf8mb4", "utf8mb4_bin", None),
    ("binary", None, "binary", None, None),
])
def test_map_charset_oceanbase(cs, co, want_cs, want_co, severity):
    m = map_charset(cs, co, OB)
    assert (m.charset, m.collation) == (want_cs, want_co)
    worst = max((s for _, s, _ in m.changes), key=["rewrite", "warning"].index, default=None)
    assert worst == severity


def test_map_charset_mysql_prefers_0900_for_uca1400_and_keeps_latin1():
    caps = default_caps("mysql")
    assert map_charset("utf8mb4", "utf8mb4_uca1400_ai_ci", caps).collation == "utf8mb4_0900_ai_ci"
    m = map_charset("latin1", "latin1_swedish_ci", caps)
    assert (m.charset, m.collation, m.changes) == ("latin1", "latin1_swedish_ci", [])


def test_probe_reads_the_live_target(tgt_conn):
    caps = probe_target_caps(tgt_conn, "oceanbase")
    assert caps.probed and "utf8mb4" in caps.charsets and "latin1" not in caps.charsets
    assert "utf8mb4_bin" in caps.collations and "utf8mb4_0900_ai_ci" not in caps.collations


# ---------------------------------------------------------------- per-target rules (text only)


def test_tidb_profile_reports_what_tidb_lacks():
    ddl = ("CREATE TABLE t (id int NOT NULL AUTO_INCREMENT, body text, created datetime, PRIMARY KEY (id), "
           "KEY ix (created DESC), FULLTEXT KEY ft (body), CONSTRAINT c CHECK (id > 0)) ENGINE=InnoDB")
    r = rewrite_create_table(ddl, "tidb")
    rules = {c.rule for c in r.changes}
    assert {"index.desc", "index.fulltext", "check.not-enforced"} <= rules
    assert "FULLTEXT" not in r.target_ddl and "DESC" not in r.target_ddl and not r.blocking
    r = rewrite_create_table("CREATE TABLE t (id int PRIMARY KEY, h int INVISIBLE)", "tidb")
    assert "INVISIBLE" not in r.target_ddl and any(c.rule == "column.invisible" for c in r.changes)


def test_tidb_auto_increment_and_auto_random_opt_in():
    from dataclasses import replace

    ddl = "CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT, PRIMARY KEY (id)) ENGINE=InnoDB AUTO_INCREMENT=9"
    r = rewrite_create_table(ddl, "tidb")
    assert "AUTO_ID_CACHE=1" in r.target_ddl and "AUTO_INCREMENT=9" in r.target_ddl
    r = rewrite_create_table(ddl, "tidb", caps=replace(default_caps("tidb"), auto_random=True))
    assert "`id` bigint NOT NULL AUTO_RANDOM" in r.target_ddl and "AUTO_INCREMENT" not in r.target_ddl
    assert any(c.rule == "auto-increment.auto-random" and c.severity == "warning" for c in r.changes)


def test_unknown_table_option_and_unparseable_column_are_blocking():
    r = rewrite_create_table("CREATE TABLE t (id int) ENGINE=InnoDB FROBNICATE=7")
    assert r.blocking and any(c.rule == "table-option.unknown" for c in r.changes)
    r = rewrite_create_table("CREATE TABLE t (id vector(3))")
    assert r.blocking and any(c.rule == "type.unknown" for c in r.changes)


def test_attribute_words_inside_expressions_are_left_alone():
    r = rewrite_create_table("CREATE TABLE t (srid int, storage int, g int AS (srid + storage) VIRTUAL, "
                             "KEY ix ((storage + 1)))")
    assert "AS (srid + storage)" in r.target_ddl and "((storage + 1))" in r.target_ddl
    assert not [c for c in r.changes if c.rule in ("spatial.srid", "column.storage-attribute")]


def test_user_written_types_are_not_silently_changed():
    r = rewrite_create_table("CREATE TABLE t (a REAL, b NCHAR(3), c MIDDLEINT)")
    assert "`a` double" in r.target_ddl and "`c` mediumint" in r.target_ddl
    assert "`b` char(3) CHARACTER SET utf8mb4" in r.target_ddl
    assert {"type.real-to-double", "type.national", "charset.utf8mb3-to-utf8mb4"} <= {c.rule for c in r.changes}


# ---------------------------------------------------------------- binlog DDL


@pytest.mark.parametrize("sql,expected,rules,blocking", [
    ("ALTER TABLE `t` ADD COLUMN `c` varchar(10) CHARACTER SET latin1 DEFAULT 'x' AFTER `a`",
     "ALTER TABLE `t` ADD COLUMN `c` varchar(10) CHARACTER SET utf8mb4 DEFAULT 'x' AFTER `a`",
     {"charset.latin1-to-utf8mb4"}, False),
    ("ALTER TABLE t MODIFY c text DEFAULT 'a', ALGORITHM=INPLACE, LOCK=NONE",
     "ALTER TABLE t MODIFY COLUMN `c` text", {"default.lob", "alter.online-option"}, False),
    ("ALTER TABLE t ADD INDEX ix (a DESC, b) USING BTREE", "ALTER TABLE t ADD INDEX ix (a, b)",
     {"index.desc", "index.using"}, False),
    ("ALTER TABLE t CHANGE a b inet6 NOT NULL", "ALTER TABLE t CHANGE COLUMN a `b` varchar(39) NOT NULL",
     {"type.mariadb-inet6"}, False),
    ("ALTER TABLE t DROP COLUMN a, DROP INDEX ix", "ALTER TABLE t DROP COLUMN a, DROP INDEX ix", set(), False),
    ("ALTER TABLE t ENGINE=InnoDB", "", {"engine.dropped"}, False),
    ("RENAME TABLE a TO b", "RENAME TABLE a TO b", set(), False),
    ("TRUNCATE TABLE t", "TRUNCATE TABLE t", set(), False),
    ("DROP TABLE IF EXISTS `t` /* generated by server */", "DROP TABLE IF EXISTS `t` /* generated by server */",
     set(), False),
    ("CREATE SEQUENCE s", None, {"ddl.unsupported"}, True),
    ("CREATE INDEX ix ON `db`.`t` (a DESC) ALGORITHM=INPLACE", "ALTER TABLE `db`.`t` ADD INDEX ix (a)",
     {"index.desc", "alter.online-option"}, False),
    ("CREATE UNIQUE INDEX uk USING BTREE ON t (a, b(10))", "ALTER TABLE t ADD UNIQUE uk (a, b(10))",
     {"index.using"}, False),
    ("CREATE DEFINER=`app`@`%` VIEW v AS SELECT 1 AS a", "CREATE VIEW v AS SELECT 1 AS a", {"definer.dropped"},
     False),
    ("CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", None, {"event.unsupported"}, True),
    ("ALTER TABLE t ADD SYSTEM VERSIONING", None, {"table.system-versioning"}, True),
])
def test_rewrite_ddl_statement(sql, expected, rules, blocking):
    r = rewrite_ddl_statement(sql, "oceanbase")
    assert r.blocking == blocking
    if expected is not None:
        assert r.target_ddl == expected
    assert rules <= {c.rule for c in r.changes}


# ---------------------------------------------------------------- the corpus on real servers

CASES = sorted((CORPUS / "ddl").glob("*.sql"))


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


FLAVOR = {"mariadb": "mariadb", "mysql8": "mysql"}


def _execute(conn, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus(path, source, target, unique_db):
    case = load_case(path)
    src_db, tgt_db = unique_db("src"), unique_db("tgt")
    src = tgt = None
    try:
        tgt = connect(target, "target")
        _execute(tgt, f"CREATE DATABASE {quote_ident(tgt_db)}")
        _execute(tgt, f"USE {quote_ident(tgt_db)}")
        if case.form == "mariadb":
            src = connect(source, "source")
            _execute(src, f"CREATE DATABASE {quote_ident(src_db)}")
            _execute(src, f"USE {quote_ident(src_db)}")
            ddls = []
            for stmt in case.statements:
                _execute(src, stmt)
                name = object_name(stmt)
                ddls.append((name, query(src, f"SHOW CREATE TABLE {quote_ident(name)}")[0][1]))
        else:
            ddls = [(object_name(s), s) for s in case.statements]
        results = [(name, rewrite_create_table(ddl, "oceanbase", FLAVOR[case.form]))
                   for name, ddl in ddls]
        changes = [c for _, r in results for c in r.changes]
        rules = {c.rule for c in changes}
        assert set(case.rules) <= rules, f"expected rules {case.rules}, got {sorted(rules)}"
        for c in changes:
            assert c.reason and "\n" not in c.reason
        if case.expect_blocking:
            assert results[-1][1].blocking
            assert query(tgt, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s",
                         (tgt_db,))[0][0] == 0
            return
        for name, r in results:
            assert not r.blocking, [c for c in r.changes if c.severity == "blocking"]
            try:
                _execute(tgt, r.target_ddl)
            except pymysql.err.MySQLError as exc:
                pytest.fail(f"seekdb rejected the rewrite of {name}: {exc}\n{r.target_ddl}")
            # a second round trip gives the same DDL (the rewrite is a fixed point)
            again = rewrite_create_table(r.target_ddl, "oceanbase")
            assert again.target_ddl == r.target_ddl
        if src is not None:
            problems = []
            for name, _ in results:
                problems += unexplained_differences(src, src_db, tgt, tgt_db, name, changes)
            assert not problems, "\n".join(problems)
        else:
            for name, r in results:
                got = [row[0] for row in query(tgt, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                       "TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (tgt_db, name))]
                assert got == column_names(dict(ddls)[name])
                if "PARTITION BY" in r.target_ddl:
                    parts = query(tgt, "SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA=%s "
                                       "AND TABLE_NAME=%s AND PARTITION_NAME IS NOT NULL", (tgt_db, name))[0][0]
                    assert parts > 1, f"{name}: target table is not partitioned"
    finally:
        for conn in (src, tgt):
            if conn is not None:
                conn.close()
        drop_databases(target, "target", [tgt_db])
        if case.form == "mariadb":
            drop_databases(source, "source", [src_db])
