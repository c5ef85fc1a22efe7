"""CLI commands of the plan stage: `migrator plan` and the `migrator schema` group."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..endpoint import parse_url
from ..errors import ConfigError, ExitCode
from ..formatting import human_bytes
from ..inventory import FleetConfig, load_fleet_config, resolve_sources
from ..plan.build import DEFAULT_PARALLEL, build_plan
from ..plan.chunking import DEFAULT_CHUNK_ROWS
from ..plan.model import Finding, ForeignKey, Plan, catalog_path, load_plan, save_plan
from ..schema.apply import ApplyReport, apply_schema, schema_script
from ..taskfile import TaskFile, check_task, load_task
from .common import exit_with
from .convert import convert_command

MAX_FINDING_ROWS = 200
MAX_TABLE_ROWS = 60
SEVERITY_ORDER = {"blocking": 0, "warning": 1, "info": 2, "rewrite": 3}
SEVERITY_STYLE = {"blocking": "bold red", "warning": "yellow", "info": "dim", "rewrite": "dim"}


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


# ---------------------------------------------------------------- schema


class DefaultCommandGroup(click.Group):
    """A group whose unknown first argument goes to a default subcommand, so both
    `migrator schema PLAN [--apply]` and `migrator schema convert DUMP` work."""

    def __init__(self, *args, default_command: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group("schema", cls=DefaultCommandGroup, default_command="show",
             context_settings={"help_option_names": ["-h", "--help"]})
def schema_group() -> None:
    """Print or create a plan's target DDL; convert mysqldump scripts.

    \b
    migrator schema PLAN            print the target DDL of a plan
    migrator schema PLAN --apply    create the databases and tables on the target (idempotent)
    migrator schema convert DUMP    convert a mysqldump --no-data script offline
    """


@schema_group.command("show", hidden=True)
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--apply", "do_apply", is_flag=True, help="Create the databases and tables on the target.")
@click.option("--target", "target_url", metavar="URL", help="Target URL (default: the plan's target).")
def schema_show(plan_path: Path, do_apply: bool, target_url: str | None) -> None:
    """Print the target DDL of PLAN, or create it on the target with --apply.

    An existing table of a different shape is reported (exit 1), never dropped or altered.
    """
    plan = load_plan(plan_path)
    if not do_apply:
        click.echo(schema_script(plan), nl=False)
        return
    target = parse_url(target_url, "target") if target_url else plan.target.endpoint()
    report = apply_schema(plan, target)
    console = Console()
    print_apply_report(console, report)
    if not report.ok:
        exit_with(ExitCode.DIFFERENT)


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


schema_group.add_command(convert_command)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(plan_command)
    main.add_command(schema_group)
    main.add_command(check_command)
