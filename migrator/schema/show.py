"""What `schema --apply` did, as a table (used by `migrator schema` and the demo)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .apply import ApplyReport


def print_apply_report(console: Console, report: ApplyReport) -> None:
    style = {"created": "green", "exists": "dim", "different": "bold red", "blocked": "bold red",
             "failed": "bold red"}
    table = Table("target table", "result", "detail", "sources", title="schema --apply")
    for o in report.outcomes:
        sources = ", ".join(o.table.sources[:3]) + (f" +{len(o.table.sources) - 3}" if len(o.table.sources) > 3 else "")
        table.add_row(o.table.name, f"[{style[o.status]}]{o.status}[/]", "\n".join(o.detail) or "-", sources)
    console.print(table)
    created_dbs = f"{len(report.databases_created)} database(s) created; " if report.databases_created else ""
    console.print(f"{created_dbs}{report.count('created')} table(s) created, {report.count('exists')} already there, "
                  f"{report.count('different')} different, {report.count('blocked')} blocked, "
                  f"{report.count('failed')} failed", highlight=False)
