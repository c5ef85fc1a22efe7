"""Offline schema conversion: a mysqldump/mariadb-dump --no-data script -> a script for the target.

    report = convert_script(text, "oceanbase")      # every statement classified and rewritten
    write_script(report, "converted.sql")            # runnable with the mysql client
    outcomes = apply_script(report, target_endpoint) # runs it, continuing past rejected statements

Tables go through rewrite_create_table (same rules and Change records as `migrator plan`).
Views, triggers, routines and events keep their body verbatim (it is SQL the target parses
itself); their DEFINER / ALGORITHM / SQL SECURITY clauses are handled per target. Session
housekeeping (`/*!40101 SET ... */`) is mapped or dropped. A blocked statement is written as a
comment, never silently left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pymysql

from ..db import connect, describe_error, error_code
from ..endpoint import Endpoint
from ..errors import ConfigError
from . import ddl_text as dt
from .model import Change
from .rewrite import (
    RewriteResult,
    map_charset,
    rewrite_create_table,
    rewrite_ddl_statement,
)
from .rewrite.objects import OBJECT_KINDS, object_kind, rewrite_object, supported
from .targets import TargetCaps, resolve_caps

Status = Literal["as-is", "rewritten", "warning", "blocked"]
_RANK = {"as-is": 0, "rewritten": 1, "warning": 2, "blocked": 3}


@dataclass
class Converted:
    """One statement of the dump and what it became."""

    line: int
    kind: str  # table, view, trigger, procedure, function, event, database, session, drop, use, other
    name: str
    source: str
    target: str | None  # None: nothing to run (dropped or blocked)
    changes: list[Change] = field(default_factory=list)
    database: str | None = None

    @property
    def status(self) -> Status:
        if any(c.severity == "blocking" for c in self.changes):
            return "blocked"
        if any(c.severity == "warning" for c in self.changes):
            return "warning"
        if self.changes:
            return "rewritten"
        return "as-is"

    @property
    def is_object(self) -> bool:
        return self.kind in _OBJECT_KINDS

    @property
    def routine_like(self) -> bool:
        return self.kind in ("trigger", "procedure", "function", "event")


_OBJECT_KINDS = ("database", "table", "view", "trigger", "procedure", "function", "event")


@dataclass
class ApplyOutcome:
    line: int
    kind: str
    name: str
    ok: bool
    error: str | None = None


@dataclass
class ConvertReport:
    dump: str
    target: str
    source_flavor: str
    statements: list[Converted]
    applied: list[ApplyOutcome] = field(default_factory=list)

    def objects(self) -> list[dict]:
        """One entry per object (database.kind.name): statements about the same object merged."""
        merged: dict[tuple[str, str, str], dict] = {}
        for s in self.statements:
            if not s.is_object:
                continue
            key = (s.kind, s.database or "", s.name)
            entry = merged.setdefault(key, {"kind": s.kind, "database": s.database, "name": s.name, "line": s.line,
                                            "status": "as-is", "changes": []})
            entry["changes"] += [c.model_dump() for c in s.changes]
            if _RANK[s.status] > _RANK[entry["status"]]:
                entry["status"] = s.status
        return list(merged.values())

    def summary(self) -> dict[str, int]:
        counts = {"as-is": 0, "rewritten": 0, "warning": 0, "blocked": 0}
        for o in self.objects():
            counts[o["status"]] += 1
        return counts

    @property
    def blocked(self) -> bool:
        return any(o["status"] == "blocked" for o in self.objects())

    @property
    def rejected(self) -> list[ApplyOutcome]:
        return [a for a in self.applied if not a.ok]

    def to_json(self) -> dict:
        return {
            "dump": self.dump,
            "target": self.target,
            "source_flavor": self.source_flavor,
            "summary": self.summary(),
            "objects": self.objects(),
            "statements": [{"line": s.line, "kind": s.kind, "name": s.name, "status": s.status,
                            "dropped": s.target is None and s.status != "blocked",
                            "changes": [c.model_dump() for c in s.changes]}
                           for s in self.statements if s.changes],
            "applied": [a.__dict__ for a in self.applied],
        }


# ---------------------------------------------------------------- conversion


def detect_flavor(text: str) -> str:
    """mariadb when the dump says so (header or /*M! comments), else mysql."""
    head = text[:4000]
    return "mariadb" if ("MariaDB dump" in head or "/*M!" in head or "-MariaDB" in head) else "mysql"


def convert_file(path: str | Path, target: str, source_flavor: str | None = None,
                 caps: TargetCaps | None = None) -> ConvertReport:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"dump {str(path)!r} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"dump {str(path)!r} is not UTF-8 (byte {exc.start}): re-dump with "
                          "--default-character-set=utf8mb4") from None
    return convert_script(text, target, source_flavor, caps, name=str(path))


def convert_script(text: str, target: str, source_flavor: str | None = None, caps: TargetCaps | None = None,
                   name: str = "<script>") -> ConvertReport:
    caps = resolve_caps(target, caps)
    flavor = source_flavor or detect_flavor(text)
    try:
        statements = dt.split_statements(text)
    except dt.ScanError as exc:
        raise ConfigError(f"dump {name!r}: {exc}: is the file truncated?") from None
    out: list[Converted] = []
    database: str | None = None
    for st in statements:
        conv = convert_statement(st.text, st.line, caps, flavor)
        if conv.kind == "use":
            database = conv.name
        conv.database = conv.name if conv.kind == "database" else database
        out.append(conv)
    return ConvertReport(dump=name, target=caps.name, source_flavor=flavor, statements=out)


def convert_statement(sql: str, line: int, caps: TargetCaps, flavor: str) -> Converted:
    """Classify one statement of a dump and rewrite it for the target."""
    if not sql.strip() or _is_client_command(sql):
        return Converted(line, "client", "", sql, None,
                         [Change(rule="dump.client-command", severity="rewrite",
                                 reason="mysql client command (not SQL) dropped", before=sql.strip()[:80])])
    text, _ = dt.unwrap_version_comments(sql, keep_mariadb_only=flavor == "mariadb")
    tokens = dt.tokenize(text)
    sig = dt.significant(tokens)
    if not sig:
        return Converted(line, "other", "", sql, None)
    w = [t.upper for t in sig[:8]]
    if w[0] == "SET":
        return _convert_set(sql, text, sig, line, caps)
    if w[0] == "USE":
        return Converted(line, "use", sig[1].ident if len(sig) > 1 else "", sql, " ".join(text.split()))
    if w[0] in ("LOCK", "UNLOCK", "INSERT", "REPLACE", "COMMIT", "START", "BEGIN"):
        return Converted(line, "other", "", sql, text.strip())
    if w[0] == "CREATE":
        kind, name_at = object_kind(sig)
        if kind == "table":
            r = rewrite_create_table(sql, caps.name, flavor, caps)  # it unwraps and reports /*!...*/ itself
            return _from_result(line, "table", sig[name_at].ident, sql, r)
        if kind in OBJECT_KINDS:
            return _from_result(line, kind, sig[name_at].ident, sql, rewrite_object(kind, sig[name_at].ident, text,
                                                                                      tokens, caps))
        if kind in ("database", "schema"):
            r = rewrite_ddl_statement(text, caps.name, flavor, caps)
            return _from_result(line, "database", sig[name_at].ident, sql, r)
    if w[0] == "DROP":
        kind, name_at = object_kind(sig)
        if kind in ("trigger", "procedure", "function", "event") and not supported(kind, caps):
            return Converted(line, "drop", sig[name_at].ident, sql, None,
                             [Change(rule=f"{kind}.unsupported", severity="rewrite",
                                     reason=f"DROP {kind.upper()} dropped: {caps.name} has no {kind}s")])
        return Converted(line, "drop", sig[name_at].ident if name_at < len(sig) else "", sql, " ".join(text.split()))
    r = rewrite_ddl_statement(text, caps.name, flavor, caps)
    return _from_result(line, "other", "", sql, r)


def _is_client_command(sql: str) -> bool:
    s = sql.strip()
    if not (s.startswith("/*!") or s.startswith("/*M!")) or not s.endswith("*/"):
        return False
    return dt.version_comment_parts(s)[2].startswith("\\")


def _from_result(line: int, kind: str, name: str, source: str, r: RewriteResult) -> Converted:
    target = None if r.blocking or not r.target_ddl else r.target_ddl
    return Converted(line, kind, name, source, target, list(r.changes))


# ---------------------------------------------------------------- session statements

# session variables the target may not know: dropped (they only speed up or quiet a load)
_DROP_VARS = {"unique_checks", "sql_notes", "@old_unique_checks", "@old_sql_notes"}


def _convert_set(source: str, text: str, sig: list[dt.Token], line: int, caps: TargetCaps) -> Converted:
    """`SET ...` housekeeping of a dump: charsets mapped, unknown sql_mode flags and variables dropped."""
    if caps.name == "mysql":
        return Converted(line, "session", "", source, source.strip())
    body_tokens = dt.tokenize(text)
    set_at = next(k for k, t in enumerate(body_tokens) if t.upper == "SET")
    assignments = dt.split_top_level(body_tokens[set_at + 1:])
    kept: list[str] = []
    changes: list[Change] = []
    for a in assignments:
        a_sig = dt.significant(a)
        var = ""
        for t in a_sig:  # @name, @@name, @@session.name or name
            if t.text == "=" or (var and not var.endswith(("@", ".")) and t.text not in ("@", ".")):
                break
            var += t.text
        var = var.lower()
        txt = " ".join(dt.join(a).split())
        if var.lstrip("@") in {v.lstrip("@") for v in _DROP_VARS} or any(
                t.text.lower().lstrip("@") in ("unique_checks", "sql_notes") for t in a_sig):
            changes.append(Change(rule="session.dropped", severity="rewrite",
                                  reason=f"SET {txt} dropped (variable unknown to {caps.name}; load tuning only)"))
            continue
        new = _map_set_value(var, a_sig, caps)
        if new == "":
            changes.append(Change(rule="session.dropped", severity="rewrite",
                                  reason=f"SET {txt} dropped (the source host's zone is not known to {caps.name})"))
            continue
        if new is not None and new != txt:
            changes.append(Change(rule="session.mapped", severity="rewrite", reason=f"SET {txt} -> SET {new}",
                                  before=txt, after=new))
            txt = new
        kept.append(txt)
    target = ("SET " + ", ".join(kept)) if kept else None
    return Converted(line, "session", "", source, target, changes)


_CS_VARS = {"names", "character_set_client", "character_set_results", "character_set_connection",
            "collation_connection"}
# sql_mode flags MySQL 8 / OceanBase do not know
_OBSOLETE_MODES = {"NO_AUTO_CREATE_USER", "NO_FIELD_OPTIONS", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "MYSQL323",
                   "MYSQL40", "DB2", "MAXDB", "MSSQL", "ORACLE", "POSTGRESQL", "SIMULTANEOUS_ASSIGNMENT",
                   "EMPTY_STRING_IS_NULL", "TIME_ROUND_FRACTIONAL"}


def _map_set_value(var: str, a_sig: list[dt.Token], caps: TargetCaps) -> str | None:
    name = var.lstrip("@")
    if var.startswith("@") and not var.startswith("@@"):
        return None  # a user variable: saved values are restored as they are
    eq = next((k for k, t in enumerate(a_sig) if t.text == "="), None)
    if name == "names":
        value_toks = a_sig[1:2]
    elif eq is None:
        return None
    else:
        value_toks = a_sig[eq + 1:]
    if not value_toks or value_toks[0].text == "@" or value_toks[0].upper in ("DEFAULT",):
        return None
    value = value_toks[0].ident.strip("'\"")
    if name == "names":
        return f"NAMES {map_charset(value, None, caps).charset}"
    if name == "collation_connection":
        return f"{var} = {map_charset(None, value, caps).collation}"
    if name in _CS_VARS:
        return f"{var} = {map_charset(value, None, caps).charset}"
    if name == "time_zone" and value.upper() == "SYSTEM":
        return ""  # the source host's zone means nothing on the target: the session keeps its zone
    if name == "sql_mode" and value_toks[0].kind == dt.STRING:
        modes = [m for m in value_toks[0].text[1:-1].split(",") if m]
        keep = [m for m in modes if m.upper() not in _OBSOLETE_MODES]
        if keep != modes:
            return f"{var} = '{','.join(keep)}'"
    return None


# ---------------------------------------------------------------- output


def render_script(report: ConvertReport) -> str:
    lines = [f"-- converted by migrator for target {report.target} from {report.dump} "
             f"(source flavor {report.source_flavor})", ""]
    for s in report.statements:
        for c in s.changes:
            if c.severity != "rewrite" or s.target is None:
                lines.append(f"-- {c.severity.upper()} [{c.rule}] {c.reason}")
        if s.target is None:
            if s.status == "blocked":
                lines.append(f"-- BLOCKED {s.kind} {s.name} (dump line {s.line}): not converted; original:")
                lines += ["--   " + ln for ln in s.source.splitlines()]
            continue
        if s.routine_like:
            lines += ["DELIMITER ;;", s.target + " ;;", "DELIMITER ;"]
        else:
            lines.append(s.target + ";")
    return "\n".join(lines) + "\n"


def write_outputs(report: ConvertReport, out: str | Path | None, report_path: str | Path | None) -> None:
    from ..state import atomic_write_text

    if out is not None:
        atomic_write_text(out, render_script(report))
    if report_path is not None:
        atomic_write_text(report_path, json.dumps(report.to_json(), indent=2) + "\n")


def apply_script(report: ConvertReport, ep: Endpoint) -> list[ApplyOutcome]:
    """Run every converted statement on the target in order; a rejected one is recorded, not fatal."""
    outcomes: list[ApplyOutcome] = []
    conn = connect(ep, "target")
    current_db: str | None = None
    try:
        for s in report.statements:
            if s.target is None:
                continue
            try:
                with conn.cursor() as cur:
                    cur.execute(s.target)
                if s.kind == "use":
                    current_db = s.name
                outcomes.append(ApplyOutcome(s.line, s.kind, s.name, True))
            except pymysql.err.MySQLError as exc:
                outcomes.append(ApplyOutcome(s.line, s.kind, s.name, False, describe_error(ep, "target", exc)))
                if error_code(exc) in (2006, 2013):  # connection lost: reconnect in the same database
                    conn.close()
                    conn = connect(ep, "target", database=current_db)
    finally:
        conn.close()
    report.applied = outcomes
    return outcomes
