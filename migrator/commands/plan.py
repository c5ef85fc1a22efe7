"""CLI commands of the plan stage: `migrator plan` and `migrator check` (a task file)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..endpoint import parse_url
from ..errors import ConfigError, ExitCode
from ..inventory import FleetConfig, load_fleet_config, resolve_sources
from ..plan.build import DEFAULT_PARALLEL, build_plan
from ..plan.chunking import DEFAULT_CHUNK_ROWS
from ..plan.model import catalog_path, save_plan
from ..plan.show import print_plan_summary
from ..taskfile import TaskFile, check_task, load_task
from .common import exit_with


# ---------------------------------------------------------------- plan


@click.command("plan")
@click.option("--source", "source_urls", multiple=True, metavar="URL", help="A source instance (repeatable).")
@click.option("--sources-file", type=click.Path(dir_okay=False), help="File with one source URL per line.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Fleet config YAML (sources, target).")
@click.option("--target", "target_url", metavar="URL", help="Target URL (default: the fleet config's target).")
@click.option("--include", multiple=True, metavar="DB.TABLE", help="Shell pattern of tables to plan (repeatable).")
@click.option("--exclude", multiple=True, metavar="DB.TABLE", help="Shell pattern of tables to leave out.")
@click.option("--route", multiple=True, metavar="SRC=DST",
              help="Merge/rename: 'SRC_DB.SRC_TABLE=DST_DB.DST_TABLE' (patterns left; `*` right keeps the name).")
@click.option("--with-source-column", "source_column", metavar="NAME",
              help="Shard merges: add column NAME (instance/db) to the target's primary and unique keys.")
@click.option("--copy-only", multiple=True, metavar="DB.TABLE",
              help="Tables to copy but not sync (e.g. without a key; stop their writes during the copy).")
@click.option("--skip", multiple=True, metavar="DB.TABLE", help="Tables to list in the plan but not migrate.")
@click.option("--key-collation", type=click.Choice(["rewrite", "bin"]), default="rewrite", show_default=True,
              help="Text columns of primary/unique keys whose collation the rewrite changes (latin1 -> utf8mb4, "
                   "..._ci -> utf8mb4_general_ci): keep the rewrite's collation (plan probes the source for values "
                   "it would merge) or map them to utf8mb4_bin (distinct values stay distinct).")
@click.option("--chunk-rows", type=click.IntRange(1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows per chunk.")
@click.option("--parallel", type=click.IntRange(1, 256), default=DEFAULT_PARALLEL, show_default=True,
              help="Source instances read at once.")
@click.option("--name", default=None, help="Plan name (default: the output file's stem).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plan file to write (YAML); required unless the task file says `out:`.")
@click.option("--task", "task_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A task file holding all of the above (see `migrator check TASK`); only --out and --name may "
                   "be given beside it.")
@click.pass_context
def plan_command(ctx: click.Context, source_urls: tuple[str, ...], sources_file: str | None,
                 config_path: str | None, target_url: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
                 route: tuple[str, ...], source_column: str | None, copy_only: tuple[str, ...], skip: tuple[str, ...],
                 key_collation: str, chunk_rows: int, parallel: int, name: str | None, out_path: Path | None,
                 task_path: Path | None) -> None:
    """Read the sources and the target; write the plan file.

    Exit 0 when the plan can run, 1 when it has blocking findings (the file is still written,
    with them listed), 2 on usage errors.
    """
    console, err = Console(), Console(stderr=True)
    config = None
    if task_path is not None:
        given = [f"--{p.replace('_', '-')}" for p in ctx.params
                 if p not in ("task_path", "out_path", "name")
                 and ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise ConfigError(f"--task {task_path}: put {', '.join(given)} in the task file (only --out and --name "
                              "may be given beside it)")
        task = load_task(task_path)
        config = FleetConfig(sources=task.sources)
        sources_file = str(task_path.parent / task.sources_file) if task.sources_file else None
        target_url, include, exclude = task.target, tuple(task.include), tuple(task.exclude)
        route, source_column, copy_only, skip = tuple(task.routes), task.source_column, tuple(task.copy_only), \
            tuple(task.skip)
        key_collation, chunk_rows, parallel = task.key_collation, task.chunk_rows, task.parallel
        name = name or task.name
        out_path = out_path or (Path(task.out) if task.out else None)
    if out_path is None:
        raise ConfigError("no plan file to write: give --out PLAN.yaml (or `out:` in the task file)")
    if config_path:
        config = load_fleet_config(config_path)
    sources = resolve_sources(source_urls, sources_file, config)
    target_url = target_url or (config.target if config else None)
    if not target_url:
        raise ConfigError("no target given: use --target URL (or `target:` in the fleet config)")
    target = parse_url(target_url, "target")
    with Progress(TextColumn("planning"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("", total=len(sources))

        def done(source: str, seconds: float) -> None:
            progress.update(task, advance=1, description=f"{source} ({seconds:.1f}s)")

        plan = build_plan(sources, target, includes=include, excludes=exclude, routes=route,
                          source_column=source_column, chunk_rows=chunk_rows, parallel=parallel,
                          copy_only=copy_only, skip=skip, key_collation=key_collation, name=name or out_path.stem,
                          on_source_done=done)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_plan(plan, out_path)
    print_plan_summary(console, plan)
    blocking = plan.blocking()
    if blocking:
        console.print(f"[bold red]{len(blocking)} blocking finding(s)[/]: the plan cannot run yet. "
                      f"Fix them and re-run `migrator plan`. Written to {out_path} "
                      f"(catalog: {catalog_path(out_path).name})", highlight=False)
        exit_with(ExitCode.DIFFERENT)
    console.print(f"[green]plan written[/] to {out_path} (catalog: {catalog_path(out_path).name}): "
                  f"{len(plan.active_tables())} table(s) from "
                  f"{len(plan.sources)} source(s). Next: `migrator schema {out_path} --apply`", highlight=False)


@click.command("check")
@click.argument("task_path", metavar="TASK", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--schema", is_flag=True, help="Print the task file's JSON schema (for editors) and exit.")
def check_command(task_path: Path | None, schema: bool) -> None:
    """Check a task file without touching a database: every problem at once (exit 2), or a
    summary of what `migrator plan --task TASK` would read (exit 0)."""
    import json

    if schema:
        click.echo(json.dumps(TaskFile.model_json_schema(), indent=2))
        return
    if task_path is None:
        raise ConfigError("give a task file to check (or --schema)")
    task, errors = check_task(task_path)
    console = Console()
    if errors or task is None:
        console.print(f"[bold red]{task_path}: {len(errors)} problem(s)[/]", highlight=False)
        for e in errors:
            console.print(f"  - {e}", highlight=False, soft_wrap=True)
        exit_with(ExitCode.USAGE)
    sources = resolve_sources((), str(task_path.parent / task.sources_file) if task.sources_file else None,
                              FleetConfig(sources=task.sources))
    console.print(f"[green]ok[/]: {task_path}: {len(sources)} source(s) into {parse_url(task.target, 'target')}; "
                  f"include {list(task.include) or 'everything'}, {len(task.routes)} route(s). "
                  f"Next: `migrator plan --task {task_path}`", highlight=False, soft_wrap=True)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(plan_command)
    main.add_command(check_command)
