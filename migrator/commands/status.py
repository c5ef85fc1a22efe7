"""`migrator status`: copy, sync, verify and cutover state of every source in one view."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..plan.model import load_plan
from ..progress_lines import fmt_eta
from ..status import fleet_view, migration_status
from .common import make_console, plan_argument, resolve_workdir, workdir_option


@click.command("status")
@plan_argument
@workdir_option
@click.option("--live", is_flag=True, help="Also ask each source for its binlog position, to show sync lag now.")
@click.option("--tables", "show_tables", is_flag=True, help="Also list copy progress per table.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with --watch: one JSON object a line).")
@click.option("--watch", is_flag=True,
              help="A live fleet view refreshed in place: totals, rows/s, ETA, sync lag percentiles, the worst "
                   "sources, throttling reasons, errors. Ctrl-C ends it.")
@click.option("--interval", type=click.FloatRange(0.2), default=2.0, show_default=True,
              help="Seconds between refreshes of --watch.")
@click.option("--worst", type=click.IntRange(1, 100), default=8, show_default=True,
              help="Sources listed by --watch (largest sync lag, then most rows left to copy).")
@click.option("--iterations", type=click.IntRange(1), default=None, hidden=True, help="Stop --watch after N views.")
def status_command(plan_path: Path, workdir: Path | None, live: bool, show_tables: bool, as_json: bool, watch: bool,
                   interval: float, worst: int, iterations: int | None) -> None:
    """Copy, sync, verify and cutover state of every source, read from the work directory
    (no database unless --live). --watch: a live fleet view."""
    plan = load_plan(plan_path)
    wd = resolve_workdir(plan_path, workdir)
    if watch:
        watch_fleet(plan, wd, interval=interval, as_json=as_json, worst=worst, iterations=iterations)
        return
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
        t = Table("table", "clean", "dirty", "differs", "never checked",
                  title="chunks: verified clean and unchanged since / changed by sync since / differing / never checked")
        for name, counts in doc["chunk_states"].items():
            t.add_row(name, *(str(counts.get(k, 0)) for k in ("clean", "dirty", "differs", "never")))
        console.print(t)
    for s in doc["sources"]:
        for failed in s["copy"]["failed"]:
            err = next(p["error"] for p in doc["tables"] if p["table_id"] == failed)
            console.print(f"[red]{failed}:[/] {err}")


def watch_fleet(plan, wd, *, interval: float, as_json: bool, worst: int, iterations: int | None) -> None:
    """Refresh the fleet view in place on a terminal (rich Live); elsewhere print it each time."""
    console = make_console()
    previous: dict[str, Any] | None = None
    shown = 0

    def views():
        nonlocal previous, shown
        while iterations is None or shown < iterations:
            if shown:
                time.sleep(interval)
            view = fleet_view(plan, wd, previous, worst=worst)
            previous, shown = view, shown + 1
            yield view

    try:
        if as_json:
            for view in views():
                click.echo(json.dumps(view, default=str))
        elif console.is_terminal:
            with Live(console=console, auto_refresh=False, screen=False, transient=False) as live:
                for view in views():
                    live.update(render_fleet(view), refresh=True)
        else:
            for view in views():
                console.print(render_fleet(view))
    except KeyboardInterrupt:
        pass


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def render_fleet(view: dict[str, Any]) -> RenderableType:
    c, y = view["copy"], view["sync"]
    stamp = time.strftime("%H:%M:%S UTC", time.gmtime(view["at"]))
    running = ", ".join(view["running"]) or "nothing running"
    head = Text.from_markup(f"[bold]migration[/] {view['workdir']}  {stamp}  {view['sources']} source(s)  "
                            f"[cyan]{running}[/]")
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    pct = 100.0 * c["rows"] / c["rows_total"] if c["rows_total"] else 100.0
    totals.add_row("copy", f"{c['rows']:,}/{c['rows_total']:,} rows ({pct:.1f}%), {c['tables_complete']}/{c['tables']} "
                           f"tables, {c['rows_per_second']:,.0f} rows/s, ETA {fmt_eta(c['eta_seconds'])}")
    sync_rate = "-" if y["rows_per_second"] is None else f"{y['rows_per_second']:,.0f}"
    totals.add_row("sync", f"{y['started']}/{view['sources']} source(s) started, {sync_rate} rows/s, lag p50 "
                           f"{_s(y['lag_p50_seconds'])} p95 {_s(y['lag_p95_seconds'])} max {_s(y['lag_max_seconds'])}")
    v = view["verify"]
    if v:
        if v.get("chunks_total"):
            vtxt = f"running: {v['chunks_done']:,}/{v['chunks_total']:,} chunks"
        else:
            vtxt = ("identical" if v.get("identical") else f"{v.get('differences', 0)} difference(s)") + \
                f" (finished {v.get('finished_at') or '?'})"
    else:
        vtxt = "not run"
    totals.add_row("verify", vtxt)
    co = view["cutover"]
    totals.add_row("cutover", "not run" if not co else ("rolled back" if co.get("rolled_back_at") else
                                                        ("done" if co.get("ok") else "NOT complete")))
    worst = Table("source", "sync lag", "copy rows left", "copy tables", "sync", "failed", title="worst sources",
                  title_justify="left")
    for w in view["worst"]:
        worst.add_row(w["source"], _s(w["lag_seconds"]), f"{w['copy_rows_left']:,}", w["copy"], w["sync"] or "-",
                      f"[red]{w['failed']}[/]" if w["failed"] else "0")
    parts: list[RenderableType] = [head, totals, worst]
    for stage, line in view["stages"].items():
        parts.append(Text(f"{stage}: {line}", style="dim"))
    for stage, reason in view["throttled"].items():
        parts.append(Text.from_markup(f"[yellow]throttled ({stage}):[/] ") + Text(reason))
    for err in view["errors"]:
        parts.append(Text.from_markup("[red]error:[/] ") + Text(err))
    return Group(*parts)


def register(main: click.Group) -> None:
    main.add_command(status_command)
