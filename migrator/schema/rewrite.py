"""DDL rewrite: SHOW CREATE TABLE of a MySQL/MariaDB source -> DDL the target accepts.

Contract used by plan, sync (DDL in the binlog) and `schema convert`:

    rewrite_create_table(ddl, target="oceanbase", source_flavor="mariadb") -> RewriteResult

RewriteResult.target_ddl is what to run on the target; .changes lists every change with its
rule, severity and reason. (Placeholder until the sqlglot rewrite lands: passes DDL through.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plan.model import Change


@dataclass
class RewriteResult:
    target_ddl: str
    changes: list[Change] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(c.severity == "blocking" for c in self.changes)


def rewrite_create_table(ddl: str, target: str = "oceanbase", source_flavor: str = "mariadb") -> RewriteResult:
    return RewriteResult(target_ddl=ddl)
