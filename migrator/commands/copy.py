"""CLI commands of the copy stage: `migrator copy PLAN` and `migrator status PLAN`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..copy.progress import RichReporter, human_bytes
from ..copy.runner import CopyOptions, run_copy
from ..copy.state import CopyState
from ..plan.model import load_plan
from ..workdir import WorkDir, default_workdir

plan_argument = click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
workdir_option = click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
                              help="Work directory (default: work/<plan file stem>).")


def _console(stderr: bool = False) -> Console:
    """Wide when piped, so table cells are not cut to 80 columns in logs."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=200)


def _workdir(plan_path: Path, workdir: Path | None) -> WorkDir:
    return WorkDir(workdir or default_workdir(plan_path))


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
def copy_command(plan_path: Path, workdir: Path | None, parallel: int, per_source: int, restart: bool,
                 yes: bool, retries: int, page_rows: int | None, target_connections: int,
                 max_source_threads_running: int, executor_url: str) -> None:
    """Copy every active table of PLAN into the target, resumably.

    Records each source's binlog position first (sync starts there), copies chunks in parallel,
    and checkpoints each page after the target commits. Rerun to resume. Reads back off while a
    source is busy and writes pause on target commit stalls (the reason is shown).
    """
    console, err = _console(), _console(stderr=True)
    plan = load_plan(plan_path)
    wd = _workdir(plan_path, workdir)
    if restart and not yes:
        click.confirm(f"Forget the copy progress in {wd.root} and copy every table again?", abort=True)
    opts = CopyOptions(parallel=parallel, per_source=per_source, restart=restart, retries=retries,
                       target_connections=target_connections, max_source_threads_running=max_source_threads_running,
                       executor=executor_url)
    if page_rows:
        opts.initial_page_rows = opts.min_page_rows = opts.max_page_rows = page_rows
        opts.whole_chunks = False
    run_copy(plan, wd, opts, RichReporter(console, err), plan_path=plan_path)


@click.command("status")
@plan_argument
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(plan_path: Path, workdir: Path | None, as_json: bool) -> None:
    """Copy progress per source and table, read from the work directory only (no database)."""
    plan = load_plan(plan_path)
    wd = _workdir(plan_path, workdir)
    state = CopyState.load(wd, plan)
    if as_json:
        click.echo(json.dumps(status_document(state), indent=2))
        return
    console = _console()
    table = Table("source", "table", "rows", "estimated", "size", "chunks", "state", title=f"copy status ({wd.root})")
    for p in state.progress():
        st = "[green]complete[/]" if p.complete else ("[red]failed[/]" if p.error else
                                                      ("copying" if p.rows or p.chunks_done else "pending"))
        table.add_row(p.source, p.table_id.split("/", 1)[1], f"{p.rows:,}", f"{p.estimated_rows:,}",
                      human_bytes(p.bytes), f"{p.chunks_done}/{p.chunks_total}", st)
    console.print(table)
    for src in plan.sources:
        start, end = state.start_position(src.name), state.end_position(src.name)
        where = f"{start.file}:{start.pos} gtid {start.gtid or '-'}" if start else "not recorded"
        console.print(f"{src.name}: start {where}; end "
                      f"{f'{end.file}:{end.pos}' if end else 'not recorded'}", highlight=False)
    for p in state.progress():
        if p.error:
            console.print(f"[red]{p.table_id}:[/] {p.error}", highlight=False, soft_wrap=True)


def status_document(state: CopyState) -> dict:
    return {
        "sources": {
            s.name: {
                "start": (state.start_position(s.name).model_dump(mode="json") if state.start_position(s.name) else None),
                "end": (state.end_position(s.name).model_dump(mode="json") if state.end_position(s.name) else None),
                "complete": state.source_complete(s.name),
            } for s in state.plan.sources
        },
        "tables": [{
            "id": p.table_id, "source": p.source, "rows": p.rows, "bytes": p.bytes,
            "estimated_rows": p.estimated_rows, "chunks_done": p.chunks_done, "chunks_total": p.chunks_total,
            "complete": p.complete, "error": p.error,
        } for p in state.progress()],
        "incomplete_tables": state.incomplete_tables(),
    }


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(copy_command)
    main.add_command(status_command)
