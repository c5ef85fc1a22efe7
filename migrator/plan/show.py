"""The plan as a DBA reviews it on a terminal: findings (one row per problem, shards grouped),
sources, the foreign-key graph and the target tables. Used by `migrator plan` and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..formatting import human_bytes
from .model import Finding, ForeignKey, Plan

MAX_FINDING_ROWS = 200
MAX_TABLE_ROWS = 60
SEVERITY_ORDER = {"blocking": 0, "warning": 1, "info": 2, "rewrite": 3}
SEVERITY_STYLE = {"blocking": "bold red", "warning": "yellow", "info": "dim", "rewrite": "dim"}


def plan_rows(plan: Plan) -> list[tuple[str, str, str, str, str]]:
    """(severity, check, where, message, fix) for findings and for DDL changes that matter.
    The same problem on many shards (same check, table name and fix shape) is one row."""
    rows: list[tuple[str, str, str, str, str, str]] = []  # + grouping table name
    for f in plan.findings:
        rows.append((f.severity, f.check, where(f), f.message, f.fix or "", f.table or ""))
    for t in plan.active_tables():
        for c in t.changes:
            if c.severity in ("blocking", "warning"):
                rows.append((c.severity, f"ddl.{c.rule}", t.id, c.reason, "", t.table))
    groups: dict[tuple[str, str, str], list[tuple]] = {}
    for row in rows:
        groups.setdefault((row[0], row[1], row[5]), []).append(row)
    out = []
    for members in groups.values():
        sev, check, place, msg, fix, _ = members[0]
        if len(members) > 1:
            place = f"{place} and {len(members) - 1} more"
        out.append((sev, check, place, msg, fix))
    out.sort(key=lambda r: SEVERITY_ORDER.get(r[0], 9))
    return out


def where(f: Finding) -> str:
    place = ".".join(p for p in (f.database, f.table) if p)
    return "/".join(p for p in (f.instance, place) if p) or "-"


def print_plan_summary(console: Console, plan: Plan) -> None:
    rows = plan_rows(plan)
    shown = [r for r in rows if r[0] in ("blocking", "warning")]
    infos = sum(1 for f in plan.findings if f.severity == "info")
    if shown:
        table = Table("severity", "check", "where", "what", "fix", title="findings", show_lines=True)
        for sev, check, place, msg, fix in shown[:MAX_FINDING_ROWS]:
            table.add_row(f"[{SEVERITY_STYLE[sev]}]{sev}[/]", check, place, msg, fix)
        console.print(table)
        if len(shown) > MAX_FINDING_ROWS:
            console.print(f"... and {len(shown) - MAX_FINDING_ROWS} more: see the plan file")
    if infos:
        console.print(f"{infos} informational finding(s) in the plan file", style="dim")
    by_source = Table("source", "version", "tables", "est. rows", "est. bytes", "chunks", "blocking",
                      title="sources")
    for s in plan.sources:
        tables = [t for t in plan.active_tables() if t.source == s.name]
        blocking = sum(1 for f in plan.findings if f.severity == "blocking" and f.instance == s.name) + sum(
            1 for t in tables for c in t.changes if c.severity == "blocking")
        by_source.add_row(s.name, s.version or "-", str(len(tables)), f"{sum(t.estimated_rows for t in tables):,}",
                          human_bytes(sum(t.estimated_bytes for t in tables)),
                          str(sum(len(t.chunks) for t in tables)),
                          f"[bold red]{blocking}[/]" if blocking else "0")
    console.print(by_source)
    print_foreign_keys(console, plan)
    targets: dict[str, list] = {}
    for t in plan.tables:
        targets.setdefault(t.target_name, []).append(t)
    if len(targets) > MAX_TABLE_ROWS:
        console.print(f"{len(targets)} target tables: see the plan file", style="dim")
        return
    by_table = Table("target table", "from", "mode", "key", "est. rows", "chunks", "DDL changes", title="tables")
    for name, members in targets.items():
        first = members[0]
        sev = [c.severity for t in members for c in t.changes]
        changes = ", ".join(f"{sev.count(s)} {s}" for s in ("blocking", "warning", "rewrite") if s in sev) or "-"
        origin = first.id if len(members) == 1 else f"{len(members)} tables ({first.source_name}, ...)"
        modes = ", ".join(sorted({t.mode for t in members}))
        key = ", ".join(first.key) or "[red]none[/]"
        if first.source_column:
            key += f" + {first.source_column}"
        by_table.add_row(name, origin, modes, key, f"{sum(t.estimated_rows for t in members):,}",
                         str(sum(len(t.chunks) for t in members)), changes)
    console.print(by_table)


def foreign_key_groups(plan: Plan) -> list[tuple[list[str], list[ForeignKey]]]:
    """Per source database (instance/db), its foreign keys; databases with the same graph (shards)
    are one group."""
    per_db: dict[str, list[ForeignKey]] = {}
    for fk in plan.foreign_keys or []:
        per_db.setdefault(fk.table.rsplit(".", 1)[0], []).append(fk)
    groups: dict[tuple, tuple[list[str], list[ForeignKey]]] = {}
    for db, fks in per_db.items():
        shape = tuple(sorted((f.describe(), f.parent_in_plan) for f in fks))
        groups.setdefault(shape, ([], fks))[0].append(db)
    return list(groups.values())


def print_foreign_keys(console: Console, plan: Plan) -> None:
    """The FK graph: which tables depend on which, and which actions cascade."""
    if not plan.foreign_keys:
        return
    n = len(plan.foreign_keys)
    cascading = sum(1 for f in plan.foreign_keys if f.cascades)
    table = Table("database", "child -> parent", "on delete", "on update",
                  title=f"foreign keys ({n}, {cascading} cascading or setting NULL)")
    rows = 0
    for dbs, fks in foreign_key_groups(plan):
        place = dbs[0] + (f" and {len(dbs) - 1} more" if len(dbs) > 1 else "")
        for fk in fks:
            if rows >= MAX_TABLE_ROWS:
                break
            parent = fk.parent.split("/", 1)[-1]
            if parent.rsplit(".", 1)[0] == fk.table.split("/", 1)[-1].rsplit(".", 1)[0]:
                parent = parent.rsplit(".", 1)[-1]  # same database: the table is enough
            arrow = f"{fk.table.rsplit('.', 1)[-1]}({', '.join(fk.columns)}) -> {parent}({', '.join(fk.parent_columns)})"
            if not fk.parent_in_plan:
                arrow += " [yellow](parent not migrated)[/]"
            table.add_row(place, arrow, _action_text(fk.on_delete), _action_text(fk.on_update))
            place = ""
            rows += 1
    console.print(table)
    if rows >= MAX_TABLE_ROWS:
        console.print(f"{n} foreign keys: see `foreign_keys` in the plan file", style="dim")


def _action_text(action: str) -> str:
    return f"[bold]{action}[/]" if action in ("CASCADE", "SET NULL", "SET DEFAULT") else action
