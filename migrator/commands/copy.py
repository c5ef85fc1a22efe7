"""CLI command of the copy stage: `migrator copy PLAN` (progress: `migrator status`)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ..copy.progress import CopyTracker, Reporters, RichReporter, SummaryReporter
from ..copy.runner import CopyOptions, run_copy
from ..copy.state import CopyState
from ..formatting import human_bytes
from ..plan.model import load_plan
from ..progress_lines import fmt_eta
from ..throttle import replica_endpoints
from .common import (make_console, metrics_options, plan_argument, replica_options, resolve_workdir, run_options,
                     stage_metrics, workdir_option)

@click.command("copy")
@plan_argument
@workdir_option
@click.option("--parallel", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Chunks copied at once, over all sources.")
@click.option("--per-source", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Chunks copied at once from one source instance.")
@click.option("--restart", is_flag=True, help="Forget this work directory's copy progress and start over.")
@click.option("--yes", is_flag=True, help="Do not ask before --restart.")
@click.option("--retries", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Attempts per page when a server is unreachable (exponential backoff).")
@click.option("--page-rows", type=click.IntRange(1), default=None, hidden=True,
              help="Fixed page size in rows (tests; default adapts to ~1 s per page).")
@click.option("--target-connections", type=click.IntRange(0, 1024), default=0,
              help="Most connections to the target at once (writers wait for a free one); default: one "
                   "per running chunk (--parallel).")
@click.option("--max-source-threads-running", type=click.IntRange(0), default=25, show_default=True,
              help="Reads from a source wait while its Threads_running is above this (0: never wait).")
@click.option("--executor", "executor_url", default="local", show_default=True, metavar="URL",
              help="Where chunks are copied: 'local' threads, or dask://HOST:PORT (a Dask scheduler; "
                   "workers copy, this process alone checkpoints).")
@replica_options
@click.option("--dry-run", is_flag=True,
              help="Print what would be copied (per source: tables, chunks done/left, rows, size, where to, "
                   "estimated time) from the plan and the work directory, and exit; no database is touched.")
@click.option("--assume-mb-per-second", type=click.FloatRange(0.01), default=20.0, show_default=True,
              help="Throughput --dry-run estimates with (measured here: 305 MB in ~15 s into seekdb on 2 cores).")
@metrics_options
def copy_command(plan_path: Path, workdir: Path | None, parallel: int, per_source: int, restart: bool,
                 yes: bool, retries: int, page_rows: int | None, target_connections: int,
                 max_source_threads_running: int, executor_url: str, max_replica_lag: float,
                 replica_urls: tuple[str, ...], discover_replicas: bool, dry_run: bool, assume_mb_per_second: float,
                 metrics_port: int | None, metrics_addr: str) -> None:
    """Copy every active table of PLAN into the target, resumably.

    Records each source's binlog position first (sync starts there), copies chunks in parallel,
    and checkpoints each page after the target commits. Rerun to resume. Reads back off while a
    source is busy and writes pause on target commit stalls (the reason is shown).

    Progress: bars on a terminal; otherwise one line every --progress-interval seconds
    (rows, rows/s, ETA; JSON with --log-format json). `migrator status --watch` shows it too.
    """
    console, err = make_console(), make_console(stderr=True)
    plan = load_plan(plan_path)
    wd = resolve_workdir(plan_path, workdir)
    if dry_run:
        print_dry_run(plan, wd, console, assume_mb_per_second * 1e6, restart=restart)
        return
    if restart and not yes:
        click.confirm(f"Forget the copy progress in {wd.root} and copy every table again?", abort=True)
    opts = CopyOptions(parallel=parallel, per_source=per_source, restart=restart, retries=retries,
                       target_connections=target_connections, max_source_threads_running=max_source_threads_running,
                       executor=executor_url, max_replica_lag=max_replica_lag,
                       replicas=replica_endpoints(plan, replica_urls, discover_replicas, executor_url) if max_replica_lag
                       else None)
    if page_rows:
        opts.initial_page_rows = opts.min_page_rows = opts.max_page_rows = page_rows
        opts.whole_chunks = False
    live = console.is_terminal
    with stage_metrics("copy", metrics_port, metrics_addr) as metrics:
        tracker = CopyTracker(run_options().progress_interval, live_path=wd.live("copy"), echo=not live,
                              metrics=metrics)
        display = RichReporter(console, err) if live else SummaryReporter(console)
        try:
            run_copy(plan, wd, opts, Reporters(display, tracker), plan_path=plan_path)
        finally:
            if tracker.ticker is not None and not tracker.ticker._stop.is_set():
                tracker.ticker.stop("failed")


def print_dry_run(plan, wd, console, bytes_per_second: float, *, restart: bool) -> None:
    """--dry-run: per source, what is left to copy and where it goes; an estimate of the time."""
    state = None if restart or not wd.copy_dir.exists() else CopyState.load(wd, plan)  # creates nothing
    rows: dict[str, list[int]] = {}  # source -> tables, chunks done, chunks, rows est, bytes est, bytes left
    targets: dict[str, set[str]] = {}
    for t in plan.active_tables():
        p = state.table_progress(t.id) if state is not None else None
        done = p.chunks_done if p else 0
        total = len(t.chunks) or 1
        left = t.estimated_bytes * (total - done) // total
        r = rows.setdefault(t.source, [0, 0, 0, 0, 0, 0])
        for i, v in enumerate((1, done, total, t.estimated_rows, t.estimated_bytes, left)):
            r[i] += v
        targets.setdefault(t.source, set()).add(t.target_database)
    table = Table("source", "tables", "chunks done/total", "rows (estimate)", "size (estimate)", "left", "into",
                  title=f"copy --dry-run of {len(plan.active_tables())} table(s)"
                        + (" (--restart: everything again)" if restart else ""))
    for source, (n, done, total, est_rows, est_bytes, left) in rows.items():
        into = ", ".join(sorted(targets[source])[:3]) + (" …" if len(targets[source]) > 3 else "")
        table.add_row(source, str(n), f"{done:,}/{total:,}", f"{est_rows:,}", human_bytes(est_bytes),
                      human_bytes(left), into)
    console.print(table)
    left = sum(r[5] for r in rows.values())
    est = left / bytes_per_second if bytes_per_second else 0
    console.print(f"{sum(r[2] - r[1] for r in rows.values()):,} chunk(s) left, {human_bytes(left)} to copy into "
                  f"{plan.target.engine}: about {fmt_eta(est)} at {human_bytes(int(bytes_per_second))}/s "
                  "(--assume-mb-per-second; the target's insert speed usually decides it)", highlight=False)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(copy_command)
