"""`migrator status`: copy, sync, verify and cutover state of every source in one view."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..plan.model import load_plan
from ..status import migration_status
from .common import make_console, plan_argument, resolve_workdir, workdir_option


@click.command("status")
@plan_argument
@workdir_option
@click.option("--live", is_flag=True, help="Also ask each source for its binlog position, to show sync lag now.")
@click.option("--tables", "show_tables", is_flag=True, help="Also list copy progress per table.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(plan_path: Path, workdir: Path | None, live: bool, show_tables: bool, as_json: bool) -> None:
    """Copy, sync, verify and cutover state of every source, read from the work directory
    (no database unless --live)."""
    plan = load_plan(plan_path)
    wd = resolve_workdir(plan_path, workdir)
    doc = migration_status(plan, wd, live=live)
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    console = make_console()
    view = Table("source", "copy", "sync", "verify", title=f"migration status ({wd.root})")
    for s in doc["sources"]:
        c, y, v = s["copy"], s["sync"], s["verify"]
        copy_txt = f"{c['tables_complete']}/{c['tables']} tables, {c['rows']:,} rows"
        if c["failed"]:
            copy_txt += f" [red]({len(c['failed'])} failed)[/]"
        sync_txt = y.get("state") or "not started"
        if y.get("lag_seconds") is not None:
            sync_txt += f", lag {y['lag_seconds']:.1f}s"
        if y.get("lag_transactions") is not None:
            sync_txt += f" / {y['lag_transactions']} trx"
        if y.get("runs_on"):
            sync_txt += f", on {y['runs_on']}"
        verify_txt = "not run" if not v else ", ".join(f"{n} {k}" for k, n in v.items() if n)
        view.add_row(s["source"], copy_txt, sync_txt, verify_txt)
    console.print(view)
    if doc["cutover"]:
        co = doc["cutover"]
        state = "rolled back" if co.get("rolled_back_at") else ("done" if co.get("ok") else "NOT complete")
        console.print(f"cutover: {state}; write downtime {co.get('write_downtime_seconds')}s. {co.get('next_step') or ''}")
    if show_tables:
        t = Table("table", "rows", "estimated", "chunks", "state", title="copy per table")
        for p in doc["tables"]:
            st = "complete" if p["complete"] else ("failed" if p["error"] else ("copying" if p["rows"] else "pending"))
            t.add_row(p["table_id"], f"{p['rows']:,}", f"{p['estimated_rows']:,}",
                      f"{p['chunks_done']}/{p['chunks_total']}", st)
        console.print(t)
    for s in doc["sources"]:
        for failed in s["copy"]["failed"]:
            err = next(p["error"] for p in doc["tables"] if p["table_id"] == failed)
            console.print(f"[red]{failed}:[/] {err}")


def register(main: click.Group) -> None:
    main.add_command(status_command)
