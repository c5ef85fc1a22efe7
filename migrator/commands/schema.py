"""CLI commands of the schema stage: the `migrator schema` group (print or apply a plan's target
DDL; `schema convert` for mysqldump scripts)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..endpoint import parse_url
from ..errors import ExitCode
from ..plan.model import load_plan
from ..schema.apply import apply_schema, schema_script
from ..schema.show import print_apply_report
from .common import exit_with
from .convert import convert_command


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


schema_group.add_command(convert_command)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""
    main.add_command(schema_group)
