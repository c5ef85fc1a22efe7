"""Options and helpers every stage command shares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from ..errors import ExitCode
from ..metrics import Metrics, start_metrics, stop_metrics
from ..workdir import WorkDir, default_workdir

plan_argument = click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False, path_type=Path))
workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Work directory (default: work/<plan file stem>).",
)


def resolve_workdir(plan_path: Path, workdir: Path | None) -> WorkDir:
    return WorkDir(workdir or default_workdir(plan_path))


def make_console(stderr: bool = False) -> Console:
    """Wide when piped, so table cells are not cut to 80 columns in logs."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=200)


@dataclass
class RunOptions:
    """What the `migrator` group's options say about output, for every command (ctx.obj)."""

    log_format: str = "text"
    progress_interval: float = 10.0
    log_file: Path | None = None


def run_options() -> RunOptions:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(RunOptions) if ctx else None
    return obj or RunOptions()


def metrics_options(func):
    """--metrics-port / --metrics-addr: Prometheus metrics of this run (one registry)."""
    func = click.option("--metrics-addr", default="127.0.0.1", show_default=True,
                        help="Address the metrics server binds.")(func)
    return click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
                        help="Serve Prometheus metrics on this port while the command runs.")(func)


def replica_options(func):
    """--max-replica-lag / --replica / --discover-replicas (copy and verify: both read every source row)."""
    func = click.option("--discover-replicas", is_flag=True,
                        help="Find each source's replicas with SHOW SLAVE HOSTS (replicas started with report_host), "
                             "reached with the source's credentials.")(func)
    func = click.option("--replica", "replica_urls", multiple=True, metavar="SOURCE=URL",
                        help="A replica of source SOURCE (plan name) for --max-replica-lag (repeatable).")(func)
    return click.option("--max-replica-lag", type=click.FloatRange(0), default=0.0, show_default=True, metavar="S",
                        help="Reads from a source wait while one of its replicas lags more than S seconds (or does "
                             "not replicate, or does not answer); 0: replicas are not looked at. "
                             "WORKDIR/limits.yaml can change it.")(func)


@contextmanager
def stage_metrics(stage: str, port: int | None, addr: str) -> Iterator[Metrics]:
    """The command's metrics registry (served when `port`), marked running for `stage`."""
    metrics = start_metrics(port, addr)
    metrics.stage(stage, True)
    try:
        yield metrics
    finally:
        metrics.stage(stage, False)
        stop_metrics()


def exit_with(code: ExitCode) -> NoReturn:
    """How a command ends with a verdict other than success (differences, blocking findings, a
    server down). Errors are raised instead; MigratorGroup (cli.py) turns them into their codes."""
    raise click.exceptions.Exit(int(code))
