"""Options and helpers every stage command shares."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from ..workdir import WorkDir, default_workdir

plan_argument = click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Work directory holding this migration's state [default: work/<plan name>].",
)


def resolve_workdir(plan_path: Path, workdir: Path | None) -> WorkDir:
    return WorkDir(workdir or default_workdir(plan_path))


def make_console(stderr: bool = False) -> Console:
    """Rich console; plain (no colour codes, no live redraw) when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=True, force_terminal=None if stream.isatty() else False)
