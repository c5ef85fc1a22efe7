"""`migrator schema convert`: offline conversion of a DDL dump (issue 9)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..endpoint import parse_url
from ..schema.convert import ConvertReport, apply_script, convert_file, write_outputs
from ..errors import ExitCode
from ..schema.targets import TARGETS
from .common import exit_with

STATUS_STYLE = {"as-is": "green", "rewritten": "cyan", "warning": "yellow", "blocked": "bold red"}
MAX_ROWS = 80


@click.command("convert")
@click.argument("dump", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", "target", type=click.Choice(TARGETS), default="oceanbase", show_default=True,
              help="Target database kind.")
@click.option("--source-flavor", type=click.Choice(["auto", "mariadb", "mysql"]), default="auto", show_default=True,
              help="Who wrote the dump (auto: from its header).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the converted script here (runnable with the mysql client).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON report here (per object: changes with rule, severity, reason).")
@click.option("--apply", "apply_url", metavar="TARGET_URL",
              help="Run the converted script on this target; a rejected statement is reported and skipped.")
def convert_command(dump: Path, target: str, source_flavor: str, out_path: Path | None, report_path: Path | None,
                    apply_url: str | None) -> None:
    """Convert a mysqldump / mariadb-dump --no-data script for the target.

    Tables, views, triggers, routines and events are converted with the same rules as
    `migrator plan`; every change is listed. Exit 0 when everything converts (warnings allowed),
    1 when anything is blocked or a statement was rejected by --apply, 2 on errors.
    """
    console = Console()
    ep = parse_url(apply_url, "target") if apply_url else None
    report = convert_file(dump, target, None if source_flavor == "auto" else source_flavor)
    if ep is not None:
        with Console(stderr=True).status(f"applying to {ep.display()}…"):
            apply_script(report, ep)
    write_outputs(report, out_path, report_path)
    print_convert_summary(console, report)
    if report.blocked or report.rejected:
        exit_with(ExitCode.DIFFERENT)


def print_convert_summary(console: Console, report: ConvertReport) -> None:
    objects = report.objects()
    shown = [o for o in objects if o["status"] != "as-is"]
    if shown:
        table = Table("object", "status", "changes", title=f"{report.dump} -> {report.target}", show_lines=False)
        for o in shown[:MAX_ROWS]:
            sev = [c["severity"] for c in o["changes"]]
            worst = [c for c in o["changes"] if c["severity"] == {"blocked": "blocking", "warning": "warning"}.get(
                o["status"], "rewrite")]
            detail = ", ".join(f"{sev.count(s)} {s}" for s in ("blocking", "warning", "rewrite") if s in sev)
            if worst and o["status"] in ("blocked", "warning"):
                detail += f": {worst[0]['reason']}" + (f" (+{len(worst) - 1} more)" if len(worst) > 1 else "")
            name = ".".join(p for p in (o["database"] if o["kind"] != "database" else None, o["name"]) if p)
            table.add_row(f"{o['kind']} {name}", f"[{STATUS_STYLE[o['status']]}]{o['status']}[/]", detail)
        console.print(table)
        if len(shown) > MAX_ROWS:
            console.print(f"... and {len(shown) - MAX_ROWS} more: see --report")
    counts = report.summary()
    console.print("objects: " + ", ".join(f"[{STATUS_STYLE[k]}]{v} {k}[/]" for k, v in counts.items()))
    if report.applied:
        ok = sum(1 for a in report.applied if a.ok)
        console.print(f"applied: {ok} statement(s) ok, {len(report.rejected)} rejected")
        for a in report.rejected:
            console.print(f"  [red]rejected[/] line {a.line} {a.kind} {a.name}: {a.error}", highlight=False)
