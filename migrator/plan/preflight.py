"""Preflight: what would make copy or sync unsafe on a source, found before anything runs.

Every finding names the instance (and database/table where it applies) and the fix. Blocking
findings make `migrator plan` exit 1; warnings and info are for the DBA to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlglot.dialects.mysql import MySQL
from sqlglot.tokens import TokenType

from ..sync.cascade import KNOWN_RULES, ForeignKey
from .introspect import InstanceFacts, ObjectInfo, TableInfo
from .model import Finding, TablePlan

RETENTION_WARN_SECONDS = 24 * 3600
ALL = "ALL"
BINLOG_READ_PRIVS = {"REPLICATION CLIENT", "BINLOG MONITOR", "SUPER", ALL}
READ_ONLY_PRIVS = {"SUPER", "READ_ONLY ADMIN", ALL}


# ---------------------------------------------------------------- binlog


def binlog_findings(instance: str, facts: InstanceFacts, needs_sync: bool) -> list[Finding]:
    """binlog on, ROW, FULL image, server_id, retention, GTID. Blocking only when some table
    of this instance is to be synced (copy-only tables need none of it)."""
    sev = "blocking" if needs_sync else "info"
    out: list[Finding] = []
    if facts.var("log_bin").upper() != "ON":
        out.append(Finding(
            check="binlog.off", severity=sev, instance=instance,
            message="binary logging is off: changes made during the copy cannot be synced",
            fix="restart the server with log-bin, binlog_format=ROW and binlog_row_image=FULL; or plan the "
                "tables copy-only (--copy-only PATTERN) and stop writes for the whole copy"))
        return out
    if facts.var("binlog_format").upper() != "ROW":
        out.append(Finding(
            check="binlog.format", severity=sev, instance=instance,
            message=f"binlog_format is {facts.var('binlog_format')}; sync needs ROW events",
            fix="SET GLOBAL binlog_format=ROW (and in my.cnf), then reconnect the applications: the format "
                "is fixed per session"))
    if facts.var("binlog_row_image", "FULL").upper() != "FULL":
        out.append(Finding(
            check="binlog.row-image", severity=sev, instance=instance,
            message=f"binlog_row_image is {facts.var('binlog_row_image')}; sync needs FULL before/after images",
            fix="SET GLOBAL binlog_row_image=FULL (and in my.cnf), then reconnect the applications"))
    if "PARTIAL_JSON" in facts.var("binlog_row_value_options").upper():
        out.append(Finding(
            check="binlog.partial-json", severity=sev, instance=instance,
            message="binlog_row_value_options=PARTIAL_JSON: updates of JSON columns are logged as partial "
                    "diffs, not full after-images; sync needs the full row",
            fix="SET GLOBAL binlog_row_value_options='' (and in my.cnf), then reconnect the applications"))
    if facts.var("binlog_transaction_compression").upper() == "ON":
        out.append(Finding(
            check="binlog.transaction-compression", severity=sev, instance=instance,
            message="binlog_transaction_compression=ON: MySQL logs each transaction as one compressed "
                    "payload event that the binlog reader cannot decode; its rows would not reach the target",
            fix="SET GLOBAL binlog_transaction_compression=OFF (and in my.cnf), then reconnect the applications"))
    if not facts.server_id:
        out.append(Finding(
            check="binlog.server-id", severity=sev, instance=instance,
            message="server_id is 0: the server refuses binlog readers",
            fix="set a unique server_id (SET GLOBAL server_id=N and in my.cnf)"))
    out += retention_findings(instance, facts)
    if not facts.gtid_enabled:
        out.append(Finding(
            check="binlog.gtid", severity="info", instance=instance,
            message="GTID mode is off: sync follows file/position, which does not survive a failover of the source",
            fix="enable gtid_mode=ON (MySQL) if the source may fail over during the migration"))
    return out


def retention_seconds(facts: InstanceFacts) -> int:
    """Binlog retention in seconds; 0 = never purged automatically."""
    secs = facts.var("binlog_expire_logs_seconds")
    if secs.isdigit() and int(secs) > 0:
        return int(secs)
    days = facts.var("expire_logs_days")
    try:
        return int(float(days) * 86400) if days else 0
    except ValueError:
        return 0


def retention_findings(instance: str, facts: InstanceFacts) -> list[Finding]:
    secs = retention_seconds(facts)
    if secs == 0:
        return [Finding(check="binlog.retention", severity="info", instance=instance,
                        message="binlogs are never purged automatically (expire_logs_days=0)",
                        fix="watch the binlog disk until cutover")]
    if secs < RETENTION_WARN_SECONDS:
        return [Finding(
            check="binlog.retention", severity="warning", instance=instance,
            message=f"binlogs are purged after {secs / 3600:.1f} h: a copy that takes longer loses the position "
                    "sync starts from, and copy must be redone",
            fix="raise binlog_expire_logs_seconds (or expire_logs_days) above the expected copy + sync time")]
    return [Finding(check="binlog.retention", severity="info", instance=instance,
                    message=f"binlogs are kept {secs / 86400:.1f} days: copy and first sync must finish within that")]


# ---------------------------------------------------------------- privileges


@dataclass
class Grant:
    privileges: set[str]
    database: str | None = None  # None = global (*.*); may hold LIKE wildcards
    table: str | None = None
    columns_only: set[str] = field(default_factory=set)  # privileges granted on some columns only


def parse_grant(line: str) -> Grant | None:
    """A SHOW GRANTS line -> privileges and scope, read with the SQL tokenizer (not regexes).
    Role grants (`GRANT role TO user`) and routine grants return None."""
    tokens = MySQL().tokenize(line)
    if not tokens or tokens[0].text.upper() != "GRANT":
        return None
    privs: set[str] = set()
    column_privs: set[str] = set()
    words: list[str] = []
    depth = 0
    i = 1
    while i < len(tokens) and not (depth == 0 and tokens[i].token_type == TokenType.ON):
        tok = tokens[i]
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
            column_privs.add(" ".join(words))
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and tok.token_type == TokenType.COMMA:
            privs.add(" ".join(words))
            words = []
        elif depth == 0:
            words.append(tok.text.upper())
        i += 1
    if i >= len(tokens):
        return None
    privs.add(" ".join(words))
    privs = {ALL if p in ("ALL", "ALL PRIVILEGES") else p for p in privs if p} - column_privs
    scope: list[str] = []
    i += 1
    if i < len(tokens) and tokens[i].text.upper() in ("PROCEDURE", "FUNCTION", "PACKAGE"):
        return None
    while i < len(tokens) and tokens[i].text.upper() != "TO":
        scope.append(tokens[i].text)
        i += 1
    db, table = scope_parts(scope)
    return Grant(privileges=privs, database=db, table=table, columns_only=column_privs)


def scope_parts(scope: list[str]) -> tuple[str | None, str | None]:
    """['*', '.', '*'] -> (None, None); ['db', '.', '*'] -> ('db', None); ['db','.','t'] -> ('db','t')."""
    if "." in scope:
        dot = scope.index(".")
        db = "".join(scope[:dot])
        table = "".join(scope[dot + 1:])
    else:
        db, table = None, "".join(scope)
    return (None if db in (None, "*") else db), (None if table in ("", "*") else table)


def like_match(pattern: str, name: str) -> bool:
    """MySQL database-grant wildcards: % any run, _ one character, backslash escapes."""
    def match(p: int, n: int) -> bool:
        while p < len(pattern):
            ch = pattern[p]
            if ch == "%":
                return any(match(p + 1, k) for k in range(n, len(name) + 1))
            if ch == "\\" and p + 1 < len(pattern):
                p += 1
                ch = pattern[p]
                if n >= len(name) or name[n] != ch:
                    return False
            elif ch == "_":
                if n >= len(name):
                    return False
            elif n >= len(name) or name[n] != ch:
                return False
            p += 1
            n += 1
        return n == len(name)
    return match(0, 0)


class Privileges:
    def __init__(self, grants: Iterable[Grant]):
        self.grants = list(grants)

    def global_has(self, wanted: set[str]) -> bool:
        return any(g.database is None and g.table is None and (g.privileges & wanted) for g in self.grants)

    def can_select(self, database: str, table: str) -> bool:
        for g in self.grants:
            if not (g.privileges & {"SELECT", ALL}):
                continue
            if g.database is None and g.table is None:
                return True
            if g.database is not None and g.table is None and like_match(g.database, database):
                return True
            if g.database == database and g.table == table:
                return True
        return False


def privilege_findings(instance: str, facts: InstanceFacts, tables: list[TableInfo],
                       needs_sync: bool) -> list[Finding]:
    """SELECT on every included table (copy), REPLICATION SLAVE (sync), REPLICATION CLIENT /
    BINLOG MONITOR (reading the binlog position, needed by copy too), SUPER / READ_ONLY ADMIN
    (cutover sets the source read-only). No RELOAD / LOCK TABLES: copy takes no global lock."""
    who = facts.current_user
    if facts.grants_error:
        return [Finding(check="privilege.unknown", severity="warning", instance=instance,
                        message=f"cannot read SHOW GRANTS for {who}: {facts.grants_error}",
                        fix="check by hand that the user has SELECT, REPLICATION SLAVE and REPLICATION CLIENT")]
    privs = Privileges(g for g in (parse_grant(line) for line in facts.grants) if g is not None)
    out: list[Finding] = []
    missing: dict[str, list[str]] = {}
    for t in tables:
        if not privs.can_select(t.database, t.name):
            missing.setdefault(t.database, []).append(t.name)
    for db, names in missing.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        out.append(Finding(check="privilege.select", severity="blocking", instance=instance, database=db,
                           message=f"user {who} lacks SELECT on {len(names)} table(s): {shown}",
                           fix=f"GRANT SELECT ON {db}.* TO {who}"))
    if facts.master_status_error or not privs.global_has(BINLOG_READ_PRIVS):
        detail = f" (SHOW MASTER STATUS: {facts.master_status_error})" if facts.master_status_error else ""
        out.append(Finding(check="privilege.replication-client", severity="blocking", instance=instance,
                           message=f"user {who} cannot read the binlog position{detail}: copy records it first",
                           fix=f"GRANT REPLICATION CLIENT ON *.* TO {who}  (MariaDB 10.5+: BINLOG MONITOR)"))
    if needs_sync and not privs.global_has({"REPLICATION SLAVE", ALL}):
        out.append(Finding(check="privilege.replication-slave", severity="blocking", instance=instance,
                           message=f"user {who} lacks REPLICATION SLAVE: sync cannot stream the binlog",
                           fix=f"GRANT REPLICATION SLAVE ON *.* TO {who}"))
    if not privs.global_has(READ_ONLY_PRIVS):
        out.append(Finding(check="privilege.read-only", severity="warning", instance=instance,
                           message=f"user {who} cannot SET GLOBAL read_only: cutover will not be able to stop "
                                   "writes on this source",
                           fix=f"GRANT READ_ONLY ADMIN ON *.* TO {who}  (MySQL / older MariaDB: SUPER)"))
    return out


# ---------------------------------------------------------------- tables and objects


def key_finding(tp: TablePlan) -> Finding | None:
    if tp.key or tp.mode == "skip":
        return None
    if tp.mode == "copy-only":
        return Finding(check="table.no-key", severity="warning", instance=tp.source, database=tp.database,
                       table=tp.table,
                       message="no primary key or non-null unique key: copied in one chunk, not synced "
                               "(copy-only, as asked)",
                       fix="stop writes to this table before its copy starts and until cutover")
    return Finding(check="table.no-key", severity="blocking", instance=tp.source, database=tp.database, table=tp.table,
                   message="no primary key or non-null unique key: cannot be chunked or synced safely",
                   fix="add a primary key on the source; or re-plan with --copy-only "
                       f"'{tp.database}.{tp.table}' (writes stopped during its copy); or --skip it")


def charset_finding(instance: str, t: TableInfo, key: list[str], collations: set[str]) -> Finding | None:
    """Charsets/collations of the table and its columns that the target does not have."""
    if not collations:
        return None
    lacking = {c for c in [t.collation] + [col.collation for col in t.columns] if c and c not in collations}
    if not lacking:
        return None
    on_key = [col.name for col in t.columns if col.name in key and col.collation in lacking]
    extra = (f"; key column(s) {', '.join(on_key)} change collation, so equality and chunk order may differ "
             "on the target") if on_key else ""
    return Finding(check="charset.unsupported", severity="warning", instance=instance, database=t.database,
                   table=t.name,
                   message=f"the target lacks {', '.join(sorted(lacking))}: columns are converted as the table's "
                           f"changes say{extra}",
                   fix="review the rewritten DDL; unique keys are probed for values equal under the new collation "
                           "(key.collation-* findings)")


def index_findings(instance: str, t: TableInfo, target: str, fulltext: bool, spatial: bool) -> list[Finding]:
    """FULLTEXT/SPATIAL indexes the target cannot run (OceanBase and MySQL keep both)."""
    out = []
    for idx in t.indexes:
        if (idx.index_type == "FULLTEXT" and not fulltext) or (idx.index_type == "SPATIAL" and not spatial):
            sev = "warning" if idx.index_type == "FULLTEXT" else "blocking"
            out.append(Finding(check=f"index.{idx.index_type.lower()}", severity=sev, instance=instance,
                               database=t.database, table=t.name,
                               message=f"{idx.index_type} index {idx.name} is not supported by {target}",
                               fix="drop the index from the target DDL, or search outside the database"))
    return out


OBJECT_FIXES = {
    "trigger": "recreate it on the target after cutover (SHOW CREATE TRIGGER): while sync replays rows it would "
               "fire a second time",
    "procedure": "recreate it on the target after review (SHOW CREATE PROCEDURE)",
    "function": "recreate it on the target after review (SHOW CREATE FUNCTION)",
    "event": "recreate it after cutover (SHOW CREATE EVENT): it must not run on both sides",
    "view": "recreate it on the target after `schema --apply` (SHOW CREATE VIEW)",
    "sequence": "create a sequence (or AUTO_INCREMENT) on the target and set its next value at cutover",
}


def object_findings(instance: str, objects: list[ObjectInfo]) -> list[Finding]:
    out = []
    for obj in objects:
        what = f"{obj.kind} {obj.database}.{obj.name}"
        if obj.table:
            what += f" ({obj.detail} on {obj.table})"
        out.append(Finding(check=f"object.{obj.kind}", severity="warning", instance=instance, database=obj.database,
                           table=obj.table, message=f"{what} is not migrated",
                           fix=OBJECT_FIXES.get(obj.kind, "recreate it by hand on the target")))
    return out


# ---------------------------------------------------------------- foreign-key cascades


def cascade_findings(instance: str, fks: list[ForeignKey], tables: list[TablePlan],
                     merged: Iterable[str] = ()) -> list[Finding]:
    """Cascades sync cannot reproduce exactly (sync/cascade.py reproduces the others): the
    source's binlog holds only the parent's row, so sync must read the parent's events and
    write the child's rows. tables: this instance's; merged: target tables fed by several."""
    modes = {(t.database, t.table): t.mode for t in tables}
    merged = set(merged)
    out = []
    for fk in fks:
        child, parent = modes.get(fk.child), modes.get(fk.parent)
        odd = [r for r in (fk.on_delete, fk.on_update) if r not in KNOWN_RULES]
        if child == "copy+sync" and odd:
            out.append(Finding(check="fk.action-unsupported", severity="blocking", instance=instance,
                               database=fk.database, table=fk.table,
                               message=f"{fk.describe()}: sync cannot reproduce {' / '.join(odd)} (not in the binlog)",
                               fix="change the foreign key to CASCADE, SET NULL or RESTRICT, or make the table copy-only"))
        if not fk.cascades:
            continue
        if child == "copy+sync" and parent != "copy+sync":
            why = "not in the plan" if parent is None else f"{parent}"
            out.append(Finding(check="fk.cascade-unsynced-parent", severity="blocking", instance=instance,
                               database=fk.database, table=fk.table,
                               message=f"{fk.describe()}: the parent is {why}, so sync does not read its deletes and "
                                       "updates, and the cascades they cause on this table are in no binlog",
                               fix=f"sync {fk.ref_database}.{fk.ref_table} too, or make {fk.database}.{fk.table} "
                                   "copy-only (writes stopped until cutover)"))
        elif child == "copy-only" and parent == "copy+sync":
            out.append(Finding(check="fk.cascade-copy-only-child", severity="warning", instance=instance,
                               database=fk.database, table=fk.table,
                               message=f"{fk.describe()}: this table is copy-only, so the rows the source's cascades "
                                       "delete or change after its copy stay as copied on the target",
                               fix=f"sync {fk.database}.{fk.table} too, or stop writes to "
                                   f"{fk.ref_database}.{fk.ref_table} before the copy"))
        elif child == "copy+sync" and any(t.database == fk.database and t.table == fk.table and not t.source_column
                                          and t.target_name in merged for t in tables):
            out.append(Finding(check="fk.cascade-merged", severity="warning", instance=instance,
                               database=fk.database, table=fk.table,
                               message=f"{fk.describe()}: this table is merged with other shards without a source "
                                       "column; sync's cascades match child rows by the parent's values, so another "
                                       "shard's rows with the same values would be changed too",
                               fix="merge with --with-source-column, or keep the parents' keys disjoint across "
                                   "shards (plan probes the merged keys)"))
    return out
