"""DDL rewrite: SHOW CREATE TABLE of a MySQL/MariaDB source -> DDL the target accepts.

Contract used by plan, sync (DDL in the binlog) and `schema convert`:

    rewrite_create_table(ddl, target="oceanbase", source_flavor="mariadb", caps=None) -> RewriteResult
    rewrite_ddl_statement(sql, target, source_flavor="mariadb", caps=None) -> RewriteResult

RewriteResult.target_ddl is what to run on the target; .changes lists every change with its
rule, severity and reason. When `.blocking` is true the DDL must not be run: target_ddl is then
only the best effort, for review.

How (ddl-compat.md explains why): executable comments are unwrapped first; the statement is
split with a quote-aware scanner (ddl_text) into columns, indexes/constraints, table options and
the partition clause. Each column and index is parsed by sqlglot (MySQL dialect) and transformed
as a tree; the column's data type is kept as text we map ourselves, because sqlglot changes
some types silently (REAL -> FLOAT, NCHAR -> CHAR) and rejects others (MULTIPOINT, FLOAT
UNSIGNED). Table options and partitioning, which sqlglot cannot represent, are handled token by
token and re-emitted verbatim where the target accepts them. Anything no rule covers is blocking.

One file per step: context.py (dialect, result, change collector, token helpers), charsets.py,
datatypes.py, columns.py (columns, indexes and constraints), options.py (table options,
partitioning), table.py (CREATE TABLE), statements.py (other DDL of a binlog or dump) and
objects.py (views, triggers, routines, events).
"""

from .charsets import CharsetMapping, map_charset
from .context import RewriteResult
from .statements import rewrite_create_database, rewrite_ddl_statement
from .table import rewrite_create_table

__all__ = ["CharsetMapping", "RewriteResult", "map_charset", "rewrite_create_database", "rewrite_create_table",
           "rewrite_ddl_statement"]
