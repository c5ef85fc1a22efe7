"""CLI commands of the verify stage."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..progress import CallbackSink, Fanout, Throttled, VerifyProgress
from ..progress_lines import Ticker, VerifyTracker
from ..errors import ExitCode
from .common import (exit_with, metrics_options, plan_argument, replica_options, resolve_workdir, run_options,
                     stage_metrics, workdir_option)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(verify)


@click.command()
@plan_argument
@workdir_option
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON report here.")
@click.option("--tables", default=None, metavar="PATTERN",
              help="Only tables matching these comma-separated shell patterns (db.table, instance/db.table or "
                   "target db.table).")
@click.option("--fix-sql", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write REPLACE/DELETE statements that would repair the target to this file.")
@click.option("--apply-fix", is_flag=True, help="Run the --fix-sql statements on the target, then re-check.")
@click.option("--parallel", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Chunks checksummed at once, over all instances.")
@click.option("--per-source", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Chunks checksummed at once on one source instance, --follow included (its connections "
                   "close when its last chunk is done).")
@click.option("--max-rows", type=click.IntRange(1, 10_000_000), default=1000, show_default=True,
              help="Differing rows listed per table before listing stops.")
@click.option("--restart", is_flag=True, help="Ignore an interrupted run's progress and verify every chunk again.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of tables.")
@click.option("--target-connections", type=click.IntRange(0, 1024), default=0,
              help="Most checksum queries on the target at once (default: --parallel).")
@click.option("--max-source-threads-running", type=click.IntRange(0), default=25, show_default=True,
              help="Checksums on a source wait while its Threads_running is above this (0: never wait).")
@click.option("--executor", "executor_url", default="local", show_default=True, metavar="URL",
              help="Where chunk checksums run: 'local' threads, or dask://HOST:PORT (a Dask scheduler).")
@click.option("--follow", is_flag=True,
              help="Keep verifying while sync runs: each pass checksums the chunks not clean now (never checked, "
                   "changed by sync since, differing); cutover then re-verifies only those. Stop with Ctrl-C.")
@click.option("--interval", type=click.FloatRange(0, None), default=2.0, show_default=True,
              help="--follow: seconds between passes.")
@click.option("--passes", type=click.IntRange(1), default=None, help="--follow: stop after this many passes.")
@click.option("--duration", type=click.FloatRange(0, None), default=None, help="--follow: stop after this many seconds.")
@click.option("--refresh", type=click.FloatRange(0, None), default=600.0, show_default=True,
              help="--follow: check clean chunks again after this many seconds (finds changes made on the target "
                   "behind sync's back).")
@replica_options
@metrics_options
def verify(plan_path: Path, workdir: Path | None, report_file: Path | None, tables: str | None, fix_sql: Path | None,
           apply_fix: bool, parallel: int, per_source: int, max_rows: int, restart: bool, as_json: bool,
           target_connections: int, max_source_threads_running: int, executor_url: str, follow: bool,
           interval: float, passes: int | None, duration: float | None, refresh: float, max_replica_lag: float,
           replica_urls: tuple[str, ...], discover_replicas: bool, metrics_port: int | None, metrics_addr: str) -> None:
    """Compare every chunk of PLAN on source and target by checksums computed in each database.

    Differing chunks are narrowed to rows, named by key. Exit 0 when identical, 1 when a
    difference remains, 2 on errors. With --follow: passes while sync runs (see --follow); exit 1
    when the last pass left a confirmed difference, 2 on errors.
    """
    from ..plan.model import load_plan
    from ..throttle import replica_endpoints
    from ..verify.compare import VerifyOptions, verify_plan

    plan = load_plan(plan_path)
    wd = resolve_workdir(plan_path, workdir)
    replicas = replica_endpoints(plan, replica_urls, discover_replicas, executor_url) if max_replica_lag else None
    if follow:
        _follow(plan, wd, tables, parallel, per_source, interval, passes, duration, refresh, max_source_threads_running, as_json,
                max_replica_lag=max_replica_lag, replicas=replicas)
        return
    console = Console()
    reason: list[str | None] = [None]

    with stage_metrics("verify", metrics_port, metrics_addr) as metrics:
        tracker = VerifyTracker(metrics)
        echo = as_json or not console.is_terminal
        # progress lines when not a terminal; --json keeps stderr to warnings (the live file is written anyway)
        ticker = Ticker("verify", run_options().progress_interval, tracker.snapshot, live_path=wd.live("verify"),
                        log_lines=not as_json and not console.is_terminal)

        def on_throttle(event: Any) -> None:
            if not isinstance(event, Throttled):
                return
            why = reason[0] = event.reason  # shown beside the progress bar; logged when not a terminal
            if echo:
                logging.getLogger("migrator.verify").warning("throttling: %s" if why else "throttling ended%s",
                                                             why or "")

        ticker.start()
        state = "failed"
        try:
            with _progress(console, quiet=as_json, reason=reason) as bar:
                progress = Fanout(tracker, CallbackSink(on_throttle), bar)
                options = VerifyOptions(tables=tables, parallel=parallel, per_source=per_source, fix_sql=fix_sql,
                                        apply_fix=apply_fix, report_path=report_file, restart=restart,
                                        max_rows=max_rows, target_connections=target_connections,
                                        max_source_threads_running=max_source_threads_running,
                                        executor=executor_url, max_replica_lag=max_replica_lag)
                report = verify_plan(plan, wd, options, progress=progress, replicas=replicas)
            metrics.verify_differences.set(sum(t.differences for t in report.tables))
            state = "finished"
        finally:
            ticker.stop(state)
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        render(report, console, wd.verify_report)
    exit_with(report.exit_code)


def _follow(plan, wd, tables: str | None, parallel: int, per_source: int, interval: float, passes: int | None,
            duration: float | None, refresh: float, max_source_threads_running: int, as_json: bool, *,
            max_replica_lag: float = 0.0, replicas: dict | None = None) -> None:
    from ..verify.follow import describe_pass, follow

    def on_pass(n: int, result) -> None:
        if as_json:
            click.echo(json.dumps({"pass": n, "checked": result.checked, "states": result.counts,
                                   "differing": result.differing, "errors": result.errors, "seconds": result.seconds}))
        else:
            click.echo(describe_pass(n, result))

    try:
        last = follow(plan, wd, tables=tables, parallel=parallel, per_source=per_source, interval=interval, passes=passes, duration=duration,
                      refresh=refresh, on_pass=on_pass, max_source_threads_running=max_source_threads_running,
                      max_replica_lag=max_replica_lag, replicas=replicas)
    except KeyboardInterrupt:
        click.echo("stopped; chunk states kept for the next run and for cutover", err=True)
        return
    exit_with(ExitCode.UNCHECKED if last.errors else ExitCode.DIFFERENT if last.differing else ExitCode.OK)


@contextmanager
def _progress(console: Console, quiet: bool,
              reason: list[str | None] | None = None) -> Iterator[CallbackSink | None]:
    """A rich progress bar (chunks, rows/s, ETA) on a terminal, fed VerifyProgress; nothing otherwise."""
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rows]} rows"),
               TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(), TextColumn("[yellow]{task.fields[why]}"))
    started = time.monotonic()
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("verify", total=None, rows="0", rate="-", why="")

        def update(event: Any) -> None:
            if not isinstance(event, VerifyProgress):
                return
            rate = event.rows / max(time.monotonic() - started, 1e-3)
            why = reason[0] if reason else None
            bar.update(task, completed=event.done, total=event.total, rows=f"{event.rows:,}", rate=f"{rate:,.0f}",
                       why=f"throttled: {why}" if why else "")

        yield CallbackSink(update)


def render(report, console: Console, report_path: Path) -> None:
    table = Table("table", "target", "rows (src/tgt)", "chunks", "differing", "differences", "time", "status")
    for t in report.tables:
        style = {"identical": "green", "different": "red", "error": "bold red"}[t.status]
        resumed = f" ({t.chunks_resumed} resumed)" if t.chunks_resumed else ""
        table.add_row(t.table, t.target_table, f"{t.rows_source}/{t.rows_target}", f"{t.chunks}{resumed}",
                      str(t.chunks_differing), str(t.differences), f"{t.seconds:.1f}s", f"[{style}]{t.status}[/]")
    console.print(table)
    for t in report.tables:
        for note in t.notes:
            console.print(f"  {t.table}: {note}", highlight=False, soft_wrap=True)
        if t.error:
            console.print(f"  [bold red]{t.table}: {t.error}[/]", highlight=False, soft_wrap=True)
    if report.rows:
        rows = Table("table", "key", "kind", "columns", "suspected cause", "fixed")
        for r in report.rows[:50]:
            rows.add_row(r.table, json.dumps(r.key), r.kind, ", ".join(r.columns), r.suspected or "",
                         "yes" if r.fixed else "")
        console.print(rows)
        if len(report.rows) > 50:
            console.print(f"  … {len(report.rows) - 50} more rows in the report", highlight=False, soft_wrap=True)
    if report.fix_sql:
        verb = "applied" if report.fixes_applied else "written (not applied)"
        console.print(f"fix SQL: {report.fix_statements} statement(s) {verb}: {report.fix_sql}", highlight=False, soft_wrap=True)
    verdict = "[green]identical[/]" if report.identical else "[red]differences remain[/]"
    if report.exit_code == ExitCode.UNCHECKED:
        verdict = "[bold red]errors[/]"
    console.print(f"verify: {verdict}; report {report_path}", highlight=False, soft_wrap=True)
